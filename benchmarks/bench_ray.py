"""The Ray backend on this machine: per-actor throughput against the local runner, and the
driver's write rate (labels of each capability written by sample id).

Throughput is the steady rate, timed from the first batch written to the last (model loading
and actor start-up left out), on the tiny Tag2Text fixture: it measures what the backend adds
per batch; an actor runs the same engine as the local runner, so a full-size model's per-actor
rate is its engine rate (``bench_tagger.py``) less that overhead. The write rate is what one
driver can store: labels converted beforehand, written in batches with the runners' writer.

    python benchmarks/bench_ray.py --images 48 --batch-size 4

Prints a table and writes JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import fiftyone as fo
import numpy as np

from tag2text_zoo import ModelSpec, RayBackend, label_samples
from tag2text_zoo.fo.base.report import RunReport
from tag2text_zoo.fo.base.run import BatchWriter, Outputs

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "fixtures" / "tag2text-tiny"


class _Clock:
    """Progress callback keeping the time of every batch written."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []

    def __call__(self, processed: int, total: int) -> None:
        self.marks.append((time.perf_counter(), processed))

    def steady_rate(self) -> float:
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / (t1 - t0)


def _dataset(count: int, folder: Path) -> fo.Dataset:
    sources = sorted((TINY / "images").glob("*"))
    paths = []
    for i in range(count):
        source = sources[i % len(sources)]
        paths.append(folder / f"{i:04d}_{source.name}")
        paths[-1].write_bytes(source.read_bytes())
    dataset = fo.Dataset(f"bench-ray-{uuid.uuid4().hex[:8]}")
    dataset.add_samples([fo.Sample(filepath=str(p)) for p in paths], progress=False)
    return dataset


def throughput(count: int, batch_size: int) -> list[dict]:
    """Images/s of the local runner and of Ray with 1 and 2 actors (one CPU each)."""
    spec = ModelSpec("tagger", {"name_or_dir": str(TINY), "device": "cpu"})
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        dataset = _dataset(count, Path(folder))
        runs = [("local", "local", 1), ("ray", RayBackend(actors={"tag": 1}), 1)]
        runs.append(("ray", RayBackend(actors={"tag": 2}), 2))
        for i, (name, backend, actors) in enumerate(runs):
            clock = _Clock()
            report = label_samples(
                dataset, spec, f"run{i}", batch_size=batch_size, progress=clock, backend=backend
            )
            assert report.done == count, report.summary()
            rate = clock.steady_rate()
            rows.append(
                {
                    "backend": name,
                    "actors": actors,
                    "images_per_s": round(rate, 2),
                    "per_actor": round(rate / actors, 2),
                }
            )
        dataset.delete()
    return rows


def _tags(rng: np.random.Generator) -> dict:
    names = [f"tag{k}" for k in rng.choice(3000, 12, replace=False)]
    tags = [fo.Classification(label=n, confidence=float(rng.random())) for n in names]
    return {"tags": fo.Classifications(classifications=tags), "caption": "a dog on the grass"}


def _detections(rng: np.random.Generator) -> fo.Detections:
    return fo.Detections(
        detections=[
            fo.Detection(
                label="dog", bounding_box=[0.1, 0.1, 0.3, 0.3], mask=rng.random((96, 96)) > 0.5
            )
            for _ in range(8)
        ]
    )


def _segmentation(rng: np.random.Generator) -> fo.Segmentation:
    return fo.Segmentation(mask=rng.integers(0, 12, (480, 640), dtype=np.uint8))


def write_rate(count: int, batch_size: int) -> list[dict]:
    """Samples/s one driver writes, per kind of label (labels made beforehand)."""
    rng = np.random.default_rng(0)
    kinds = {
        "tags + caption": (_tags, Outputs("t2t", done_field="t2t_tags")),
        "8 detections, 96x96 masks": (_detections, Outputs("det", done_field="det")),
        "640x480 segmentation": (_segmentation, Outputs("seg", done_field="seg")),
    }
    rows = []
    for kind, (make, outputs) in kinds.items():
        dataset = fo.Dataset(f"bench-ray-{uuid.uuid4().hex[:8]}")
        dataset.add_samples(
            [fo.Sample(filepath=f"/x/{i}.jpg") for i in range(count)], progress=False
        )
        ids = dataset.values("id")
        batches = [
            {sample_id: make(rng) for sample_id in ids[i : i + batch_size]}
            for i in range(0, count, batch_size)
        ]
        start = time.perf_counter()
        with BatchWriter(dataset, outputs, RunReport(), count, False, None) as writer:
            for labels in batches:
                writer.write(labels, [], {})
        seconds = time.perf_counter() - start
        rows.append({"labels": kind, "samples_per_s": round(count / seconds, 1)})
        dataset.delete()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--write-samples", type=int, default=2048)
    parser.add_argument("--write-batch", type=int, default=64)
    args = parser.parse_args()
    import ray
    import torch

    torch.set_num_threads(1)  # one core per actor and for the local run alike
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    result = {
        "benchmark": "bench_ray",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
        "model": "tests/data/fixtures/tag2text-tiny (tags + caption)",
        "images": args.images,
        "batch_size": args.batch_size,
        "ray": ray.__version__,
        "throughput": throughput(args.images, args.batch_size),
        "write": write_rate(args.write_samples, args.write_batch),
        "write_batch": args.write_batch,
    }
    ray.shutdown()
    print("| backend | actors | images/s | per actor |\n|---|---|---|---|")
    for r in result["throughput"]:
        print(f"| {r['backend']} | {r['actors']} | {r['images_per_s']} | {r['per_actor']} |")
    print("\n| labels written by the driver | samples/s |\n|---|---|")
    for r in result["write"]:
        print(f"| {r['labels']} | {r['samples_per_s']} |")
    out = ROOT / "benchmarks" / "results" / "bench_ray_cpu.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
