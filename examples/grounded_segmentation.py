"""Folder -> tags -> boxes -> masks in FiftyOne, then (optionally) browse them in the App.

python examples/grounded_segmentation.py FOLDER --tagger tag2text-swin-14m [--launch]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import fiftyone as fo

from tag2text_zoo import (
    defaults,
    label_samples,
    load_grounded_segmenter,
    load_tagger,
    segment_samples,
    tags_field,
)


def main(argv: Sequence[str] | None = None) -> fo.Dataset:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a directory of images")
    parser.add_argument("--tagger", default=defaults.TAGGER, help="catalogue name or dir")
    parser.add_argument("--detector", default=defaults.DETECTOR)
    parser.add_argument("--segmenter", default=defaults.SEGMENTER)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if any)")
    parser.add_argument("--box-threshold", type=float, default=defaults.BOX_THRESHOLD)
    parser.add_argument("--text-threshold", type=float, default=defaults.TEXT_THRESHOLD)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--launch", action="store_true", help="open the FiftyOne App")
    args = parser.parse_args(argv)

    dataset = fo.Dataset.from_images_dir(args.folder, progress=False)
    tagger = load_tagger(args.tagger, device=args.device)
    label_samples(dataset, tagger, "t2t", batch_size=args.batch_size)
    segmenter = load_grounded_segmenter(
        args.detector,
        args.segmenter,
        device=args.device,
        box_threshold=args.box_threshold,
        text_threshold=args.text_threshold,
        batch_size=args.batch_size,
    )
    segment_samples(
        dataset,
        segmenter,
        "grounded",
        prompt_field=tags_field("t2t"),
        batch_size=args.batch_size,
        semantic_field="grounded_semantic",
    )

    for sample in dataset:
        found = ", ".join(f"{d.label} ({d.confidence:.2f})" for d in sample.grounded.detections)
        print(f"{sample.filepath}\n  boxes: {found or '(none)'}")
    if args.launch:
        fo.launch_app(dataset).wait()
    return dataset


if __name__ == "__main__":
    main()
