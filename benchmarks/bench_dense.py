"""DenseSegmenter side by side with the official evaluation's settings, re-created.

TagAlign's official evaluation (mmseg sliding-window inference) runs one 448x448 window per
forward pass in float32; the baseline here is our engine at those settings (``batch_size=1``,
float32), a re-creation, not the official code (its fixtures prove the maths equal; its mmseg
stack is not built here). Against it: our batched windows in float32 and each ``--dtypes``.
Full-size CLIP ViT-B/16 structure with random weights (no download) unless ``--clip`` names a
model; the TagAlign projector is a fresh one of the real shape. Inputs are 640x480 images
(resized to 597x448: 2 windows at stride 224, 4 at stride 56). The sides take turns, in
alternating order, for ``--repeats`` rounds; the table gives median seconds per image, the ratio
to the baseline, and how many pixels' labels agree with it.

    python benchmarks/bench_dense.py                                  # CPU: float32, bfloat16
    python benchmarks/bench_dense.py --device cuda --dtypes float32 bfloat16 --batch-size 16

Prints a table and writes JSON (``bench_dense-<clip>-<device>.json``) under ``--out``.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
from measure import machine, median, timed, write_result
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from tag2text_zoo.engines.dense import MAIN_SETTINGS, VOC_SETTINGS, DenseSegmenter
from tag2text_zoo.models.tagalign import TagAlignProjector

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT / "tests" / "data" / "fixtures" / "tagalign-tiny" / "clip"
CLASSES = ["sky", "building", "road", "car", "person", "tree", "grass", "dog"]
BASELINE = "one window per pass, float32 (official settings, re-created)"
SETTINGS = {"main stride 224": MAIN_SETTINGS, "voc stride 56": VOC_SETTINGS}


def _clip(name: str | None) -> CLIPModel:
    if name:
        return CLIPModel.from_pretrained(name)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8},
        vision_config={
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_attention_heads": 12,
            "patch_size": 16,
            "image_size": 224,
        },
        projection_dim=512,
    )
    return CLIPModel(config)


def _sides(clip, tokenizer, head, settings, args) -> dict[str, DenseSegmenter]:
    """The baseline and our sides; each has its own copy of the models (bfloat16 casts its own)."""
    specs = {BASELINE: (1, "float32")}
    specs.update({f"ours {d}": (args.batch_size, d) for d in args.dtypes})
    return {
        name: DenseSegmenter(
            copy.deepcopy(clip),
            tokenizer,
            copy.deepcopy(head),
            device=args.device,
            dtype=dtype,
            settings=settings,
            batch_size=batch,
        )
        for name, (batch, dtype) in specs.items()
    }


def _agreement(results, reference) -> dict:
    """Pixels whose label equals the baseline's, and the largest score difference."""
    same = sum(int((r.labels == b.labels).sum()) for r, b in zip(results, reference))
    pixels = sum(b.labels.size for b in reference)
    diff = max(float(np.abs(r.scores - b.scores).max()) for r, b in zip(results, reference))
    return {"labels_agree": round(same / pixels, 6), "max_score_diff": diff}


def run_setting(sides, images, repeats: int) -> list[dict]:
    """Rounds over the sides (alternating order) on one mode and setting."""
    names = list(sides)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    outputs = {}
    device = next(iter(sides.values())).device
    for seg in sides.values():  # warm-up on every pass shape (oneDNN builds kernels per shape)
        seg.predict(images, CLASSES)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            wall, _ = timed(
                lambda n=name: outputs.__setitem__(n, sides[n].predict(images, CLASSES)), device
            )
            seconds[name].append(wall / len(images))
    base = median(seconds[BASELINE])
    return [
        {
            "side": name,
            "batch_size": sides[name].batch_size,
            "seconds_per_image": round(median(seconds[name]), 4),
            "rounds": [round(s, 4) for s in seconds[name]],
            "speedup": round(base / median(seconds[name]), 2),
            **_agreement(outputs[name], outputs[BASELINE]),
        }
        for name in names
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=None, help="hub id or folder (default: random ViT-B/16)")
    parser.add_argument("--tokenizer", default=str(TOKENIZER))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    clip = _clip(args.clip)
    tokenizer = CLIPTokenizer.from_pretrained(args.clip or args.tokenizer)
    projector = TagAlignProjector.from_clip(clip.vision_model, clip.visual_projection)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 640, 3), np.uint8) for _ in range(args.images)]
    rows, device = [], None
    print(f"{'mode':14s} {'settings':16s} {'side':62s} s/image  speed-up  labels agree")
    for mode, head in (("training-free", None), ("tagalign", projector)):
        for setting_name, settings in SETTINGS.items():
            sides = _sides(clip, tokenizer, head, settings, args)
            device = next(iter(sides.values())).device
            for row in run_setting(sides, images, args.repeats):
                rows.append({"mode": mode, "settings": setting_name, **row})
                print(
                    f"{mode:14s} {setting_name:16s} {row['side']:62s} "
                    f"{row['seconds_per_image']:7.3f} {row['speedup']:8.2f}x "
                    f"{100 * row['labels_agree']:10.2f}%"
                )
    write_result(
        args.out,
        {
            "benchmark": "bench_dense",
            "model": "clip-vit-b16" if args.clip is None else Path(args.clip).name,
            "clip": args.clip or "random ViT-B/16",
            "machine": machine(device),
            "baseline": BASELINE,
            "images": args.images,
            "image_size": [480, 640],
            "resized": [448, 597],
            "classes": len(CLASSES),
            "repeats": args.repeats,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
