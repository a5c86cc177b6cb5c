"""benchmarks/bench_dense.py runs its sides on the tiny TagAlign fixture and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dense_benchmark_compares_each_side_with_the_re_created_baseline(tmp_path):
    clip = ROOT / "tests" / "data" / "fixtures" / "tagalign-tiny" / "clip"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_dense.py"), "--clip", str(clip)]
    command += ["--images", "1", "--repeats", "1", "--threads", "1", "--out", str(tmp_path)]
    printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads((tmp_path / "bench_dense-clip-cpu.json").read_text())
    rows = result["rows"]
    assert {(r["mode"], r["settings"]) for r in rows} == {
        (mode, settings)
        for mode in ("training-free", "tagalign")
        for settings in ("main stride 224", "voc stride 56")
    }
    for row in rows:
        assert row["seconds_per_image"] > 0 and len(row["rounds"]) == 1
        if row["side"] == result["baseline"]:
            assert row["batch_size"] == 1 and row["speedup"] == 1.0
            assert row["labels_agree"] == 1.0 and row["max_score_diff"] == 0.0
        elif row["side"] == "ours float32":  # batching windows changes nothing but speed
            assert row["labels_agree"] > 0.999 and row["max_score_diff"] < 1e-4
        else:
            assert row["side"] == "ours bfloat16" and row["labels_agree"] > 0.8
    assert len(rows) == 12 and "official settings, re-created" in printed
