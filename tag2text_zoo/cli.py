"""Command line: ``python -m tag2text_zoo <command>``; a thin shell over the public API.

Exit codes: 0 when everything was done, 1 when some images or samples failed (each is named on
stderr), 2 for a usage error (nothing was done).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import torch

from . import (
    ImageLoadError,
    RunReport,
    TagResult,
    TrainConfig,
    dataset_for,
    defaults,
    label_samples,
    load_grounded_segmenter,
    load_tagger,
    parse_tags,
    segment_samples,
    tags_field,
    train_tagalign,
)
from .assets.catalogue import CATALOGUE

_DEVICE_HELP = "cpu, cuda or cuda:N (default: CUDA if any)"


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help=f"catalogue name ({', '.join(CATALOGUE)}) or model directory"
    )
    parser.add_argument("--device", default=None, help=_DEVICE_HELP)
    parser.add_argument("--dtype", default="float32", choices=defaults.DTYPES)
    parser.add_argument("--threshold", type=float, default=None, help="global tag threshold")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--models-dir", default=None, help="where catalogue models are kept")
    parser.add_argument(
        "--no-exif", action="store_true", help="ignore EXIF orientation (as the reference does)"
    )


def _load_tagger(args: argparse.Namespace):
    return load_tagger(
        args.model,
        device=args.device,
        dtype=args.dtype,
        models_dir=args.models_dir,
        threshold=args.threshold,
        batch_size=args.batch_size,
        exif_transpose=not args.no_exif,
    )


def _tag(args: argparse.Namespace) -> int:
    tagger = _load_tagger(args)
    caption = not args.no_caption and tagger.can_caption
    failed = 0
    good: list[tuple[str, torch.Tensor]] = []
    for path in args.images:
        try:
            good.append((path, tagger.preprocess(path)))
        except ImageLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
    records = []
    for start in range(0, len(good), args.batch_size):
        chunk = good[start : start + args.batch_size]
        tags = [args.tags] * len(chunk) if args.tags else None
        pixels = torch.stack([p for _, p in chunk])
        for (path, _), result in zip(chunk, tagger.predict_tensors(pixels, tags, caption)):
            records.append((path, result))
    if args.json:
        print(json.dumps([_as_json(path, r) for path, r in records], indent=2, ensure_ascii=False))
    else:
        for path, result in records:
            print(_as_text(path, result))
    return 1 if failed else 0


def _as_json(path: str, r: TagResult) -> dict:
    return {
        "image": path,
        "tags": [
            {"name": n, "score": round(s, 4), "index": i}
            for n, s, i in zip(r.tags, r.scores, r.tag_indices)
        ],
        "tag_string": r.tag_string,
        "caption": r.caption,
    }


def _as_text(path: str, r: TagResult) -> str:
    tags = " | ".join(f"{n} ({s:.2f})" for n, s in zip(r.tags, r.scores)) or "(none)"
    lines = [path, f"  Image Tags: {tags}"]
    if r.caption is not None:
        lines.append(f"  Image Caption: {r.caption}")
    return "\n".join(lines)


def _print_report(name: str, field: str, report: RunReport) -> int:
    """Prints each failure on stderr and the true counts; the exit code (1 if any failed)."""
    for failure in report.failures:
        print(f"error: {failure}", file=sys.stderr)
    print(f"{name}: {field}: {report.summary()}")
    return 1 if report.failures else 0


def _label(args: argparse.Namespace) -> int:
    dataset = dataset_for(args.target, args.dataset)
    report = label_samples(
        dataset,
        _load_tagger(args),
        args.label_field,
        prompt_field=args.prompt_field,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
    )
    return _print_report(dataset.name, tags_field(args.label_field), report)


def _ground(args: argparse.Namespace) -> int:
    dataset = dataset_for(args.target, args.dataset)
    segmenter = load_grounded_segmenter(
        args.detector,
        args.segmenter,
        device=args.device,
        dtype=args.dtype,
        box_threshold=args.box_threshold,
        text_threshold=args.text_threshold,
        nms_iou=args.nms_iou,
        batch_size=args.batch_size,
        models_dir=args.models_dir,
    )
    tagger = None
    if args.tagger:
        tagger = load_tagger(args.tagger, device=segmenter.device, models_dir=args.models_dir)
    report = segment_samples(
        dataset,
        segmenter,
        args.label_field,
        prompt_field=args.prompt_field,
        classes=args.classes,
        tagger=tagger,
        semantic_field=args.semantic_field,
        mask_dir=args.mask_dir,
        batch_size=args.batch_size,
    )
    return _print_report(dataset.name, args.label_field, report)


def _train_tagalign(args: argparse.Namespace) -> int:
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        image_size=args.image_size,
        warmup_steps=min(args.warmup_steps, args.steps),
        checkpoint_every=args.checkpoint_every,
        num_workers=args.num_workers,
    )
    result = train_tagalign(
        dataset_for(args.dataset),
        args.output,
        tags_field=args.tags_field,
        caption_field=args.caption_field,
        clip=args.clip,
        config=config,
        device=args.device,
        dtype=args.dtype,
    )
    print(
        f"{result.samples} samples, {len(result.vocabulary)} tags; checkpoint: {result.checkpoint}"
    )
    return 0


def _add_label(commands) -> None:
    label = commands.add_parser("label", help="label a FiftyOne dataset; re-run to resume")
    label.add_argument("target", help="dataset name, or a directory of images")
    _add_model_args(label)
    label.add_argument("--dataset", default=None, help="dataset name for a directory")
    label.add_argument(
        "--label-field", default=defaults.TAGGING_FIELD, help="writes <field>_tags, _caption"
    )
    label.add_argument("--prompt-field", default=None, help="field of tags steering captions")
    label.add_argument("--num-workers", type=int, default=None, help="image-loading workers")
    label.set_defaults(run=_label)


def _add_train_tagalign(commands) -> None:
    train = commands.add_parser("train-tagalign", help="train a TagAlign projector on a dataset")
    train.add_argument("dataset", help="FiftyOne dataset name")
    train.add_argument("--tags-field", required=True, help="Classifications field with tags")
    train.add_argument("--caption-field", required=True, help="string field with captions")
    train.add_argument("--output", required=True, help="checkpoint directory (resumes if set)")
    train.add_argument("--clip", default=defaults.CLIP, help="hub id or dir")
    train.add_argument("--steps", type=int, default=10_000)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--warmup-steps", type=int, default=500)
    train.add_argument("--image-size", type=int, default=224)
    train.add_argument("--checkpoint-every", type=int, default=1000)
    train.add_argument("--num-workers", type=int, default=4)
    train.add_argument("--device", default=None, help=_DEVICE_HELP)
    train.add_argument("--dtype", default="auto", choices=["auto", *defaults.DTYPES])
    train.set_defaults(run=_train_tagalign)


def _add_ground(commands) -> None:
    ground = commands.add_parser("ground", help="tags -> boxes -> masks into a dataset; resumes")
    ground.add_argument("target", help="dataset name, or a directory of images")
    weights = "hub id, folder, official checkpoint file or catalogue name"
    ground.add_argument("--detector", default=defaults.DETECTOR, help=f"Grounding DINO {weights}")
    ground.add_argument(
        "--segmenter", default=defaults.SEGMENTER, help=f"SAM, SAM-HQ or SAM 2 {weights}"
    )
    source = ground.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt-field", default=None, help="field of tags to ground")
    source.add_argument("--classes", type=parse_tags, default=None, help='e.g. "dog,cat"')
    source.add_argument("--tagger", default=None, help="tag with this model in the same pass")
    ground.add_argument("--label-field", default=defaults.GROUNDED_FIELD, help="Detections field")
    ground.add_argument("--semantic-field", default=None, help="also write a Segmentation here")
    ground.add_argument("--mask-dir", default=None, help="write masks as PNGs under this folder")
    ground.add_argument("--dataset", default=None, help="dataset name for a directory")
    ground.add_argument("--device", default=None, help=_DEVICE_HELP)
    ground.add_argument("--dtype", default="float32", choices=defaults.DTYPES)
    ground.add_argument("--box-threshold", type=float, default=defaults.BOX_THRESHOLD)
    ground.add_argument("--text-threshold", type=float, default=defaults.TEXT_THRESHOLD)
    ground.add_argument("--nms-iou", type=float, default=defaults.NMS_IOU)
    ground.add_argument("--batch-size", type=int, default=4)
    ground.add_argument("--models-dir", default=None, help="where catalogue models are kept")
    ground.set_defaults(run=_ground)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tag2text_zoo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tag = commands.add_parser("tag", help="tag (and caption) image files")
    tag.add_argument("images", nargs="+", help="image files")
    _add_model_args(tag)
    tag.add_argument("--tags", default=None, help='tags that steer the caption, e.g. "cloud,sky"')
    tag.add_argument("--no-caption", action="store_true", help="tags only")
    tag.add_argument("--json", action="store_true", help="print JSON")
    tag.set_defaults(run=_tag)
    _add_label(commands)
    _add_train_tagalign(commands)
    _add_ground(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as err:  # user-facing errors: no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
