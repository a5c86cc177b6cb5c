"""Whole-pipeline throughput: ``label`` on a folder of images against the model alone.

On the same JPEG files, the same dtype and batch size, one tagger loaded once:

- **model only**: ``Tagger.predict_tensors`` on images already decoded and preprocessed;
- **engine from paths**: ``Tagger.predict`` on the file paths (decoding in the same process);
- **label**: what ``python -m tag2text_zoo label DIR`` runs once its model is loaded and its
  dataset made (``dataset_for``, then ``label_samples``), into a fresh dataset, once per
  ``--num-workers`` setting (by default: the CLI's default, and one loader worker). Timed: the
  whole ``label_samples`` call (pending samples, metadata, image loading, the model, writing
  every batch, the fields' info), nothing before it; within it, the seconds the model was busy
  (a measure of idle time that does not depend on the other sides' runs).

The sides take turns (alternating order) for ``--repeats`` rounds; the table gives the median
images/s of each and its fraction of the model-only figure.

A random model passes about 760 of Tag2Text's 3,429 tags per image at the default threshold, and a
``label`` run would then mostly measure building and writing 760 labels per image; real models
give tens. So the tagger gets a global threshold at which the first batch's images have
``--tags-per-image`` tags (median; 0 keeps the model's thresholds), and the JSON records it.

    flock /tmp/t2t-cpu.lock python benchmarks/bench_pipeline.py --work-dir SCRATCH/bench
    python benchmarks/bench_pipeline.py --model-dir tests/data/fixtures/tag2text-tiny \\
        --work-dir /tmp/bench --images 6 --batch-size 2        # a smoke run

Writes ``benchmarks/results/bench_pipeline-<model>-cpu.json``.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# FiftyOne reads these at import time: a private database (removed at exit), no telemetry.
if "FIFTYONE_DATABASE_DIR" not in os.environ:
    os.environ["FIFTYONE_DATABASE_DIR"] = tempfile.mkdtemp(prefix="bench-pipeline-fodb-")
    atexit.register(shutil.rmtree, os.environ["FIFTYONE_DATABASE_DIR"], ignore_errors=True)
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")

import measure  # noqa: E402 - after the environment FiftyOne reads
import torch  # noqa: E402
from random_models import BenchModel  # noqa: E402

from tag2text_zoo import (  # noqa: E402
    TaggerModel,
    TaggerModelConfig,
    dataset_for,
    label_samples,
    load_tagger,
)
from tag2text_zoo.defaults import TAGGER_BATCH_SIZE  # noqa: E402
from tag2text_zoo.fo.base.run import loader_workers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMED = {
    "model only": "Tagger.predict_tensors on decoded, preprocessed images",
    "engine from paths": "Tagger.predict on the file paths (decoding included)",
    "label": "the whole label_samples call on a fresh dataset of the images (dataset_for, as "
    "the CLI; not timed), tags only: pending samples, metadata, loading, model, every write",
    "model_busy_s": "within a label run: the sum of TaggerModel.predict_items calls (the model "
    "and the conversion of its results to FiftyOne labels)",
}


def _workers_name(workers: int | None, device: torch.device) -> str:
    return f"default ({loader_workers(None, device)})" if workers is None else str(workers)


def label_run(tagger, images_dir: Path, batch_size: int, workers: int | None) -> dict:
    """One ``label`` run into a fresh dataset (deleted afterwards): seconds, the seconds the
    model was busy within them (its ``predict_items`` calls), and true counts."""
    dataset = dataset_for(images_dir, f"bench-pipeline-{uuid.uuid4().hex[:8]}")
    try:
        model = TaggerModel(tagger, TaggerModelConfig(caption=False))
        busy: list[float] = []
        predict_items = model.predict_items

        def timed_predict(items: list) -> list:
            wall = time.perf_counter()
            labels = predict_items(items)
            busy.append(time.perf_counter() - wall)
            return labels

        model.predict_items = timed_predict  # type: ignore[method-assign]
        batches: list[float] = []
        start = time.perf_counter()
        report = label_samples(
            dataset,
            model,
            "bench",
            batch_size=batch_size,
            num_workers=workers,
            progress=lambda done, total: batches.append(time.perf_counter() - start),
        )
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "first_batch_s": batches[0] if batches else None,
            "model_busy_s": sum(busy),
            "model_busy_fraction": sum(busy) / seconds,
            "done": report.done,
            "failed": report.failed,
            "labelled_in_dataset": dataset.count("bench_tags"),
            "samples": len(dataset),
        }
    finally:
        dataset.delete()


def threshold_for(tagger, pixels: torch.Tensor, tags_per_image: int) -> float:
    """The global threshold at which the median image of ``pixels`` has ``tags_per_image`` tags."""
    probs = tagger.tag_probabilities(pixels).cpu().masked_fill(tagger.deleted.cpu(), 0.0)
    kth = probs.topk(min(tags_per_image, probs.shape[1]), dim=1).values[:, -1]
    return float(kth.median()) * (1 - 1e-6)  # the k-th tag itself passes (the test is ">")


def rounds(sides: dict[str, Callable[[], dict]], repeats: int) -> dict[str, list[dict]]:
    """Every side once per round, the order reversed every other round."""
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for r in range(repeats):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            run = sides[side]()
            runs[side].append(run)
            print(f"  round {r + 1} {side:28s} {run['seconds']:8.2f} s")
    return runs


def summarise(runs: dict[str, list[dict]], images: int) -> list[dict]:
    """Median images/s per side and its fraction of the model-only figure."""
    rows = []
    for side, side_runs in runs.items():
        seconds = measure.median([r["seconds"] for r in side_runs])
        rows.append({"side": side, "seconds": seconds, "images_per_s": images / seconds})
        rows[-1]["runs"] = side_runs
    model_only = rows[0]["images_per_s"]
    for row in rows:
        row["fraction_of_model_only"] = row["images_per_s"] / model_only
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tag2text-swin-14m", help="catalogue name (random)")
    parser.add_argument("--model-dir", type=Path, default=None, help="a model directory instead")
    parser.add_argument("--work-dir", type=Path, required=True, help="random model and images")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument(
        "--batch-size", type=int, default=TAGGER_BATCH_SIZE, help="the CLI's default"
    )
    parser.add_argument(
        "--num-workers",
        nargs="+",
        default=["default", "1"],
        help="label runs' loader workers ('default': what the CLI uses)",
    )
    parser.add_argument(
        "--tags-per-image",
        type=int,
        default=15,
        help="threshold the random model to about this many tags per image (0: its own)",
    )
    parser.add_argument("--engine-from-paths", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")

    bench_model = BenchModel.of(args.model_dir, args.model, args.work_dir)
    model_dir, name = bench_model.directory, bench_model.name
    images_dir = args.work_dir / f"pipeline-images-{args.images}"
    paths = measure.write_images(images_dir, args.images)
    tagger = load_tagger(model_dir, device=device, dtype=args.dtype, batch_size=args.batch_size)
    pixels = torch.stack([tagger.preprocess(p) for p in paths])
    threshold = None
    if args.tags_per_image:
        threshold = threshold_for(tagger, pixels[: args.batch_size], args.tags_per_image)
        tagger = load_tagger(
            model_dir,
            device=device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            threshold=threshold,
        )
    first = tagger.predict_tensors(pixels[: args.batch_size], caption=False)  # one-off costs too
    tags = [len(r.tags) for r in first]

    def timed(fn: Callable[[], object]) -> dict:
        return {"seconds": measure.timed(fn, device)[0]}

    sides: dict[str, Callable[[], dict]] = {
        "model only": lambda: timed(lambda: tagger.predict_tensors(pixels, caption=False)),
    }
    if args.engine_from_paths:
        sides["engine from paths"] = lambda: timed(lambda: tagger.predict(paths, caption=False))
    for text in args.num_workers:
        workers = None if text == "default" else int(text)
        side = f"label, {_workers_name(workers, device)} workers"
        sides[side] = lambda w=workers: label_run(tagger, images_dir, args.batch_size, w)
    print(
        f"{name}: {len(paths)} images, {args.dtype}, batch {args.batch_size}, tags only, "
        f"threshold {threshold}: {tags} tags per image in the first batch"
    )
    rows = summarise(rounds(sides, args.repeats), len(paths))
    result = {
        "benchmark": "bench_pipeline",
        "model": name,
        "weights": bench_model.weights,
        "machine": measure.machine(device),
        "images": len(paths),
        "image_sizes": sorted({f"{w}x{h}" for w, h in map(_size, paths)}),
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "mode": "tags",
        "threshold": threshold,
        "tags_per_image_first_batch": tags,
        "rounds": args.repeats,
        "timed": TIMED,
        "rows": rows,
    }
    print_table(result)
    measure.write_result(args.out, result)
    return result


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def print_table(result: dict) -> None:
    print(f"{'side':32s}{'seconds':>9s}{'images/s':>10s}{'of model only':>15s}")
    for r in result["rows"]:
        print(
            f"{r['side']:32s}{r['seconds']:9.2f}{r['images_per_s']:10.2f}"
            f"{r['fraction_of_model_only']:15.0%}"
        )


if __name__ == "__main__":
    main()
