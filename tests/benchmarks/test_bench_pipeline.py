"""benchmarks/bench_pipeline.py runs on the tiny fixture: every side measured, every image
labelled by every ``label`` run, the JSON report complete (no timing is checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_pipeline_benchmark_labels_every_image_and_reports_each_side(tmp_path, tag2text_dir):
    out = tmp_path / "results"
    command = [
        sys.executable,
        str(BENCHMARKS / "bench_pipeline.py"),
        *("--model-dir", str(tag2text_dir), "--work-dir", str(tmp_path)),
        *("--images", "5", "--batch-size", "2", "--threads", "1", "--out", str(out)),
        *("--num-workers", "default", "1"),
    ]
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "bench_pipeline-tag2text-tiny-cpu.json").read_text())
    assert (report["images"], report["batch_size"], report["dtype"]) == (5, 2, "bfloat16")
    assert report["machine"]["device"] == "cpu"
    tags = report["tags_per_image_first_batch"]  # thresholded to about 15 (the default)
    assert 0 < report["threshold"] < 1 and min(tags) <= 15 <= max(tags) and len(tags) == 2
    sides = [r["side"] for r in report["rows"]]
    assert sides[:2] == ["model only", "engine from paths"]
    assert sides[2:] == ["label, default (0) workers", "label, 1 workers"]
    assert report["rows"][0]["fraction_of_model_only"] == 1.0
    for row in report["rows"]:
        assert row["images_per_s"] == 5 / row["seconds"] > 0
    for row in report["rows"][2:]:
        for run in row["runs"]:
            assert run["done"] == run["labelled_in_dataset"] == run["samples"] == 5
            assert run["failed"] == 0 and 0 < run["model_busy_s"] < run["seconds"]
    assert set(report["timed"]) == {"model only", "engine from paths", "label", "model_busy_s"}
    assert "of model only" in done.stdout
