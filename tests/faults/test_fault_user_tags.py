"""Tags that steer captions (issue #14, case 7): blank lists are no tags; RAM errors say why."""

from __future__ import annotations

import pytest

from tag2text_zoo import load_tagger


@pytest.fixture(scope="module")
def tagger(tag2text_dir, one_torch_thread):
    return load_tagger(tag2text_dir, device="cpu", exif_transpose=False)


def test_blank_tag_strings_caption_with_the_models_tags(tagger, tag2text_images):
    image = tag2text_images[:1]
    own = tagger.predict(image)[0].caption
    for blank in (",,,", " , ,", "  ", ["", " "]):
        assert tagger.predict(image, specified_tags=[blank])[0].caption == own, blank


def test_empty_entries_between_tags_are_dropped(tagger, tag2text_images, tag2text_expected):
    image = tag2text_images[:1]
    steered = tag2text_expected["images"][0]["user_caption"]  # the reference's, for "cloud,sky"
    assert tagger.predict(image, specified_tags=["cloud,,sky"])[0].caption == steered
    assert tagger.predict(image, specified_tags=[" cloud , sky,"])[0].caption == steered
    assert tagger.predict(image, specified_tags=[["cloud", "", "sky"]])[0].caption == steered


@pytest.mark.parametrize("caption", [True, False])
def test_steering_a_ram_model_names_the_model_family(ram_family_dir, caption):
    ram = load_tagger(ram_family_dir, device="cpu")
    image = sorted((ram_family_dir / "images").iterdir())[:1]
    with pytest.raises(ValueError) as err:
        ram.predict(image, specified_tags=["cloud,sky"], caption=caption)
    message = str(err.value)
    assert "do not caption" in message and "Tag2Text" in message
    assert "caption=" not in message  # no option the caller (e.g. the CLI) may not have
    assert ram.predict(image, specified_tags=[",,,"], caption=caption)[0].caption is None
