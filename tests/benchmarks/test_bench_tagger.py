"""benchmarks/gpu_suite.sh is valid bash, and its CPU smoke mode runs benchmarks/bench_tagger.py
(our side: float32 and bfloat16, bfloat16 quality, memory sweep), the dense and the grounded
benchmarks on tiny models, writing the JSON reports and the suite's summary, which
benchmarks/report.py turns into Markdown tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tag2text_zoo import load_tagger
from tag2text_zoo.engines import onednn_linear

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_gpu_suite_smoke_mode_runs_the_tagger_dense_and_grounded_benchmarks(tmp_path):
    script = BENCHMARKS / "gpu_suite.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = {**os.environ, "OUT": str(tmp_path), "GPU_SUITE_SMOKE": "1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "bench_tagger-tag2text-tiny-cpu.json").read_text())
    assert report["machine"]["device"] == "cpu"
    sides = {(r["side"], r["mode"]) for r in report["rows"]}
    assert sides == {
        (f"ours {d}", m)
        for d in ("float32", "bfloat16", "bfloat16 from paths")
        for m in ("tags", "tags+caption")
    }
    assert all(r["s_per_image"] > 0 and r["gflop_per_image"] > 0 for r in report["rows"])
    assert report["quality_vs_float32"]["bfloat16"]["images"] == 3
    assert {(r["batch_size"], r["mode"]) for r in report["memory_sweep"]} == {
        (b, m) for b in (1, 2) for m in ("tags", "tags+caption")
    }
    assert all(r["peak_memory_mb"] > 0 for r in report["memory_sweep"])
    assert "vs official" in (tmp_path / "bench_tagger_smoke.log").read_text()
    summary = json.loads((tmp_path / "suite.json").read_text())
    assert summary["steps"][0]["rc"] == 0
    assert [step["rc"] for step in summary["steps"]] == [0, 0, 0]
    assert summary["results"] == [
        "bench_dense-clip-cpu.json",
        "bench_grounded-cpu.json",
        "bench_tagger-tag2text-tiny-cpu.json",
    ]
    dense = json.loads((tmp_path / "bench_dense-clip-cpu.json").read_text())
    assert len(dense["rows"]) == 12 and dense["machine"]["device"] == "cpu"
    grounded = json.loads((tmp_path / "bench_grounded-cpu.json").read_text())
    assert grounded["writes_labels"] is False  # as on the GPU machine, which has no FiftyOne
    assert {r["setting"] for r in grounded["results"]} == {
        "demo", "engine float32", "engine bfloat16"
    }  # fmt: skip
    tables = subprocess.run(
        [sys.executable, str(BENCHMARKS / "report.py"), str(tmp_path / summary["results"][2])],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "| tags+caption | ours bfloat16 |" in tables
    assert "| bfloat16 | tags | 2 |" in tables


def test_a_repeated_tag_name_is_measured_at_its_class_nearest_the_threshold(monkeypatch):
    """Tag2Text's list repeats names; a flipped name must not be blamed on another class's
    probability (it once reported a 0.56 margin for a 0.001 flip)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_tagger import compare_tags

    tagger = SimpleNamespace(tag_names=["cat", "dog", "cat"], thresholds=torch.full((3,), 0.5))
    probs = torch.tensor([[0.499, 0.9, 0.05]])  # the first "cat" sits at its threshold
    result = compare_tags(tagger, probs, ["dog"], ["cat | dog"])
    assert result["differing_tags"] == 1
    assert abs(result["max_margin_of_differing_tags"] - 0.001) < 1e-6
    assert compare_tags(tagger, probs, ["dog"], ["dog"])["max_margin_of_differing_tags"] is None


@pytest.mark.parametrize(
    "machine, columns",
    [
        (".", ["ours float32", "ours bfloat16", "ours bfloat16, compiled encoder"]),
        ("avx512-epyc", ["ours float32", "ours bfloat16", "ours int8"]),
        ("avx2-epyc", ["ours float32", "ours int8"]),
    ],
)
def test_readme_performance_tables_are_the_ones_the_committed_results_give(
    machine, columns, monkeypatch
):
    """The README's summary table for each machine is regenerated from benchmarks/results, not
    typed by hand, with a column for each setting that machine's runs measured."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from report import summary_table

    folder = BENCHMARKS / "results" / machine
    results = [
        json.loads(path.read_text())
        for name in ("tag2text-swin-14m", "ram-swin-large-14m", "ram-plus-swin-large-14m")
        if (path := folder / f"bench_tagger-{name}-cpu.json").exists()
    ]
    table = summary_table(results)
    header = table.splitlines()[0]
    assert header == "| model | mode | official float32 s / image | " + " | ".join(columns) + " |"
    assert table.count("\n") == 1 + sum(len({r["mode"] for r in x["rows"]}) for x in results)
    assert table in (BENCHMARKS.parent / "README.md").read_text()


def test_flops_count_the_float32_taggers_onednn_products(
    tag2text_dir, tag2text_images, monkeypatch
):
    """A float32 tagger's oneDNN products count as the plain layers' would, so the fraction of
    the hardware limit stays true."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_tagger import flops_per_image

    def flops(tagger):
        pixels = torch.stack([tagger.preprocess(p) for p in tag2text_images[:2]])
        return flops_per_image(tagger, pixels, "tags+caption")

    onednn = load_tagger(tag2text_dir, device="cpu", exif_transpose=False)
    monkeypatch.setattr(onednn_linear, "onednn_linear_works", lambda dtype: False)
    plain = load_tagger(tag2text_dir, device="cpu", exif_transpose=False)
    layers = [type(m) for m in onednn.model.text_decoder.modules() if isinstance(m, nn.Linear)]
    if onednn_linear.OneDnnLinear not in layers:
        pytest.skip("this PyTorch has no oneDNN linear product")
    assert flops(onednn) == flops(plain) > 0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_cpu_peak_is_the_faster_of_the_two_products(monkeypatch, dtype):
    """The taggers run oneDNN's float32 and bfloat16 products on the CPU, so the measured peak
    (the limit the fractions are taken of) includes it: here ``F.linear`` is made slow, and the
    peak is not."""
    if not onednn_linear.onednn_linear_works(getattr(torch, dtype)):
        pytest.skip(f"no {dtype} oneDNN linear product")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import measure

    linear = torch.nn.functional.linear

    def slow_linear(*args, **kwargs):
        time.sleep(1.0)
        return linear(*args, **kwargs)

    monkeypatch.setattr(measure, "F", SimpleNamespace(linear=slow_linear))
    m, k, n = measure.PEAK_SHAPE
    slow = 2 * m * k * n / 1e9  # GFLOP/s of a product that takes 1 s
    assert measure.matmul_peak(dtype, torch.device("cpu"), repeats=1) > slow
    monkeypatch.setattr(measure, "onednn_linear_works", lambda dtype: False)
    assert measure.matmul_peak(dtype, torch.device("cpu"), repeats=1) < slow
