"""Shared test set-up: fixture locations and FiftyOne's environment (set before any import)."""

from __future__ import annotations

import atexit
import fcntl
import importlib.util
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest

# FiftyOne reads these at import time: a private database (removed at exit: ~300 MB a run), no
# telemetry.
if "FIFTYONE_DATABASE_DIR" not in os.environ:
    os.environ["FIFTYONE_DATABASE_DIR"] = tempfile.mkdtemp(prefix="t2t-fodb-")
    atexit.register(shutil.rmtree, os.environ["FIFTYONE_DATABASE_DIR"], ignore_errors=True)
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from data_paths import FIXTURES, REFERENCE  # noqa: E402  (after the environment is set)


@pytest.fixture(scope="session", autouse=True)
def fiftyone_database_started_once():
    """Each test process connects to FiftyOne's database before its first test, one process at
    a time: pytest-xdist's workers share the database, and two of them launching it at the same
    moment left one unable to bind its port (its tests failed with ``ServiceListenTimeout``).
    Nothing happens without FiftyOne (the GPU machine's suite runs without it)."""
    if importlib.util.find_spec("fiftyone") is None:
        return
    lock = Path(os.environ["FIFTYONE_DATABASE_DIR"]) / "t2t-tests-start.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        import fiftyone.core.odm.database as fo_database

        fo_database.ensure_connection()


@pytest.fixture(scope="session")
def tag2text_dir() -> Path:
    return FIXTURES / "tag2text-tiny"


@pytest.fixture(scope="session")
def tag2text_expected(tag2text_dir: Path) -> dict:
    return json.loads((tag2text_dir / "expected.json").read_text())


@pytest.fixture(scope="session")
def tag2text_npz(tag2text_dir: Path):
    return np.load(tag2text_dir / "expected.npz")


@pytest.fixture(scope="session")
def tag2text_images(tag2text_dir: Path, tag2text_expected: dict) -> list[Path]:
    return [tag2text_dir / im["file"] for im in tag2text_expected["images"]]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: tiny matrices only contend with other processes on the 2 shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


@pytest.fixture(scope="session", params=["ram-tiny", "ram-plus-tiny"])
def ram_family_dir(request) -> Path:
    """The RAM and the RAM++ golden fixture, in turn."""
    return FIXTURES / request.param


@pytest.fixture(scope="session")
def grounded_dirs(tmp_path_factory, reference_dir) -> tuple[Path, Path]:
    """Tiny random Grounding DINO and SAM folders (tests/tiny_grounded.py)."""
    from tiny_grounded import save_tiny_grounding_dino, save_tiny_sam

    root = tmp_path_factory.mktemp("grounded-models")
    vocab = reference_dir / "bert-base-uncased-vocab.txt"
    return save_tiny_grounding_dino(root / "gdino", vocab), save_tiny_sam(root / "sam")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs for one test module (slow to start); its address, for drivers in
    other processes. Skips where the Ray extra is not installed."""
    ray = pytest.importorskip("ray", reason="the Ray backend's extra: pip install -e '.[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def make_dataset():
    """Makes datasets of image paths (plus per-sample fields), deleted after the test."""
    import fiftyone as fo

    made = []

    def make(paths, **fields_per_sample):
        ds = fo.Dataset(f"t2t-test-{uuid.uuid4().hex[:8]}")
        samples = []
        for i, path in enumerate(paths):
            extra = {k: v[i] for k, v in fields_per_sample.items() if v[i] is not None}
            samples.append(fo.Sample(filepath=str(path), **extra))
        ds.add_samples(samples, progress=False)
        made.append(ds)
        return ds

    yield make
    for ds in made:
        if not ds.deleted:
            ds.delete()


@pytest.fixture(scope="session")
def want(tag2text_expected) -> dict[str, dict]:
    """The reference's results per image file name."""
    return {im["file"].split("/")[-1]: im for im in tag2text_expected["images"]}
