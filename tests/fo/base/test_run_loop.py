"""The shared run loop: a batch that raises fails its samples in the report, the run goes on;
the CLI prints true counts, names each failure and exits 1; runners take a ModelSpec; images load
in this process by default for a model on the CPU."""

from __future__ import annotations

import pickle
import shutil

import fiftyone as fo
import fiftyone.utils.torch as fout
import pytest
import torch

from tag2text_zoo import ModelSpec, label_samples, segment_samples
from tag2text_zoo.cli import main
from tag2text_zoo.fo.base import run


def test_a_raising_batch_is_reported_per_sample(
    tagger, tag2text_images, want, make_dataset, monkeypatch
):
    ds = make_dataset(tag2text_images[3:6])
    calls = []
    predict = tagger.predict_tensors

    def failing_first(*args):
        calls.append(len(args[0]))
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return predict(*args)

    monkeypatch.setattr(tagger, "predict_tensors", failing_first)
    report = label_samples(ds, tagger, "t2t", batch_size=2, num_workers=0)
    first = ds.values("id")[:2]
    assert calls == [2, 1] and (report.done, report.skipped, report.failed) == (1, 0, 2)
    assert [f.sample_id for f in report.failures] == first
    reason = "RuntimeError: out of memory"
    assert all(f.reason == reason for f in report.failures)
    assert [f.filepath for f in report.failures] == [str(p) for p in tag2text_images[3:5]]
    assert str(report.failures[0]) == f"sample {first[0]} ({tag2text_images[3]}): {reason}"
    last = ds[str(tag2text_images[5])]
    assert last.t2t_caption == want[tag2text_images[5].name]["caption"]
    assert ds.exists("t2t_tags").count() == 1  # the failed samples stay to be redone


def test_cli_label_prints_true_counts_and_exits_1(tag2text_dir, tag2text_images, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(tag2text_images[4], folder)
    (folder / "broken.png").write_bytes(b"not an image")
    args = ["label", str(folder), "--model", str(tag2text_dir), "--device", "cpu", "--no-exif"]
    try:
        assert main(args) == 1
        out, err = capsys.readouterr()
        assert "mixed: t2t_tags: 1 done, 0 skipped, 1 failed" in out
        broken = fo.load_dataset("mixed").match(fo.ViewField("filepath").ends_with("broken.png"))
        assert f"error: sample {broken.first().id}: {folder / 'broken.png'}: not a readable" in err
        assert main(args) == 1  # the broken file is retried, the good one is not redone
        assert "mixed: t2t_tags: 0 done, 1 skipped, 1 failed" in capsys.readouterr().out
    finally:
        if fo.dataset_exists("mixed"):
            fo.delete_dataset("mixed")


def test_runners_take_a_model_spec(tag2text_dir, tag2text_images, want, make_dataset):
    spec = ModelSpec("tagger", {"name_or_dir": str(tag2text_dir), "exif_transpose": False})
    assert pickle.loads(pickle.dumps(spec)) == spec  # plain data, fit to send to workers
    ds = make_dataset(tag2text_images[4:5])
    assert label_samples(ds, spec, "t2t", num_workers=0).done == 1
    assert ds.first().t2t_caption == want[tag2text_images[4].name]["caption"]
    with pytest.raises(ValueError, match="a 'tagger' model spec was given where a 'grounded'"):
        segment_samples(ds, spec, "g", classes=["dog"])


def test_runs_fill_missing_image_metadata(tagger, tag2text_images, make_dataset, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    ds = make_dataset([tag2text_images[1], tag2text_images[4], broken])
    assert ds.exists("metadata").count() == 0
    report = label_samples(ds, tagger, "t2t", num_workers=0)
    assert (report.done, report.failed) == (2, 1)
    portrait, tiny = ds[str(tag2text_images[1])].metadata, ds[str(tag2text_images[4])].metadata
    assert (portrait.width, portrait.height) == (300, 500)  # a2_portrait_300x500.png
    assert (tiny.width, tiny.height) == (40, 25)
    assert tiny.size_bytes == tag2text_images[4].stat().st_size
    assert ds[str(broken)].metadata is None  # unreadable: reported by the run, not guessed


def test_images_load_without_worker_processes_by_default_on_the_cpu(
    tagger, tag2text_images, make_dataset, monkeypatch
):
    ds = make_dataset(tag2text_images[:2])
    workers, pinned = [], []
    load_batches = run.load_batches

    def recording(inputs, get_item, batch_size, num_workers, pin_memory):
        workers.append(num_workers)
        pinned.append(pin_memory)
        return load_batches(inputs, get_item, batch_size, num_workers, pin_memory)

    monkeypatch.setattr(run, "load_batches", recording)
    assert label_samples(ds, tagger, "default", batch_size=2).done == 2
    assert label_samples(ds, tagger, "one", batch_size=2, num_workers=1).done == 2
    assert workers == [0, 1]
    assert pinned == [False, False]  # page-locked memory only for a model on a GPU
    gpu = fout.recommend_num_workers(None)
    assert run.loader_workers(None, torch.device("cuda")) == gpu
