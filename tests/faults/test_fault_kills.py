"""Stopping ``label`` (issue #14): SIGKILL while a folder's dataset is being made, in the middle
of writing a batch and between predicting and writing one, and Ctrl-C. Running the same command
again finishes the job: nothing lost, nothing duplicated, finished samples not redone (model
calls counted across the killed processes)."""

from __future__ import annotations

import json
import shutil
import signal
from collections import Counter
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
from data_paths import FIXTURES
from faults_driver import drive

import tag2text_zoo.fo.base.run as run_loop
from tag2text_zoo import heatmap_field, load_dense_segmenter, segment_dense
from tag2text_zoo.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KILLED = -signal.SIGKILL
PREDICT = run_loop.predict_batch


def _args(folder: Path, model_dir: Path) -> list[str]:
    cpu = ["--device", "cpu", "--num-workers", "0", "--no-exif"]
    return ["label", str(folder), "--model", str(model_dir), "--batch-size", "2", *cpu]


def _count_calls(monkeypatch, interrupt_after: int | None = None) -> Counter:
    """Counts the ids the model is given here; Ctrl-C (a real SIGINT) after a batch."""
    calls = Counter()

    def counting(model, items):
        calls.update(item["id"] for item in items)
        out = PREDICT(model, items)
        if interrupt_after is not None and calls.total() >= interrupt_after:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(run_loop, "predict_batch", counting)
    return calls


def test_killed_and_interrupted_runs_finish_each_sample_once(
    image_folder, tag2text_dir, tag2text_images, want, monkeypatch, capsys, tmp_path
):
    originals = [tag2text_images[i] for i in (3, 4, 5, 0, 4, 3)]
    names = [f"{i}_{p.name}" for i, p in enumerate(originals)]
    folder = image_folder(originals, names)
    args = _args(folder, tag2text_dir)

    first = drive(tmp_path, [{"argv": args, "fault": "kill-mid-write", "batch": 2}])
    assert first.proc.returncode == KILLED, first.proc.stderr
    dataset = fo.load_dataset(folder.name)
    done = [set(dataset.exists("t2t_tags").values("id"))]
    assert len(done[0]) == 2
    # the second batch's captions were written, its tags (the done field, written last) not
    assert dataset.exists("t2t_caption").count() == 4

    second = drive(tmp_path, [{"argv": args, "fault": "kill-after-predict", "batch": 2}])
    assert second.proc.returncode == KILLED, second.proc.stderr
    done.append(set(dataset.exists("t2t_tags").values("id")))
    assert len(done[1]) == 4

    third = _count_calls(monkeypatch, interrupt_after=2)
    # Ctrl-C as in a terminal: a shell starts background jobs (`pytest &`) with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(args) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "interrupted; run the same command again to continue" in capsys.readouterr().err
    done.append(set(dataset.exists("t2t_tags").values("id")))
    assert done[2] == done[1]  # the interrupted batch was not written

    last = _count_calls(monkeypatch)
    assert main(args) == 0
    assert f"{folder.name}: t2t_tags: 2 done, 4 skipped, 0 failed" in capsys.readouterr().out

    runs = [*first.calls, *second.calls, third, last]
    for i, finished in enumerate(done):  # a finished sample is never given to the model again
        assert not finished & set().union(*runs[i + 1 :]), i
    total = sum(runs, Counter())
    assert sorted(total.values()) == [1, 1, 2, 2, 3, 3]  # only the batches in flight, again
    assert len(dataset) == 6 and len(set(dataset.values("filepath"))) == 6
    for sample in dataset:
        original = originals[names.index(Path(sample.filepath).name)]
        assert sample.t2t_caption == want[original.name]["caption"]
        tags = {c.label for c in sample.t2t_tags.classifications}
        assert tags == {t.strip() for t in want[original.name]["tags"]}


def test_killed_while_the_folder_is_imported_then_new_files_are_added(
    image_folder, tag2text_images, monkeypatch, capsys, tmp_path
):
    folder = image_folder(tag2text_images[:4])
    args = _args(folder, FIXTURES / "ram-tiny")
    killed = drive(tmp_path, [{"argv": args, "fault": "kill-mid-import"}])
    assert killed.proc.returncode == KILLED, killed.proc.stderr
    dataset = fo.load_dataset(folder.name)
    assert dataset.persistent and len(dataset) == 2  # half made, and kept

    calls = _count_calls(monkeypatch)
    assert main(args) == 0
    assert f"{folder.name}: t2t_tags: 4 done, 0 skipped, 0 failed" in capsys.readouterr().out
    assert len(dataset) == 4 and calls == Counter(dataset.values("id"))

    for image in tag2text_images[4:6]:  # new files in the folder are picked up
        shutil.copy(image, folder)
    assert main(args) == 0
    assert f"{folder.name}: t2t_tags: 2 done, 4 skipped, 0 failed" in capsys.readouterr().out
    assert sorted(Path(p).name for p in dataset.values("filepath")) == sorted(
        p.name for p in tag2text_images
    )
    assert dataset.exists("t2t_tags").count() == 6


def test_killed_dense_run_keeps_valid_mask_targets_and_resumes(make_dataset, monkeypatch, tmp_path):
    """TagAlign: killed between writing a sample's heatmap and its segmentation; every mask
    written before the kill decodes through the recorded mask_targets, and the re-run ends
    with each class at one value and each sample segmented as the engine does."""
    tiny = FIXTURES / "tagalign-tiny"
    classes = json.loads((tiny / "classes.json").read_text())
    paths = [
        tiny / f"images/{s}.png" for s in ("square_200x200", "street_500x375", "indoor_300x448")
    ]
    dataset = make_dataset(paths, hint=[",".join(classes[p.name]) for p in paths])
    dataset.persistent = True  # opened by name in the child
    masks, heat = tmp_path / "masks", heatmap_field("seg", "person")
    options = {
        "dataset": dataset.name,
        "clip": str(tiny / "clip"),
        "projector": str(tiny / "tagalign.pth"),
    }
    options |= {"label_field": "seg", "prompt_field": "hint", "heatmaps": ["person"]}
    options |= {"mask_dir": str(masks), "batch_size": 1, "num_workers": 0}
    killed = drive(tmp_path, [{"dense": options, "fault": "kill-mid-write", "batch": 2}])
    assert killed.proc.returncode == KILLED, killed.proc.stderr

    dataset.reload()
    (first,) = dataset.exists("seg")
    targets = dataset.mask_targets["seg"]
    assert set(np.unique(first.seg.get_mask())) <= set(targets)
    street = dataset.match(fo.ViewField("filepath").ends_with("street_500x375.png")).first()
    assert street[heat] is not None and street.seg is None  # half written: not done

    segmenter = load_dense_segmenter(tiny / "clip", tiny / "tagalign.pth", device="cpu")
    calls = _count_calls(monkeypatch)
    report = segment_dense(
        dataset, segmenter, "seg", prompt_field="hint", heatmaps=["person"], mask_dir=str(masks)
    )
    assert (report.done, report.skipped, report.failed) == (2, 1, 0)
    assert first.id not in calls and calls[street.id] == 1
    final = dataset.mask_targets["seg"]
    assert {v: n for v, n in final.items() if v in targets} == targets
    assert sorted(final.values()) == sorted(set(final.values()))  # one value per class
    direct = segmenter.predict(paths, [classes[p.name] for p in paths])
    for sample, result in zip(dataset, direct, strict=True):
        names = np.array(["background", *result.classes])
        decoded = np.vectorize(final.get)(sample.seg.get_mask())
        np.testing.assert_array_equal(decoded, names[result.labels])
    referenced = {p for s in dataset for p in (s.seg.mask_path, s[heat] and s[heat].map_path) if p}
    left = {str(p) for p in masks.iterdir()} - referenced
    # a kill leaves the batch in flight's files behind, unreferenced; never a label without one
    assert referenced <= {str(p) for p in masks.iterdir()}
    assert left and all(Path(p).name.startswith("street") for p in left)
