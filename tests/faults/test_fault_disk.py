"""A full disk while masks are written (issue #14). The run stops with a clear error and true
counts; a sample whose mask files could not be written gets no label (its files are removed), so
the same command, once there is room, redoes it and finishes. Once with ENOSPC injected into the
writes, once on a real tmpfs that fills up (where this machine lets a test mount one)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
from PIL import Image

import tag2text_zoo.fo.base.mask_files as mask_files
from tag2text_zoo import load_grounded_segmenter, segment_samples
from tag2text_zoo.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CLASSES = ["dog", "cat"]


@pytest.fixture(scope="module")
def random_images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("disk-images")
    paths = []
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8)
        paths.append(folder / f"im{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


def _ground(folder: Path, grounded_dirs, masks: Path) -> list[str]:
    detector, segmenter = map(str, grounded_dirs)
    return [
        *("ground", str(folder), "--detector", detector, "--segmenter", segmenter),
        *("--classes", ",".join(CLASSES), "--label-field", "g", "--semantic-field", "g_sem"),
        *("--box-threshold", "0", "--text-threshold", "0", "--batch-size", "1"),
        *("--mask-dir", str(masks), "--device", "cpu"),
    ]


def _mask_files(dataset: fo.Dataset) -> list[str]:
    """The files the labelled samples point to."""
    paths = []
    for sample in dataset.exists("g"):
        paths += [d.mask_path for d in sample.g.detections] + [sample.g_sem.mask_path]
    return sorted(paths)


class _FullDisk:
    """A file whose write stores half of the bytes, then fails as a full disk does."""

    def __init__(self, path: str) -> None:
        self.path, self.file = path, open(path, "wb")  # noqa: SIM115 - closed in __exit__

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, data) -> None:
        self.file.write(bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)


def test_full_disk_stops_the_run_and_a_rerun_finishes(
    image_folder, random_images, grounded_dirs, tmp_path, monkeypatch, capsys
):
    folder = image_folder(random_images)
    masks = tmp_path / "masks"
    full = lambda path, mode="r", *a, **k: (  # noqa: E731 - the second image's files fail
        _FullDisk(path) if Path(path).name.startswith("im1") else open(path, mode, *a, **k)
    )
    monkeypatch.setattr(mask_files, "open", full, raising=False)
    assert main(_ground(folder, grounded_dirs, masks)) == 1
    out, err = capsys.readouterr()
    assert f"{folder.name}: g: 1 done, 0 skipped, 0 failed" in out
    (line,) = [x for x in err.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: OSError: [Errno 28] No space left on device: ")
    assert line.endswith("; stopped after 1 done, 0 skipped, 0 failed; run again to continue")
    dataset = fo.load_dataset(folder.name)
    (done,) = dataset.exists("g")
    assert Path(done.filepath).name == "im0.png" and dataset.exists("g_sem").count() == 1
    # only the finished sample's files are left: nothing half written, nothing unreferenced
    assert sorted(map(str, masks.iterdir())) == _mask_files(dataset)

    monkeypatch.delattr(mask_files, "open")  # room again
    assert main(_ground(folder, grounded_dirs, masks)) == 0
    assert f"{folder.name}: g: 2 done, 1 skipped, 0 failed" in capsys.readouterr().out
    assert sorted(map(str, masks.iterdir())) == _mask_files(dataset)
    segmenter = load_grounded_segmenter(
        *grounded_dirs, device="cpu", box_threshold=0.0, text_threshold=0.0
    )
    segment_samples(dataset, segmenter, "in_db", classes=CLASSES, batch_size=1)
    for sample in dataset:
        assert len(sample.g.detections) == len(sample.in_db.detections) > 0
        for disk, db in zip(sample.g.detections, sample.in_db.detections, strict=True):
            np.testing.assert_array_equal(disk.get_mask() > 0, db.mask)


# Run inside a mount namespace whose mask folder is a tiny tmpfs: ground until the disk is
# full, make room, ground again; report the exit codes and, after each run, the labelled
# samples, the files they point to that do not decode, and the files nobody points to.
_IN_NAMESPACE = """
import json, os, subprocess, sys
import fiftyone as fo
from PIL import Image
from tag2text_zoo.cli import main

args, masks, name = json.loads(sys.argv[1])

def state():
    dataset = fo.load_dataset(name)
    referenced, broken = set(), []
    for sample in dataset.exists("g"):
        for path in [d.mask_path for d in sample.g.detections] + [sample.g_sem.mask_path]:
            referenced.add(os.path.basename(path))
            try:
                Image.open(path).load()
            except Exception as err:
                broken.append(f"{path}: {err}")
    orphans = sorted(set(os.listdir(masks)) - referenced)
    return {"done": len(dataset.exists("g")), "broken": broken, "orphans": orphans}

codes, states = [main(args)], [state()]
subprocess.run(["mount", "-o", "remount,size=8m", masks], check=True)
codes.append(main(args))
states.append(state())
print("result=" + json.dumps({"codes": codes, "states": states}))
"""


# A mount namespace of the test's own; a user namespace too where the test is not root.
UNSHARE = ["unshare", "-m" if os.geteuid() == 0 else "-rm"]


def _can_mount_tmpfs(folder: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = [*UNSHARE, "sh", "-c", f"mount -t tmpfs -o size=8k tmpfs {folder}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def test_a_real_full_tmpfs_keeps_no_broken_mask(
    image_folder, random_images, grounded_dirs, tmp_path
):
    masks = tmp_path / "masks"
    masks.mkdir()
    if not _can_mount_tmpfs(masks):
        pytest.skip("this machine does not let a test mount a tmpfs (unshare)")
    folder = image_folder(random_images)
    fo.list_datasets()  # connected: the child joins this database, with no service to look up
    payload = json.dumps([_ground(folder, grounded_dirs, masks), str(masks), folder.name])
    mount = f"mount -t tmpfs -o size=16k tmpfs {masks}"
    script = f'{mount} && exec "$0" -c "$1" "$2"'
    command = [*UNSHARE, "sh", "-c", script, sys.executable, _IN_NAMESPACE, payload]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("result=")] or [proc.stderr]
    result = json.loads(line[len("result=") :])

    assert result["codes"] == [1, 0], (result, proc.stderr[-3000:])
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1 and "[Errno 28] No space left on device" in errors[0]
    first, last = result["states"]
    assert first["done"] < 3 and f"stopped after {first['done']} done" in errors[0]
    assert first["broken"] == [] and first["orphans"] == []
    assert last == {"done": 3, "broken": [], "orphans": []}
