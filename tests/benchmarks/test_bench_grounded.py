"""benchmarks/bench_grounded.py runs on the tiny models and writes its JSON report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_grounded.py"


def test_bench_runs_on_tiny_models(tag2text_dir, grounded_dirs, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_grounded", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(
        [
            "--device",
            "cpu",
            "--detector",
            str(grounded_dirs[0]),
            "--segmenter",
            str(grounded_dirs[1]),
            "--tagger",
            str(tag2text_dir),
            "--images",
            "3",
            "--size",
            "64",
            "48",
            "--boxes",
            "2",
            "--batch-size",
            "2",
            "--repeats",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    on_disk = json.loads(Path(report["path"]).read_text())
    stages = {"tagging", "detection", "sam_encoder", "sam_decoder", "writing", "end_to_end"}
    for setting in ["demo", "engine float32", "engine bfloat16"]:
        rows = [r for r in on_disk["results"] if r["setting"] == setting]
        assert {r["stage"] for r in rows} == stages
        assert all(r["images_per_s"] > 0 and len(r["rounds"]) == 2 for r in rows)
    assert on_disk["images"] == 3 and on_disk["boxes_per_image"] == 2
    printed = capsys.readouterr().out.splitlines()
    end_to_end = next(line for line in printed if line.startswith("end_to_end"))
    assert end_to_end.count("x)") == 2  # both engine sides' ratios to the demo
