"""Tag and caption a folder of images with FiftyOne, then (optionally) browse them in the App.

python examples/tag_and_caption.py FOLDER --model tag2text-swin-14m [--launch]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import fiftyone as fo

from tag2text_zoo import label_samples, load_tagger


def main(argv: Sequence[str] | None = None) -> fo.Dataset:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a directory of images")
    parser.add_argument("--model", default="tag2text-swin-14m", help="catalogue name or model dir")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if any)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--show", type=int, default=3, help="how many results to print")
    parser.add_argument("--launch", action="store_true", help="open the FiftyOne App")
    args = parser.parse_args(argv)

    dataset = fo.Dataset.from_images_dir(args.folder, progress=False)
    tagger = load_tagger(args.model, device=args.device)
    report = label_samples(dataset, tagger, "t2t", batch_size=args.batch_size)
    print(f"tagged: {report.summary()}")

    for sample in dataset.limit(args.show):
        tags = ", ".join(f"{c.label} ({c.confidence:.2f})" for c in sample.t2t_tags.classifications)
        print(f"{sample.filepath}\n  tags: {tags}\n  caption: {sample.t2t_caption}")
    if args.launch:
        fo.launch_app(dataset).wait()
    return dataset


if __name__ == "__main__":
    main()
