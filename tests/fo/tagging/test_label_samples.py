"""Resumable labelling: an interrupted run continues where it stopped, each sample done once."""

from __future__ import annotations

import atexit
import shutil
from collections import Counter
from pathlib import Path

import fiftyone as fo
import pytest

from tag2text_zoo import TaggerModel, label_samples
from tag2text_zoo.cli import main


class _Stop(KeyboardInterrupt):
    """Stands for Ctrl-C: a BaseException, which FiftyOne's skip_failures does not swallow."""


class CountingModel(TaggerModel):
    def __init__(self, tagger, stop_after: int | None = None):
        super().__init__(tagger)
        self.stop_after, self.batches, self.seen = stop_after, 0, Counter()

    def predict_all(self, args):
        if self.stop_after is not None and self.batches == self.stop_after:
            raise _Stop
        self.batches += 1
        self.seen.update(item["id"] for item in args)
        return super().predict_all(args)


def test_interrupted_run_resumes_each_sample_once(tagger, tag2text_images, want, make_dataset):
    ds = make_dataset(tag2text_images)
    first = CountingModel(tagger, stop_after=2)
    with pytest.raises(_Stop):
        label_samples(ds, first, "t2t", batch_size=2, progress=False)
    assert ds.exists("t2t_tags").count() == 4  # the two finished batches are on disk

    second = CountingModel(tagger)
    run = label_samples(ds, second, "t2t", batch_size=2, progress=False)
    assert (run.done, run.skipped, run.failures) == (2, 4, [])
    assert not set(first.seen) & set(second.seen)
    assert Counter(first.seen) + Counter(second.seen) == Counter(ds.values("id"))
    for sample in ds:
        assert sample.t2t_caption == want[Path(sample.filepath).name]["caption"]
    assert label_samples(ds, CountingModel(tagger), "t2t").done == 0  # nothing left


def test_wrong_prompt_field_refused_before_work(tagger, tag2text_images, make_dataset):
    ds = make_dataset(tag2text_images[:1], hint=[fo.Detections()])
    model = CountingModel(tagger)
    with pytest.raises(ValueError, match="'hint' is a Detections"):
        label_samples(ds, model, "t2t", prompt_field="hint")
    assert model.batches == 0


def test_cli_label_directory_becomes_persistent_dataset(
    tag2text_dir, tag2text_images, tmp_path, monkeypatch
):
    folder = tmp_path / "holiday"
    folder.mkdir()
    shutil.copy(tag2text_images[4], folder)  # the 40x25 image: quickest
    args = ["label", str(folder), "--model", str(tag2text_dir), "--device", "cpu", "--no-exif"]
    unregistered = []
    monkeypatch.setattr(atexit, "unregister", unregistered.append)
    try:
        assert main(args) == 0
        # FiftyOne's exit clean-up, which can delete another session's non-persistent datasets
        # (a notebook's) when it miscounts the database's clients, is not left to run
        assert [f.__name__ for f in unregistered] == ["_delete_non_persistent_datasets_if_allowed"]
        ds = fo.load_dataset("holiday")
        assert ds.persistent and ds.exists("t2t_caption").count() == 1
        assert main(args) == 0  # resumes: nothing left to do, nothing re-labelled
        assert len(ds) == 1
    finally:
        if fo.dataset_exists("holiday"):
            fo.delete_dataset("holiday")
