"""Folder -> tags -> boxes -> masks in FiftyOne, then (optionally) browse them in the App.

python examples/grounded_segmentation.py FOLDER --tagger tag2text-swin-14m [--launch]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import fiftyone as fo

from tag2text_zoo import load_tagger
from tag2text_zoo.engines.grounded import load_grounded_segmenter
from tag2text_zoo.fo import label_samples
from tag2text_zoo.fo.grounded_runs import segment_samples


def main(argv: Sequence[str] | None = None) -> fo.Dataset:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a directory of images")
    parser.add_argument("--tagger", default="tag2text-swin-14m", help="catalogue name or dir")
    parser.add_argument("--detector", default="IDEA-Research/grounding-dino-tiny")
    parser.add_argument("--segmenter", default="facebook/sam-vit-base")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if any)")
    parser.add_argument("--box-threshold", type=float, default=0.25)
    parser.add_argument("--text-threshold", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--launch", action="store_true", help="open the FiftyOne App")
    args = parser.parse_args(argv)

    dataset = fo.Dataset.from_images_dir(args.folder, progress=False)
    tagger = load_tagger(args.tagger, device=args.device)
    label_samples(dataset, tagger, "t2t", args.batch_size)  # -> t2t_tags
    segmenter = load_grounded_segmenter(
        args.detector, args.segmenter, device=args.device, box_threshold=args.box_threshold,
        text_threshold=args.text_threshold, batch_size=args.batch_size,
    )  # fmt: skip
    segment_samples(
        dataset, segmenter, "grounded", prompt_field="t2t_tags", batch_size=args.batch_size,
        semantic_field="grounded_semantic",
    )  # fmt: skip

    for sample in dataset:
        found = ", ".join(f"{d.label} ({d.confidence:.2f})" for d in sample.grounded.detections)
        print(f"{sample.filepath}\n  boxes: {found or '(none)'}")
    if args.launch:
        fo.launch_app(dataset).wait()
    return dataset


if __name__ == "__main__":
    main()
