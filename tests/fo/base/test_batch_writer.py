"""Writing a batch: the done field goes last, so a run stopped between two fields of a sample
redoes that sample instead of leaving it half written and counted as done."""

from __future__ import annotations

import fiftyone as fo

from tag2text_zoo.fo.base.run import Outputs, write_labels


def test_done_field_is_written_last(make_dataset, tag2text_images, monkeypatch):
    ds = make_dataset(tag2text_images[:2])
    ids = ds.values("id")
    written = []
    set_values = fo.Dataset.set_values

    def recorded(self, field, values, **kwargs):
        written.append(field)
        return set_values(self, field, values, **kwargs)

    monkeypatch.setattr(fo.Dataset, "set_values", recorded)
    outputs = Outputs("t2t", done_field="t2t_tags")
    labels = {sample_id: {"tags": fo.Classifications(), "caption": "a cat"} for sample_id in ids}
    write_labels(ds, outputs, labels)
    assert written == ["t2t_caption", "t2t_tags"]
    assert ds.values("t2t_caption") == ["a cat", "a cat"]
