"""Command line: ``python -m tag2text_zoo <command>``; a thin shell over the public API.

Exit codes: 0 when everything was done, 1 when some images or samples failed (each is named on
stderr) or the run was stopped by the database or the disk, 2 for a usage error (nothing was
done), 130 when interrupted (Ctrl-C). A stopped ``label`` or ``ground`` continues where it
stopped when run again.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import defaults, parse_tags  # both light: no torch, no FiftyOne
from .assets.catalogue import CATALOGUE

if TYPE_CHECKING:
    from . import ModelSpec, RayBackend, RunReport, TagResult

# Each command imports what it runs (``from . import ...`` inside it): ``--help`` and usage errors
# answer without loading torch or FiftyOne, and ``tag`` never loads FiftyOne.

_DEVICE_HELP = "cpu, cuda or cuda:N (default: CUDA if any)"


def _positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return _integer(text, 1)


def _count(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _integer(text, 0)


def _integer(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _fraction(text: str) -> float:
    """An argparse type: a number within [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help=f"catalogue name ({', '.join(CATALOGUE)}) or model directory"
    )
    parser.add_argument("--device", default=None, help=_DEVICE_HELP)
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=defaults.TAGGER_DTYPES,
        help="bfloat16: fast on GPUs and CPUs with AMX; int8: fast on other CPUs",
    )
    parser.add_argument("--threshold", type=_fraction, default=None, help="global tag threshold")
    parser.add_argument("--batch-size", type=_positive, default=defaults.TAGGER_BATCH_SIZE)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the image encoder (the first batch compiles it; pays on long runs)",
    )
    parser.add_argument("--models-dir", default=None, help="where catalogue models are kept")
    parser.add_argument(
        "--no-exif", action="store_true", help="ignore EXIF orientation (as the reference does)"
    )
    vocabulary = parser.add_mutually_exclusive_group()
    vocabulary.add_argument(
        "--vocabulary",
        type=parse_tags,
        default=None,
        help='open-set tags replacing the built-in ones (RAM / RAM++), e.g. "red panda,okapi"',
    )
    vocabulary.add_argument(
        "--vocabulary-file", default=None, help="open-set tags, one per line (RAM / RAM++)"
    )
    parser.add_argument(
        "--text-encoder",
        default=None,
        help="CLIP text model (hub id or folder) for the vocabulary; default: CLIP ViT-B/16",
    )


def _vocabulary(args: argparse.Namespace) -> list[str] | None:
    if args.vocabulary_file is None:
        return args.vocabulary
    with open(args.vocabulary_file, encoding="utf-8") as lines:
        return [name.strip() for name in lines if name.strip()]


def _tagger_spec(args: argparse.Namespace) -> ModelSpec:
    from . import ModelSpec

    options = {
        "name_or_dir": args.model,
        "device": args.device,
        "dtype": args.dtype,
        "models_dir": args.models_dir,
        "threshold": args.threshold,
        "batch_size": args.batch_size,
        "compile_encoder": args.compile,
        "exif_transpose": not args.no_exif,
        "vocabulary": _vocabulary(args),
        "text_encoder": args.text_encoder,
    }
    return ModelSpec("tagger", options)


def _add_ray(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run the models on Ray workers; join the cluster at ADDRESS (default: "
        "$RAY_ADDRESS, else a new local Ray); the driver writes to the dataset",
    )


def _backend(args: argparse.Namespace) -> str | RayBackend:
    from . import RayBackend

    return "local" if args.ray is None else RayBackend(args.ray or None)


def _local_or_spec(args: argparse.Namespace, spec: ModelSpec):
    """The model loaded here, or on Ray the spec its workers load."""
    return spec if args.ray is not None else spec.load()


def _tag(args: argparse.Namespace) -> int:
    import torch

    from . import ImageLoadError

    tagger = _tagger_spec(args).load()
    caption = not args.no_caption and tagger.can_caption
    loaded = tagger.load_images(args.images)
    for error in (x for x in loaded if isinstance(x, ImageLoadError)):
        print(f"error: {error}", file=sys.stderr)
    good = [(path, x) for path, x in zip(args.images, loaded) if not isinstance(x, ImageLoadError)]
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
    return 1 if len(good) < len(loaded) else 0


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


def _run_and_report(name: str, field: str, run) -> int:
    """``run()``'s report printed; a run stopped by the database or the disk prints what it
    had done, then why it stopped (exit code 1)."""
    from . import RunStopped

    try:
        return _print_report(name, field, run())
    except RunStopped as stop:
        _print_report(name, field, stop.report)
        print(f"error: {stop}", file=sys.stderr)
        return 1


def _label(args: argparse.Namespace) -> int:
    from . import dataset_for, label_samples, tags_field

    # on this machine, bad model arguments are refused before a dataset is made
    tagger = _local_or_spec(args, _tagger_spec(args))
    dataset = dataset_for(args.target, args.dataset)
    return _run_and_report(
        dataset.name,
        tags_field(args.label_field),
        lambda: label_samples(
            dataset,
            tagger,
            args.label_field,
            prompt_field=args.prompt_field,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            backend=_backend(args),
        ),
    )


def _ground(args: argparse.Namespace) -> int:
    from . import ModelSpec, dataset_for, segment_samples

    segmenter = _local_or_spec(
        args,
        ModelSpec(
            "grounded",
            {
                "detector": args.detector,
                "segmenter": args.segmenter,
                "device": args.device,
                "dtype": args.dtype,
                "box_threshold": args.box_threshold,
                "text_threshold": args.text_threshold,
                "nms_iou": args.nms_iou,
                "batch_size": args.batch_size,
                "models_dir": args.models_dir,
            },
        ),
    )
    tagger = None
    if args.tagger:
        options = {"name_or_dir": args.tagger, "device": args.device, "models_dir": args.models_dir}
        tagger = _local_or_spec(args, ModelSpec("tagger", options))
    dataset = dataset_for(args.target, args.dataset)  # after the models: their errors first
    return _run_and_report(
        dataset.name,
        args.label_field,
        lambda: segment_samples(
            dataset,
            segmenter,
            args.label_field,
            prompt_field=args.prompt_field,
            classes=args.classes,
            tagger=tagger,
            semantic_field=args.semantic_field,
            mask_dir=args.mask_dir,
            batch_size=args.batch_size,
            backend=_backend(args),
        ),
    )


def _train_tagalign(args: argparse.Namespace) -> int:
    from . import TrainConfig, dataset_for, train_tagalign

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
    label.add_argument("--num-workers", type=_count, default=None, help="image-loading workers")
    _add_ray(label)
    label.set_defaults(run=_label)


def _add_train_tagalign(commands) -> None:
    train = commands.add_parser("train-tagalign", help="train a TagAlign projector on a dataset")
    train.add_argument("dataset", help="FiftyOne dataset name")
    train.add_argument("--tags-field", required=True, help="Classifications field with tags")
    train.add_argument("--caption-field", required=True, help="string field with captions")
    train.add_argument("--output", required=True, help="checkpoint directory (resumes if set)")
    train.add_argument("--clip", default=defaults.CLIP, help="hub id or dir")
    train.add_argument("--steps", type=_positive, default=10_000)
    train.add_argument("--batch-size", type=_positive, default=64)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--warmup-steps", type=_count, default=500)
    train.add_argument("--image-size", type=_positive, default=224)
    train.add_argument("--checkpoint-every", type=_positive, default=1000)
    train.add_argument("--num-workers", type=_count, default=4)
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
    ground.add_argument("--box-threshold", type=_fraction, default=defaults.BOX_THRESHOLD)
    ground.add_argument("--text-threshold", type=_fraction, default=defaults.TEXT_THRESHOLD)
    ground.add_argument("--nms-iou", type=_fraction, default=defaults.NMS_IOU)
    ground.add_argument("--batch-size", type=_positive, default=4)
    ground.add_argument("--models-dir", default=None, help="where catalogue models are kept")
    _add_ray(ground)
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
    except KeyboardInterrupt:
        resumes = "" if args.command == "tag" else "; run the same command again to continue"
        print(f"interrupted{resumes}", file=sys.stderr)
        return 130
    finally:
        if sys.modules.get("fiftyone") is not None:  # a command that wrote to a dataset
            from .fo.base.datasets import leave_other_sessions_datasets

            leave_other_sessions_datasets()
