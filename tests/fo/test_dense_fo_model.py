"""DenseModel through apply_model on a real embedded database, and the TagAlign zoo entry."""

from __future__ import annotations

import shutil

import fiftyone as fo
import fiftyone.zoo as foz
import numpy as np
import pytest
from data_paths import FIXTURES

from tag2text_zoo.assets.download import LOCAL_MODELS_ENV
from tag2text_zoo.engines.dense import load_dense_segmenter
from tag2text_zoo.fo import zoo
from tag2text_zoo.fo.dense_fo_model import (
    DenseModel,
    DenseModelConfig,
    save_mask_targets,
    segment_with_model,
)

TINY = FIXTURES / "tagalign-tiny"
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SQUARE, STREET = TINY / "images/square_200x200.png", TINY / "images/street_500x375.png"
TAGS = [["cat", "sofa", "person"], ["sky", "road", "person", "car"]]  # "person" in both
PACKAGE = zoo.MANIFEST.parent


@pytest.fixture(scope="module")
def segmenter():
    return load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", device="cpu")


def _classifications(tags):
    return fo.Classifications(classifications=[fo.Classification(label=t) for t in tags])


def _assert_decodes_to(sample_mask, targets, result):
    names = np.array(["background", *result.classes])
    np.testing.assert_array_equal(np.vectorize(targets.get)(sample_mask), names[result.labels])


def test_apply_model_matches_engine_with_one_target_map(segmenter, make_dataset, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    ds = make_dataset([SQUARE, broken, STREET], t2t_tags=[_classifications(TAGS[0]), None,
                                                         _classifications(TAGS[1])])  # fmt: skip
    model = DenseModel(segmenter)
    # images load in a DataLoader worker process
    ds.apply_model(model, "seg", prompt_field="t2t_tags", batch_size=3, num_workers=1)
    targets = save_mask_targets(ds, "seg", model)
    assert ds.mask_targets["seg"] == targets == model.mask_targets
    assert len(set(targets.values())) == len(targets) == 1 + len(set(TAGS[0] + TAGS[1]))
    direct = segmenter.predict([SQUARE, STREET], TAGS)
    samples = list(ds)
    for sample, result in zip([samples[0], samples[2]], direct, strict=True):
        _assert_decodes_to(sample.seg.get_mask(), targets, result)
    person = next(v for v, n in targets.items() if n == "person")
    assert any((s.seg.get_mask() == person).any() for s in (samples[0], samples[2]))
    assert samples[1].seg is None
    assert [sid for sid, _ in model.failures] == [samples[1].id]
    assert "broken.png" in model.failures[0][1]

    # a later run with fixed classes into the same field keeps every value's meaning
    before = dict(ds.mask_targets["seg"])
    fixed = DenseModel(segmenter, DenseModelConfig(classes=["sofa", "dog"]))
    view = ds.select(samples[0].id)
    after = segment_with_model(view, fixed, "seg", batch_size=1, num_workers=0)
    assert {v: n for v, n in after.items() if v in before} == before
    assert after[max(after)] == "dog" and ds.mask_targets["seg"] == after
    (alone,) = segmenter.predict([SQUARE], ["sofa", "dog"])
    _assert_decodes_to(ds[samples[0].id].seg.get_mask(), after, alone)


def test_prompt_field_of_wrong_type_refused(segmenter, make_dataset):
    ds = make_dataset([SQUARE], score=[3])
    model = DenseModel(segmenter)
    with pytest.raises(ValueError, match="prompt field 'score'"):
        segment_with_model(ds, model, "seg", prompt_field="score")
    with pytest.raises(ValueError, match="prompt_field or classes"):
        ds.apply_model(model, "seg", num_workers=0)
    assert not ds.has_field("seg")


def test_zoo_lists_and_loads_the_linked_clip(tmp_path, monkeypatch):
    zoo_dir, local = tmp_path / "zoo", tmp_path / "local"
    shutil.copytree(
        PACKAGE, zoo_dir / zoo.SOURCE_NAME, ignore=shutil.ignore_patterns("__pycache__")
    )
    (local / "tagalign-clip-vit-b16").mkdir(parents=True)
    (local / "tagalign-clip-vit-b16" / "clip").symlink_to(TINY / "clip", target_is_directory=True)
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(zoo_dir))

    name = "tagalign-clip-vit-b16-torch"
    assert name in foz.list_zoo_models(tags="dense")
    model = foz.load_zoo_model(name, device="cpu", prompt_field="t2t_tags", bg_thresh=0.3)
    marker = zoo_dir / zoo.SOURCE_NAME / "tagalign-clip-vit-b16.config.json"
    assert foz.is_zoo_model_downloaded(name) and marker.is_file() and not marker.is_dir()
    assert type(model).__name__ == "DenseModel" and model.config.prompt_field == "t2t_tags"
    assert model.segmenter.projector is None and model.segmenter.settings.bg_thresh == 0.3
    assert model.segmenter.clip.config.vision_config.hidden_size < 768  # the tiny CLIP

    monkeypatch.delenv(LOCAL_MODELS_ENV)
    trained = foz.load_zoo_model(name, device="cpu", projector=str(TINY / "tagalign.pth"))
    assert trained.segmenter.projector is not None
    form = zoo.resolve_input(name, ctx=None).type.properties
    assert {"device", "dtype", "prompt_field", "projector", "settings", "bg_thresh"} <= set(form)


def test_predict_on_images_directly(segmenter, tmp_path):
    """Without a dataset: paths go straight to the model with fixed classes."""
    model = DenseModel(segmenter, DenseModelConfig(classes=["sofa", "dog"]))
    got = model.predict_all([SQUARE, tmp_path / "missing.png"])
    (alone,) = segmenter.predict([SQUARE], [["sofa", "dog"]])
    _assert_decodes_to(got[0].mask, model.mask_targets, alone)
    assert got[1] is None and "missing.png" in model.failures[-1][1]
