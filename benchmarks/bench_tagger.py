"""Tagger speed against the official code, measured side by side in one run.

Our engine and the official recognize-anything code (in its own environment, a subprocess) load
the same checkpoint file, a full-size catalogue model with random weights in the official layout
(benchmarks/random_models.py), and run on the same JPEG files. The two sides take turns, several
rounds, and the medians are compared: seconds per image (wall clock) and CPU seconds per image.
Tags and captions of the two sides are compared too, and each mode's matrix-product FLOPs per
image are set against the machine's measured matrix-product peak (the fraction of the hardware
limit; int8 against the int8 layer's peak). Then, ours alone: the tags and captions of bfloat16 or
int8 against float32 on more images, and peak memory and speed per batch size.

    python benchmarks/bench_tagger.py --work-dir SCRATCH/bench \
        --official-python SCRATCH/ref/venv/bin/python --official-src SCRATCH/ref/src \
        --official-bert SCRATCH/ref/bert-base-uncased
    python benchmarks/bench_tagger.py --model ram-swin-large-14m ...   # RAM, RAM++ likewise
    python benchmarks/bench_tagger.py --device cuda --work-dir /tmp/bench   # ours only

Without ``--official-python`` only our side runs (no ratios). Prints tables and writes
``benchmarks/results/bench_tagger-<model>-<device>.json``; ``benchmarks/report.py`` turns the
results into the README's tables.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path

import measure
import torch
from official import OfficialBuild, OfficialProcess
from random_models import BenchModel

from tag2text_zoo import Tagger, TagResult, load_tagger
from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.defaults import TAGGER_BATCH_SIZE

ROOT = Path(__file__).resolve().parents[1]
MODES = {"tag2text": ["tags", "tags+caption"], "ram": ["tags"], "ram_plus": ["tags"]}
QUALITY_MARGIN = 0.02  # bfloat16 or int8 may flip a tag only this close to its threshold


def _ours_run(tagger: Tagger, pixels: torch.Tensor, mode: str) -> list:
    return tagger.predict_tensors(pixels, caption=mode == "tags+caption")


def _outputs(results: list, mode: str) -> list[dict]:
    out = []
    for r in results:
        item = {"tags": r.tag_string}
        if mode == "tags+caption":
            item["caption"] = r.caption
            item["caption_tokens"] = len(r.caption_token_ids)
        out.append(item)
    return out


def compare_tags(tagger: Tagger, probs: torch.Tensor, ours: list[str], theirs: list[str]) -> dict:
    """Tag strings of two sides per image; for the tags in one only, how far our float32
    probability is from its threshold (a flip that close is rounding, not a fault).

    A name borne by several classes (Tag2Text's list repeats some) counts with the class of that
    name nearest its threshold: a string does not say which of them it came from.
    """
    classes: dict[str, list[int]] = {}
    for i, name in enumerate(tagger.tag_names):
        classes.setdefault(name, []).append(i)
    distance = (probs - tagger.thresholds.cpu()).abs()
    margins = []
    for row, a, b in zip(distance, ours, theirs):
        differ = set(a.split(" | ")) ^ set(b.split(" | "))
        margins += [float(row[classes[t]].min()) for t in differ if t]
    return _agreement(len(ours), sum(a == b for a, b in zip(ours, theirs)), margins)


def _agreement(images: int, identical: int, margins: list[float]) -> dict:
    return {
        "images": images,
        "identical": identical,
        "differing_tags": len(margins),
        "max_margin_of_differing_tags": max(margins, default=None),
    }


def flops_per_image(tagger: Tagger, pixels: torch.Tensor, mode: str) -> float:
    """Matrix-product FLOPs per image that our engine runs in ``mode`` (float32 model)."""
    tagger.model.requires_grad_(False)  # the counter's module hooks fail on grad-requiring weights
    return measure.count_flops(lambda: _ours_run(tagger, pixels, mode)) / len(pixels)


def side_by_side(
    official: OfficialProcess | None,
    taggers: dict[str, Tagger],
    paths: list[Path],
    pixels: torch.Tensor,
    modes: list[str],
    repeats: int,
    from_paths: list[str] = (),
) -> tuple[dict, dict]:
    """Rounds of every side in every mode, alternating the order; per-image seconds per round.

    Ours runs on preprocessed pixels, as the official side does (its runner preprocesses each
    image once); the taggers named in ``from_paths`` also run from the JPEG files
    (``Tagger.predict``: loading, resizing and the model, end to end)."""
    device = next(iter(taggers.values())).device
    sides: dict[str, Callable[[str], tuple[float, float, list[dict]]]] = {}
    if official is not None:

        def run_official(mode: str) -> tuple[float, float, list[dict]]:
            reply = official.run(mode, paths)
            return sum(reply["wall_s"]), sum(reply["cpu_s"]), reply["outputs"]

        sides["official float32"] = run_official

    def timed_side(call: Callable[[str], list]) -> Callable[[str], tuple[float, float, list[dict]]]:
        """A side of ours: ``call(mode)`` timed, its results as comparable outputs."""

        def run(mode: str) -> tuple[float, float, list[dict]]:
            box: list = []
            wall, cpu = measure.timed(lambda: box.append(call(mode)), device)
            return wall, cpu, _outputs(box[0], mode)

        return run

    for label, tagger in taggers.items():
        sides[f"ours {label}"] = timed_side(functools.partial(_ours_run, tagger, pixels))
        if label in from_paths:
            sides[f"ours {label} from paths"] = timed_side(
                lambda mode, tagger=tagger: tagger.predict(paths, caption=mode == "tags+caption")
            )
    for mode in modes:  # warm-up: first calls pay one-off costs on both sides
        for run in sides.values():
            run(mode)
    times: dict = {(s, m): {"wall": [], "cpu": []} for s in sides for m in modes}
    outputs: dict = {}
    for r in range(repeats):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for mode in modes:
            for side in order:
                wall, cpu, out = sides[side](mode)
                times[side, mode]["wall"].append(wall / len(paths))
                times[side, mode]["cpu"].append(cpu / len(paths))
                outputs[side, mode] = out
                print(f"  round {r + 1} {mode:13s} {side:23s} {wall / len(paths):7.3f} s/img")
    return times, outputs


def quality(fp32: Tagger, a: list[TagResult], low: Tagger, pixels: torch.Tensor) -> dict:
    """Tags (class by class) and captions of a lower-precision tagger against float32's ``a``
    on the same images."""
    b = low.predict_tensors(pixels, caption=fp32.can_caption)
    thresholds = fp32.thresholds.cpu()
    margins = []
    for x, y in zip(a, b):
        distance = (torch.sigmoid(torch.from_numpy(x.logits)) - thresholds).abs()
        margins += [float(distance[i]) for i in set(x.tag_indices) ^ set(y.tag_indices)]
    identical = sum(x.tag_indices == y.tag_indices for x, y in zip(a, b))
    result = _agreement(len(a), identical, margins)
    margin = result["max_margin_of_differing_tags"]
    result["all_within_margin"] = margin is None or margin <= QUALITY_MARGIN
    if fp32.can_caption:
        result["identical_captions"] = sum(x.caption == y.caption for x, y in zip(a, b))
    return result


def memory_sweep(
    taggers: dict[str, Tagger], pixels: torch.Tensor, modes: list[str], batch_sizes: list[int]
) -> list[dict]:
    """Peak memory and speed of one call per dtype, mode and batch size (ours)."""
    rows = []
    for dtype, tagger in taggers.items():
        device, kept = tagger.device, tagger.batch_size
        for batch in batch_sizes:
            tagger.batch_size = batch
            batch_pixels = pixels.repeat((batch + len(pixels) - 1) // len(pixels), 1, 1, 1)[:batch]
            for mode in modes:
                _ours_run(tagger, batch_pixels, mode)  # warm-up at this size
                measure.reset_peak_memory(device)
                run = functools.partial(_ours_run, tagger, batch_pixels, mode)
                wall, cpu = measure.timed(run, device)
                rows.append(
                    {
                        "dtype": dtype,
                        "mode": mode,
                        "batch_size": batch,
                        "s_per_image": wall / batch,
                        "cpu_s_per_image": cpu / batch,
                        "peak_memory_mb": measure.peak_memory_mb(device),
                    }
                )
                print(
                    f"  {dtype:9s} {mode:13s} batch {batch:3d} {wall / batch:7.3f} s/img "
                    f"{rows[-1]['peak_memory_mb']:8.0f} MB"
                )
        tagger.batch_size = kept
    return rows


def summarise(times: dict, flops: dict, peaks: dict, agreement: dict) -> list[dict]:
    rows = []
    for (side, mode), t in times.items():
        dtype = side.split()[1]  # "official float32", "ours bfloat16", "ours bfloat16 compiled"
        wall, cpu = measure.median(t["wall"]), measure.median(t["cpu"])
        base = times.get(("official float32", mode))
        peak = peaks.get(dtype, peaks["float32"])  # float16: against the float32 peak
        rows.append(
            {
                "side": side,
                "mode": mode,
                "dtype": dtype,
                "s_per_image": wall,
                "cpu_s_per_image": cpu,
                "s_per_image_rounds": t["wall"],
                "cpu_s_per_image_rounds": t["cpu"],
                "vs_official": measure.median(base["wall"]) / wall if base else None,
                "vs_official_cpu": measure.median(base["cpu"]) / cpu if base else None,
                "gflop_per_image": flops[mode] / 1e9,
                "fraction_of_limit": flops[mode] / wall / (peak * 1e9),
                "agreement_with_official": agreement.get((side, mode)),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tag2text-swin-14m", choices=sorted(CATALOGUE))
    parser.add_argument(
        "--model-dir", type=Path, help="an existing model directory instead (e.g. a tiny fixture)"
    )
    parser.add_argument("--work-dir", type=Path, required=True, help="scratch: model, images")
    parser.add_argument("--official-python", type=Path, help="the official build's interpreter")
    parser.add_argument("--official-src", type=Path, help="folder holding the official `ram`")
    parser.add_argument("--official-bert", type=Path, help="bert-base-uncased tokenizer folder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        default=["float32", "bfloat16"],
        help="float32 (the reference's, always run), bfloat16, float16 (GPU), int8 (CPU)",
    )
    parser.add_argument(
        "--compiled-dtypes",
        nargs="*",
        default=[],
        help="also time these dtypes with compile_encoder=True (side by side; not in the sweep)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=TAGGER_BATCH_SIZE, help="the engine's default"
    )
    parser.add_argument("--images", type=int, default=16, help="images timed side by side")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of each side")
    parser.add_argument("--quality-images", type=int, default=24)
    parser.add_argument("--sweep", nargs="*", type=int, default=[1, 4, 8, 16], help="batch sizes")
    parser.add_argument(
        "--from-paths",
        nargs="*",
        default=[],
        help="these dtypes also run end to end from the image files (Tagger.predict)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--peak-repeats", type=int, default=5, help="timed runs of each matrix-product peak"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    bench_model = BenchModel.of(args.model_dir, args.model, args.work_dir)
    model_dir, name = bench_model.directory, bench_model.name
    paths = measure.write_images(args.work_dir / "images", max(args.images, args.quality_images))
    variants = [(d, False) for d in args.dtypes] + [(d, True) for d in args.compiled_dtypes]
    taggers = {
        f"{dtype} compiled" if compiled else dtype: load_tagger(
            model_dir,
            device=device,
            dtype=dtype,
            batch_size=args.batch_size,
            exif_transpose=False,  # the official code ignores EXIF orientation
            compile_encoder=compiled,
        )
        for dtype, compiled in variants
    }
    fp32 = taggers["float32"]
    model_type = fp32.config.model_type
    modes = MODES[model_type]
    pixels = torch.stack([fp32.preprocess(p) for p in paths])
    timed_paths, timed_pixels = paths[: args.images], pixels[: args.images]

    official = None
    if args.official_python:
        build = OfficialBuild(args.official_python, args.official_src, args.official_bert)
        checkpoint = model_dir / fp32.config.checkpoint_file
        official = OfficialProcess(
            build, model_type, checkpoint, args.threads, args.work_dir / "official.log"
        )
    peak_dtypes = ["float32", "bfloat16", *(["int8"] if "int8" in taggers else [])]
    peaks = {d: measure.matmul_peak(d, device, args.peak_repeats) for d in peak_dtypes}
    flops = {m: flops_per_image(fp32, timed_pixels[:2], m) for m in modes}
    print(f"{name}: {len(timed_paths)} images, {args.repeats} rounds, {device}")
    times, outputs = side_by_side(
        official, taggers, timed_paths, timed_pixels, modes, args.repeats, args.from_paths
    )
    peaks = {  # the best of before and after: the attainable peak on this machine
        d: max(p, measure.matmul_peak(d, device, args.peak_repeats)) for d, p in peaks.items()
    }
    probs = fp32.tag_probabilities(timed_pixels).cpu()
    agreement = {}
    for (side, mode), out in outputs.items():
        if official is not None and side != "official float32":
            theirs = outputs["official float32", mode]
            a = compare_tags(fp32, probs, [o["tags"] for o in out], [o["tags"] for o in theirs])
            if mode == "tags+caption":
                a["identical_captions"] = sum(
                    o["caption"] == t["caption"] for o, t in zip(out, theirs)
                )
            agreement[side, mode] = a
    rows = summarise(times, flops, peaks, agreement)
    quality_pixels = pixels[: args.quality_images]
    fp32_results = fp32.predict_tensors(quality_pixels, caption=fp32.can_caption)
    quality_rows = {
        label: quality(fp32, fp32_results, tagger, quality_pixels)
        for label, tagger in taggers.items()
        if label != "float32"
    }
    print("memory and speed per batch size (ours):")
    eager = {label: tagger for label, tagger in taggers.items() if label in args.dtypes}
    sweep = memory_sweep(eager, timed_pixels, modes, args.sweep)
    caption_key = ("ours float32", "tags+caption")
    result = {
        "benchmark": "bench_tagger",
        "model": name,
        "weights": bench_model.weights,
        "machine": measure.machine(device),
        "batch_size": args.batch_size,
        "images": len(timed_paths),
        "rounds": args.repeats,
        "official": None
        if official is None
        else {
            "code": "recognize-anything @7cb804a, transformers 4.25.1",
            "entry_points": "inference_tag2text / inference_ram, batch 1, float32",
            "load_s": official.ready["load_s"],
        },
        "matmul_peak_gflops": peaks,
        "caption_tokens": [o["caption_tokens"] for o in outputs.get(caption_key, [])],
        "rows": rows,
        "quality_vs_float32": quality_rows,
        "memory_sweep": sweep,
    }
    if official is not None:
        official.close()
    print_table(result)
    measure.write_result(args.out, result)
    return result


def print_table(result: dict) -> None:
    print(
        f"{'mode':14s}{'side':25s}{'s/img':>8s}{'CPU s/img':>11s}{'vs official':>13s}"
        f"{'of limit':>10s}"
    )
    for r in result["rows"]:
        ratio = f"{r['vs_official']:.2f}x" if r["vs_official"] else ""
        print(
            f"{r['mode']:14s}{r['side']:25s}{r['s_per_image']:8.3f}"
            f"{r['cpu_s_per_image']:11.3f}{ratio:>13s}{r['fraction_of_limit']:10.0%}"
        )


if __name__ == "__main__":
    main()
