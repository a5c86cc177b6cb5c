"""The one tags reader: every accepted kind of value, and what is refused."""

from __future__ import annotations

import fiftyone as fo
import pytest

from tag2text_zoo import parse_tags
from tag2text_zoo.fo.base.tags import check_tags_field, read_tags


def _cls(*labels: str) -> fo.Classifications:
    return fo.Classifications(classifications=[fo.Classification(label=x) for x in labels])


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        (None, []),
        (" cloud, sky ,,", ["cloud", "sky"]),
        (["cloud", " sky", ""], ["cloud", "sky"]),
        (_cls("cloud", "sky"), ["cloud", "sky"]),
        (fo.Classification(label="cloud"), ["cloud"]),
    ],
)
def test_read_tags(value, tags):
    assert read_tags(value, "id1", "hint") == tags


def test_parse_tags_strips_and_drops_empty_names():
    assert parse_tags("car, tree,, ") == ["car", "tree"]


def test_bad_values_and_fields_are_named(make_dataset, tag2text_images):
    with pytest.raises(ValueError, match="sample id1: field 'hint' holds a int"):
        read_tags(3, "id1", "hint")
    ds = make_dataset(tag2text_images[:1], words=[["a"]], one=[fo.Classification(label="a")])
    check_tags_field(ds, "words")
    check_tags_field(ds, "one")
    with pytest.raises(ValueError, match="prompt field 'metadata' is a ImageMetadata"):
        check_tags_field(ds, "metadata")


def test_tags_fields_offers_only_fields_of_tags_latest_tagger_output_first(
    make_dataset, tag2text_images, tagger
):
    from tag2text_zoo import label_samples, tags_fields

    dets = fo.Detections(detections=[fo.Detection(label="x", bounding_box=[0, 0, 1, 1])])
    ds = make_dataset(
        tag2text_images[4:5],
        gt=[_cls("cat")],
        one=[fo.Classification(label="a")],
        words=[["a", "b"]],
        note=["cloud,sky"],
        boxes=[dets],
        count=[3],
        old_tags=[_cls("x")],
        old_caption=["a caption from apply_model"],
    )
    assert tags_fields(ds) == ["gt", "one", "words", "note", "old_tags"]
    assert tags_fields(ds, labels_only=True) == ["gt", "one", "old_tags"]

    assert label_samples(ds, tagger, "first", num_workers=0).done == 1
    assert label_samples(ds, tagger, "second", num_workers=0).done == 1
    # Newest tagger output first; its captions are never offered, nor subfields or `filepath`.
    assert tags_fields(ds)[:2] == ["second_tags", "first_tags"]
    assert not {"filepath", "tags", "metadata", "first_caption", "second_caption"} & set(
        tags_fields(ds)
    )
    caption = ds.get_field("second_caption")
    assert caption.info["tag2text_zoo"]["holds"] == "caption"
    assert caption.description == "Caption written by tag2text-zoo"
    label_samples(ds, tagger, "first", num_workers=0, skip_existing=False)
    assert tags_fields(ds)[:2] == ["first_tags", "second_tags"]  # written again: newest
