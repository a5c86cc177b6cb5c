"""The Ray backend on a local Ray with 2 CPUs (started once for the module): the same labels as
the local runner for all three capabilities, failures reported by sample, and runs that survive
a killed actor or a killed driver with each sample labelled once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
from data_paths import FIXTURES

from tag2text_zoo import (
    ModelSpec,
    RayBackend,
    label_samples,
    load_dense_segmenter,
    load_grounded_segmenter,
    load_tagger,
    segment_dense,
    segment_samples,
)
from tag2text_zoo.cli import main

ray = pytest.importorskip("ray", reason="the Ray backend's extra: pip install -e '.[ray]'")

HERE = Path(__file__).resolve().parent
TAGALIGN = FIXTURES / "tagalign-tiny"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cluster(ray_cluster) -> str:
    """The module's Ray, where actors can unpickle the counting spec without tests/."""
    import counting

    ray.cloudpickle.register_pickle_by_value(counting)
    return ray_cluster


def _tagger_spec(tag2text_dir, **options) -> ModelSpec:
    return ModelSpec("tagger", {"name_or_dir": str(tag2text_dir), "device": "cpu", **options})


def _tag_names(value) -> list[tuple[str, float]]:
    return [(c.label, c.confidence) for c in value.classifications]


def test_tagging_on_ray_equals_local_and_reports_unreadable_images(
    cluster, tag2text_dir, tag2text_images, make_dataset, tmp_path
):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    ds = make_dataset([*tag2text_images[:4], broken], hint=[None, "cloud,sky", None, "dog", None])
    spec = _tagger_spec(tag2text_dir, exif_transpose=False)
    backend = RayBackend(samples_per_pass=3)  # two passes
    on_ray = label_samples(ds, spec, "ray", prompt_field="hint", batch_size=2, backend=backend)
    local = label_samples(ds, spec, "local", prompt_field="hint", batch_size=2)
    assert (on_ray.done, on_ray.skipped, on_ray.failed) == (4, 0, 1)
    assert on_ray.failures == local.failures  # same sample, file and reason
    assert on_ray.failures[0].reason.startswith(f"{broken}: not a readable image")
    for sample in ds.exists("local_tags"):
        assert sample.ray_caption == sample.local_caption
        got, want = _tag_names(sample.ray_tags), _tag_names(sample.local_tags)
        assert [n for n, _ in got] == [n for n, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    assert ds.exists("ray_tags").count() == 4


def test_grounded_pipeline_on_ray_equals_local(
    cluster, grounded_dirs, tag2text_dir, tag2text_images, make_dataset
):
    ds = make_dataset(tag2text_images[:3])
    options = {"box_threshold": 0.0, "text_threshold": 0.0, "batch_size": 2}
    models = {"detector": str(grounded_dirs[0]), "segmenter": str(grounded_dirs[1])}
    spec = ModelSpec("grounded", {**models, **options, "device": "cpu"})
    report = segment_samples(
        ds,
        spec,
        "ray",
        tagger=_tagger_spec(tag2text_dir),  # tagger -> detector -> SAM, three actor pools
        semantic_field="ray_sem",
        batch_size=2,
        backend=RayBackend(actors={"mask": 1}),
    )
    assert (report.done, report.failed) == (3, 0)
    segmenter = load_grounded_segmenter(*grounded_dirs, device="cpu", **options)
    tagger = load_tagger(tag2text_dir, device="cpu")
    segment_samples(ds, segmenter, "local", tagger=tagger, semantic_field="local_sem", batch_size=2)
    names = {}
    for field in ("ray_sem", "local_sem"):
        names[field] = np.array([ds.mask_targets[field].get(i, "") for i in range(256)])
    found = 0
    for sample in ds:
        got, want = sample.ray.detections, sample.local.detections
        assert [d.label for d in got] == [d.label for d in want]
        found += len(got)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.bounding_box, w.bounding_box, atol=1e-5)
            np.testing.assert_allclose(
                [g.confidence, g.sam_iou], [w.confidence, w.sam_iou], atol=1e-5
            )
            assert np.count_nonzero(g.mask != w.mask) <= 1e-3 * w.mask.size
        ray_classes = names["ray_sem"][sample.ray_sem.mask]
        local_classes = names["local_sem"][sample.local_sem.mask]
        assert np.mean(ray_classes != local_classes) <= 1e-3
    assert found > 0


def test_dense_on_ray_equals_local(cluster, make_dataset):
    stems = ["square_200x200", "street_500x375", "indoor_300x448"]
    classes = json.loads((TAGALIGN / "classes.json").read_text())
    ds = make_dataset(
        [TAGALIGN / f"images/{s}.png" for s in stems], tags=[classes[f"{s}.png"] for s in stems]
    )
    spec = ModelSpec(
        "dense",
        {
            "clip": str(TAGALIGN / "clip"),
            "projector": str(TAGALIGN / "tagalign.pth"),
            "device": "cpu",
        },
    )
    options = {"prompt_field": "tags", "heatmaps": ["person"], "batch_size": 2}
    assert segment_dense(ds, spec, "ray", **options, backend="ray").done == 3
    segment_dense(ds, load_dense_segmenter(**spec.kwargs), "local", **options)
    # pixel values follow the order results arrive in; the classes they stand for are the same
    ray_targets, local_targets = ds.mask_targets["ray"], ds.mask_targets["local"]
    assert sorted(ray_targets.values()) == sorted(local_targets.values())
    for sample in ds:
        ray_classes = np.vectorize(ray_targets.get)(sample.ray.mask)
        np.testing.assert_array_equal(
            ray_classes, np.vectorize(local_targets.get)(sample.local.mask)
        )
        if sample.local_heatmap_person is not None:  # float32 from other batches and threads
            np.testing.assert_allclose(
                sample.ray_heatmap_person.map, sample.local_heatmap_person.map, atol=1e-5
            )
    assert ds.exists("ray_heatmap_person").count() == 2


def _copies(images, folder: Path, n: int) -> list[Path]:
    """``n`` distinct image files (copies of the fixtures), so that calls count per file."""
    folder.mkdir()
    paths = [folder / f"{i:02d}_{images[i % len(images)].name}" for i in range(n)]
    for i, path in enumerate(paths):
        path.write_bytes(images[i % len(images)].read_bytes())
    return paths


def test_killed_actor_is_restarted_and_every_sample_labelled_once(
    cluster, tag2text_dir, tag2text_images, want, make_dataset, tmp_path
):
    from counting import CountingSpec, calls

    paths = _copies(tag2text_images[:6], tmp_path / "images", 6)
    ds = make_dataset(paths)
    log = tmp_path / "calls.log"
    spec = CountingSpec(
        "tagger", _tagger_spec(tag2text_dir, exif_transpose=False).kwargs, str(log), 0.5
    )
    killed = []

    def kill_a_busy_actor(done, total):
        if killed:
            return
        written = set(ds.exists("t2t_tags").values("filepath"))
        pid, path = [(pid, p) for pid, p in calls(log) if p not in written][-1]
        os.kill(pid, signal.SIGKILL)  # the actor's process, mid-batch
        killed.append((pid, path))

    backend = RayBackend(actors={"tag": 1})  # one actor, restarted after the kill
    report = label_samples(
        ds, spec, "t2t", batch_size=2, progress=kill_a_busy_actor, backend=backend
    )
    assert killed and (report.done, report.failed) == (6, 0)
    pid, path = killed[0]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert [p for _, p in calls(log)].count(path) >= 2  # its batch was retried
    for sample in ds:
        source = Path(sample.filepath).name.split("_", 1)[1]
        assert sample.t2t_caption == want[source]["caption"]


DRIVER = """
import sys
sys.path.insert(0, {here!r})
import counting
import fiftyone as fo
from ray import cloudpickle
from tag2text_zoo import RayBackend, label_samples
cloudpickle.register_pickle_by_value(counting)
spec = counting.CountingSpec("tagger", {options!r}, log=sys.argv[1], delay=0.4)
dataset = fo.load_dataset({name!r})
backend = RayBackend({address!r}, actors={{"tag": 1}})
print(label_samples(dataset, spec, "t2t", batch_size=2, progress=False, backend=backend).summary())
"""


def test_killed_driver_run_again_finishes_the_rest_each_sample_once(
    cluster, tag2text_dir, tag2text_images, tmp_path
):
    from counting import calls

    paths = _copies(tag2text_images[:6], tmp_path / "images", 10)
    ds = fo.Dataset(f"t2t-ray-{uuid.uuid4().hex[:8]}", persistent=True)  # seen by the drivers
    try:
        ds.add_samples([fo.Sample(filepath=str(p)) for p in paths], progress=False)
        options = _tagger_spec(tag2text_dir, exif_transpose=False).kwargs
        script = tmp_path / "driver.py"
        script.write_text(
            DRIVER.format(here=str(HERE), options=options, name=ds.name, address=cluster)
        )
        first = subprocess.Popen([sys.executable, str(script), str(tmp_path / "first.log")])
        deadline = time.monotonic() + 240
        while ds.exists("t2t_tags").count() < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        before = set(ds.exists("t2t_tags").values("filepath"))
        assert 2 <= len(before) < 10, "the kill should land mid-run"
        second = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "second.log")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        assert f"{10 - len(before)} done, {len(before)} skipped, 0 failed" in second.stdout
        redone = [p for _, p in calls(tmp_path / "second.log")]
        assert not before & set(redone)  # samples written before the kill were not redone
        assert sorted(redone) == sorted({str(p) for p in paths} - before)  # the rest once each
        assert ds.exists("t2t_caption").count() == 10
    finally:
        ds.delete()


def test_cli_label_on_ray_prints_true_counts(
    cluster, tag2text_dir, tag2text_images, tmp_path, capsys
):
    folder = tmp_path / "ray_cli"
    folder.mkdir()
    for image in tag2text_images[:3]:
        (folder / image.name).write_bytes(image.read_bytes())
    (folder / "broken.png").write_bytes(b"")
    name = f"t2t-cli-{uuid.uuid4().hex[:8]}"
    args = ["label", str(folder), "--dataset", name, "--model", str(tag2text_dir)]
    try:
        assert main([*args, "--device", "cpu", "--batch-size", "2", "--ray", cluster]) == 1
        out, err = capsys.readouterr()
        assert f"{name}: t2t_tags: 3 done, 0 skipped, 1 failed" in out
        assert "broken.png" in err
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def test_a_model_that_fails_in_its_workers_stops_the_run_naming_the_error(
    cluster, tag2text_images, make_dataset
):
    ds = make_dataset(tag2text_images[:2])
    ram = ModelSpec("tagger", {"name_or_dir": str(FIXTURES / "ram-tiny"), "device": "cpu"})
    reason = "ValueError: specified tags steer captions, but ram does not caption"
    with pytest.raises(RuntimeError, match=f"the Ray run stopped \\({reason}\\) with 0 done"):
        label_samples(ds, ram, "t2t", specified_tags="cloud", backend="ray")
    assert ds.exists("t2t_tags").count() == 0
