"""DenseSegmenter throughput at the reference's geometry: short side 448, 448 windows.

Full-size CLIP ViT-B/16 structure with random weights (no download) unless ``--clip`` names a
model; the TagAlign projector is a fresh one of the real shape. Inputs are 640x480 images
(resized to 597x448: 2 windows at stride 224, 4 at stride 56).

    python benchmarks/bench_dense.py                         # CPU or the default CUDA device
    python benchmarks/bench_dense.py --device cuda --dtype bfloat16 --batch-size 16

Prints a table and writes JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from tag2text_zoo.engines.dense import MAIN_SETTINGS, VOC_SETTINGS, DenseSegmenter
from tag2text_zoo.models.tagalign import TagAlignProjector

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT / "tests" / "data" / "fixtures" / "tagalign-tiny" / "clip"
CLASSES = ["sky", "building", "road", "car", "person", "tree", "grass", "dog"]


def _clip(name: str | None) -> CLIPModel:
    if name:
        return CLIPModel.from_pretrained(name)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=None, help="hub id or folder (default: random ViT-B/16)")
    parser.add_argument("--tokenizer", default=str(TOKENIZER))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args()

    clip = _clip(args.clip)
    tokenizer = CLIPTokenizer.from_pretrained(args.clip or args.tokenizer)
    projector = TagAlignProjector.from_clip(clip.vision_model, clip.visual_projection)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 640, 3), np.uint8) for _ in range(args.images)]
    rows = []
    for mode, head in (("training-free", None), ("tagalign", projector)):
        for setting_name, settings in (
            ("main stride 224", MAIN_SETTINGS),
            ("voc stride 56", VOC_SETTINGS),
        ):
            seg = DenseSegmenter(
                clip,
                tokenizer,
                head,
                device=args.device,
                dtype=args.dtype,
                settings=settings,
                batch_size=args.batch_size,
            )
            seg.predict(images[:1], CLASSES)  # warm-up, text cache
            if seg.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            seg.predict(images, CLASSES)
            if seg.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "mode": mode,
                    "settings": setting_name,
                    "images": len(images),
                    "seconds": round(seconds, 3),
                    "images_per_s": round(len(images) / seconds, 3),
                }
            )
            print(f"{mode:14s} {setting_name:16s} {rows[-1]['images_per_s']:8.3f} images/s")
    cuda = seg.device.type == "cuda"
    report = {
        "benchmark": "bench_dense",
        "device": str(seg.device),
        "device_name": torch.cuda.get_device_name() if cuda else platform.processor(),
        "threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "image_size": [480, 640],
        "resized": [448, 597],
        "classes": len(CLASSES),
        "clip": args.clip or "random ViT-B/16",
        "torch": torch.__version__,
        "rows": rows,
    }
    out = ROOT / "benchmarks" / "results" / f"bench_dense_{seg.device.type}_{args.dtype}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
