"""Ground one image's tags and save an overlay picture (masks, boxes, labels).

python examples/ground_one_image.py IMAGE --tags "dog,grass" --out overlay.png
python examples/ground_one_image.py IMAGE --tagger tag2text-swin-14m --out overlay.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from tag2text_zoo import GroundedResult, defaults, load_grounded_segmenter, load_tagger, parse_tags


def overlay(image: Image.Image, result: GroundedResult, alpha: float = 0.45) -> Image.Image:
    """The image with each mask tinted, its box drawn and labelled with tag and score."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    colours = np.random.default_rng(0).integers(40, 255, (max(len(result.labels), 1), 3))
    for mask, colour in zip(result.masks, colours, strict=False):
        pixels[mask] = (1 - alpha) * pixels[mask] + alpha * colour
    out = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for box, label, score, colour in zip(
        result.boxes, result.labels, result.scores, colours, strict=False
    ):
        draw.rectangle(box.tolist(), outline=tuple(colour.tolist()), width=2)
        draw.text((box[0] + 2, box[1] + 2), f"{label} {score:.2f}", fill=tuple(colour.tolist()))
    return out


def main(argv: Sequence[str] | None = None) -> GroundedResult:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tags", help='tags to ground, e.g. "dog,grass"')
    source.add_argument("--tagger", help="tag the image with this model first")
    parser.add_argument("--detector", default=defaults.DETECTOR)
    parser.add_argument("--segmenter", default=defaults.SEGMENTER)
    parser.add_argument("--device", default=None)
    parser.add_argument("--box-threshold", type=float, default=defaults.BOX_THRESHOLD)
    parser.add_argument("--text-threshold", type=float, default=defaults.TEXT_THRESHOLD)
    parser.add_argument("--out", default="overlay.png")
    args = parser.parse_args(argv)

    image = ImageOps.exif_transpose(Image.open(args.image)).convert("RGB")
    if args.tags:
        tags = parse_tags(args.tags)
    else:
        tags = load_tagger(args.tagger, device=args.device).predict([image])[0].tags
    segmenter = load_grounded_segmenter(
        args.detector,
        args.segmenter,
        device=args.device,
        box_threshold=args.box_threshold,
        text_threshold=args.text_threshold,
    )
    (result,) = segmenter.segment([image], [tags])
    overlay(image, result).save(args.out)
    print(f"tags: {', '.join(tags)}\nboxes: {', '.join(result.labels) or '(none)'}")
    print(f"overlay: {Path(args.out).resolve()}")
    return result


if __name__ == "__main__":
    main()
