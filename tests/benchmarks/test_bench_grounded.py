"""benchmarks/bench_grounded.py runs on the tiny models and writes its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from scripts import ROOT, load_script
from transformers.models.grounding_dino.modeling_grounding_dino import (
    MultiScaleDeformableAttention,
)

from tag2text_zoo.engines.deformable_attention import GatherDeformableAttention
from tag2text_zoo.engines.onednn_linear import OneDnnLinear, onednn_linear_works


def _bench():
    return load_script("benchmarks/bench_grounded.py")


def test_bench_runs_on_tiny_models(tag2text_dir, grounded_dirs, tmp_path, capsys):
    report = _bench().main(
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
        rows = {r["stage"]: r for r in on_disk["results"] if r["setting"] == setting}
        # the engine's own SAM call is timed as well, and its end to end counts that call
        assert set(rows) == (stages if setting == "demo" else stages | {"sam_full"})
        assert all(r["images_per_s"] > 0 and len(r["rounds"]) == 2 for r in rows.values())
        slowest = min(rows, key=lambda stage: rows[stage]["images_per_s"])
        assert slowest == "end_to_end"
    assert on_disk["images"] == 3 and on_disk["boxes_per_image"] == 2
    assert on_disk["benchmark"] == "bench_grounded"  # report.py prints its table by this
    printed = capsys.readouterr().out.splitlines()
    end_to_end = next(line for line in printed if line.startswith("end_to_end"))
    assert end_to_end.count("x)") == 2  # both engine sides' ratios to the demo


def test_the_demo_side_runs_the_models_as_transformers_ships_them(grounded_dirs):
    """The baseline is not the engine under another name: grid_sample's deformable attention,
    PyTorch's own linear layers and activations; the engine's sides have theirs."""
    bench = _bench()
    args = SimpleNamespace(detector=str(grounded_dirs[0]), segmenter=str(grounded_dirs[1]))
    demo = bench.demo_segmenter(args, device="cpu")
    engine = bench.GroundedSegmenter(*bench._models(args), device="cpu")
    for seg, shipped in ((demo, True), (engine, False)):
        types = {type(m) for model in (seg.detector, seg.segmenter) for m in model.modules()}
        assert (MultiScaleDeformableAttention in types) is shipped
        assert (GatherDeformableAttention in types) is not shipped
        assert (OneDnnLinear in types) is (not shipped and onednn_linear_works())
    assert demo.sam.model is demo.segmenter


def test_bench_runs_without_fiftyone(tag2text_dir, grounded_dirs, tmp_path):
    """The GPU machine has no FiftyOne: the benchmark then times every stage but the writes."""
    argv = [
        *("--device", "cpu", "--dtypes", "float32", "--images", "1", "--size", "64", "48"),
        *("--detector", str(grounded_dirs[0]), "--segmenter", str(grounded_dirs[1])),
        *("--tagger", str(tag2text_dir), "--repeats", "1", "--out", str(tmp_path)),
    ]
    code = f"""
import runpy, sys
sys.modules["fiftyone"] = None  # any import of it now fails
sys.argv = ["bench_grounded.py", *{argv!r}]
runpy.run_path({str(ROOT / "benchmarks" / "bench_grounded.py")!r}, run_name="__main__")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "bench_grounded-cpu.json").read_text())
    assert report["writes_labels"] is False
    stages = {r["stage"] for r in report["results"] if r["setting"] == "engine float32"}
    assert stages == {
        "tagging",
        "detection",
        "sam_encoder",
        "sam_decoder",
        "sam_full",
        "end_to_end",
    }
