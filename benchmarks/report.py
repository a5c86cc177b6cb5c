"""The README's performance tables, printed as Markdown from bench_tagger's JSON results.

python benchmarks/report.py benchmarks/results/bench_tagger-tag2text-swin-14m-cpu.json
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
    """Our tags and captions against the official code's, and bfloat16 against float32."""
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
    for dtype, q in result["bfloat16_quality"].items():
        margin = q["max_margin_of_differing_tags"]
        within = "" if margin is None else f" (each within {margin:.4f} of its threshold)"
        lines.append(
            f"| ours {dtype} vs ours float32, tags | {q['images']} | {q['identical']} | "
            f"| {q['differing_tags']}{within} |"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    for path in parser.parse_args().results:
        result = json.loads(path.read_text())
        machine = result["machine"]
        print(
            f"{result['model']} on {machine['device']} ({machine['torch_threads']} threads), "
            f"{result['images']} images, {result['rounds']} rounds, batch {result['batch_size']}:\n"
        )
        for table in (speed_table, agreement_table, memory_table):
            print(table(result) + "\n")


if __name__ == "__main__":
    main()
