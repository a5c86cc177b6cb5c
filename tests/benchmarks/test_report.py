"""benchmarks/report.py: the README's tables from the benchmarks' JSON results."""

from __future__ import annotations

import json
import sys

import pytest
from scripts import ROOT, load_script

RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def report():
    return load_script("benchmarks/report.py")


def _grounded(side_rates: dict[str, float]) -> dict:
    stages = ("tagging", "detection", "sam_encoder", "sam_decoder", "writing", "end_to_end")
    results = [
        {"setting": side, "stage": stage, "images_per_s": rate * (i + 1), "rounds": []}
        for side, rate in side_rates.items()
        for i, stage in enumerate(stages)
    ]
    return {
        "benchmark": "bench_grounded",
        "device": "cpu",
        "torch_threads": 2,
        "images": 4,
        "boxes_per_image": 8,
        "repeats": 3,
        "models": "random",
        "results": results,
    }


def test_grounded_table_gives_each_stage_and_the_end_to_end_ratio(report):
    table = report.grounded_table(_grounded({"demo": 0.01, "engine bfloat16": 0.02}))
    lines = table.splitlines()
    assert lines[0] == "| images/s (cpu) | demos' settings, re-created | engine bfloat16 |"
    assert lines[2] == "| grounded: detection | 0.020 | 0.040 |"
    assert lines[4] == "| grounded: SAM decoder, 8 boxes | 0.040 | 0.080 |"
    assert lines[5] == "| grounded: end to end | 0.060 | 0.120 (**2.00x**) |"
    assert len(lines) == 6  # tagging and writing are the benchmark's own, not the README's


def test_dense_table_gives_ratios_except_for_the_baseline_and_the_worst_agreement(report):
    baseline = "one window per pass (re-created)"
    rows = [
        {"mode": "tagalign", "settings": "stride 56", "side": side, "seconds_per_image": s,
         "speedup": 2.0 / s, "labels_agree": agree}
        for side, s, agree in ((baseline, 2.0, 1.0), ("ours bfloat16", 0.5, 0.9975))
    ]  # fmt: skip
    table = report.dense_table({"baseline": baseline, "rows": rows})
    assert table.splitlines()[2] == "| tagalign, stride 56 | 2.000 | 0.500 (**4.00x**) | 99.75% |"


@pytest.mark.parametrize("path", sorted(RESULTS.rglob("*.json")), ids=lambda p: p.name)
def test_every_committed_result_prints(report, path, capsys):
    """The README points at these files through report.py: none of them may break it."""
    result = json.loads(path.read_text())
    report.print_tables(result)
    out = capsys.readouterr().out
    if result.get("benchmark") in ("bench_tagger", "bench_dense", "bench_grounded"):
        assert out.count("\n|---|") >= 1
    else:
        assert out.startswith("(no table here")


def test_summary_table_from_the_command_line(monkeypatch, capsys, report):
    files = sorted((RESULTS / "avx512-epyc").glob("bench_tagger-*.json"))
    monkeypatch.setattr(sys, "argv", ["report.py", "--summary", *map(str, files)])
    report.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| model | mode | official float32 s / image |")
    assert {line.split(" | ")[0] for line in lines[2:]} == {"| Tag2Text", "| RAM", "| RAM++"}
