"""The README's performance tables, printed as Markdown from the benchmarks' JSON results.

python benchmarks/report.py benchmarks/results/bench_tagger-tag2text-swin-14m-cpu.json
python benchmarks/report.py --summary benchmarks/results/bench_tagger-*-cpu.json   # README tables
python benchmarks/report.py benchmarks/results/avx512-epyc/*.json   # grounded, dense too
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def speed_table(result: dict) -> str:
    """Side-by-side rows: seconds per image (median of the rounds), ratio, fraction of the limit."""
    lines = [
        "| mode | side | s / image | CPU s / image | vs official | GFLOP / image | of limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ratio = f"{r['vs_official']:.2f}x" if r["vs_official"] else ""
        lines.append(
            f"| {r['mode']} | {r['side']} | {r['s_per_image']:.3f} | {r['cpu_s_per_image']:.3f}"
            f" | {ratio} | {r['gflop_per_image']:.0f} | {r['fraction_of_limit']:.0%} |"
        )
    return "\n".join(lines)


def agreement_table(result: dict) -> str:
    """Our tags and captions against the official code's, and lower precisions against float32."""
    lines = ["| compared | images | identical tags | identical captions | tags differing |"]
    lines.append("|---|---|---|---|---|")
    for r in result["rows"]:
        a = r["agreement_with_official"]
        if a:
            captions = a.get("identical_captions", "")
            lines.append(
                f"| {r['side']} vs official, {r['mode']} | {a['images']} | {a['identical']}"
                f" | {captions} | {a['differing_tags']} |"
            )
    for dtype, q in result["quality_vs_float32"].items():
        margin = q["max_margin_of_differing_tags"]
        within = "" if margin is None else f" (each within {margin:.4f} of its threshold)"
        lines.append(
            f"| ours {dtype} vs ours float32 | {q['images']} | {q['identical']} | "
            f"{q.get('identical_captions', '')} | {q['differing_tags']}{within} |"
        )
    return "\n".join(lines)


def memory_table(result: dict) -> str:
    lines = ["| dtype | mode | batch | s / image | peak memory (MB) |", "|---|---|---|---|---|"]
    for r in result["memory_sweep"]:
        lines.append(
            f"| {r['dtype']} | {r['mode']} | {r['batch_size']} | {r['s_per_image']:.3f}"
            f" | {r['peak_memory_mb']:.0f} |"
        )
    return "\n".join(lines)


MODEL_NAMES = {"tag2text": "Tag2Text", "ram": "RAM", "ram-plus": "RAM++"}
SUMMARY_SIDES = {
    "ours float32": "ours float32",
    "ours bfloat16": "ours bfloat16",
    "ours bfloat16 compiled": "ours bfloat16, compiled encoder",
    "ours int8": "ours int8",
}


def summary_table(results: list[dict]) -> str:
    """One row per model and mode: the official code's seconds per image, ours and the ratios,
    with a column for each of our settings that one of the results ran."""
    ran = {r["side"] for result in results for r in result["rows"]}
    sides = {side: name for side, name in SUMMARY_SIDES.items() if side in ran}
    lines = [
        "| model | mode | official float32 s / image | " + " | ".join(sides.values()) + " |",
        "|---|---|---|" + "---|" * len(sides),
    ]
    for result in results:
        model = MODEL_NAMES[result["model"].split("-swin")[0]]
        rows = {(r["side"], r["mode"]): r for r in result["rows"]}
        for mode in dict.fromkeys(r["mode"] for r in result["rows"]):
            cells = [
                model,
                mode.replace("+", " + "),
                f"{rows['official float32', mode]['s_per_image']:.3f}",
            ]
            for side in sides:
                r = rows.get((side, mode))
                cells.append(f"{r['s_per_image']:.3f} (**{r['vs_official']:.2f}x**)" if r else "")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


GROUNDED_STAGES = {
    "detection": "grounded: detection",
    "sam_encoder": "grounded: SAM encoder",
    "sam_decoder": "grounded: SAM decoder, {boxes} boxes",
    "end_to_end": "grounded: end to end",
}


def grounded_table(result: dict) -> str:
    """bench_grounded: images/s per stage and side; end to end with its ratio to the demos'."""
    sides = list(dict.fromkeys(r["setting"] for r in result["results"]))
    value = {(r["setting"], r["stage"]): r["images_per_s"] for r in result["results"]}
    names = {s: "demos' settings, re-created" if s == "demo" else s for s in sides}
    lines = [
        f"| images/s ({result['device']}) | " + " | ".join(names[s] for s in sides) + " |",
        "|---|" + "---|" * len(sides),
    ]
    for stage, label in GROUNDED_STAGES.items():
        cells = [label.format(boxes=result["boxes_per_image"])]
        for side in sides:
            cell = f"{value[side, stage]:.3f}"
            if stage == "end_to_end" and side != "demo":
                cell += f" (**{value[side, stage] / value['demo', stage]:.2f}x**)"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dense_table(result: dict) -> str:
    """bench_dense: seconds per image per mode and window stride, the baseline's and ours."""
    sides = list(dict.fromkeys(r["side"] for r in result["rows"]))
    rows = {(r["mode"], r["settings"], r["side"]): r for r in result["rows"]}
    lines = [
        "| s / image | " + " | ".join(sides) + " | labels agree |",
        "|---|" + "---|" * (len(sides) + 1),
    ]
    for mode, settings in dict.fromkeys((r["mode"], r["settings"]) for r in result["rows"]):
        cells = [f"{mode}, {settings}"]
        for side in sides:
            r = rows[mode, settings, side]
            ratio = "" if side == result["baseline"] else f" (**{r['speedup']:.2f}x**)"
            cells.append(f"{r['seconds_per_image']:.3f}{ratio}")
        agree = min(rows[mode, settings, side]["labels_agree"] for side in sides)
        cells.append(f"{agree:.2%}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_tables(result: dict) -> None:
    """Every table a bench_tagger, bench_grounded or bench_dense result holds, under a line
    saying what was run where; other files are named as having none here."""
    kind = result.get("benchmark")
    if kind == "bench_grounded":
        print(
            f"grounded segmentation on {result['device']} ({result['torch_threads']} threads), "
            f"{result['images']} images, {result['boxes_per_image']} boxes each, "
            f"{result['repeats']} rounds, {result['models']}:\n\n{grounded_table(result)}\n"
        )
        return
    if kind not in ("bench_tagger", "bench_dense"):
        print(f"(no table here for a {kind or 'different'} result: its benchmark prints its own)\n")
        return
    machine = result["machine"]
    where = f"{machine['device']} ({machine['torch_threads']} threads), {result['images']} images"
    if kind == "bench_dense":
        print(
            f"{result['model']} dense segmentation on {where}, {result['repeats']} rounds, "
            f"{result['classes']} classes:\n\n{dense_table(result)}\n"
        )
        return
    print(
        f"{result['model']} on {where}, {result['rounds']} rounds, batch {result['batch_size']}:\n"
    )
    for table in (speed_table, agreement_table, memory_table):
        print(table(result) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--summary", action="store_true", help="only the README's summary table")
    args = parser.parse_args()
    if args.summary:
        print(summary_table([json.loads(path.read_text()) for path in args.results]))
        return
    for path in args.results:
        print_tables(json.loads(path.read_text()))


if __name__ == "__main__":
    main()
