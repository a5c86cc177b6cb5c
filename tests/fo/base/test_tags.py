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
