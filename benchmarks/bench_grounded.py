"""Grounded segmentation throughput per stage: the batched engine against the demos' settings.

The demos run one image at a time in float32 through the models as transformers ships them,
move boxes to the CPU for NMS and call SAM once per box; the engine batches images through both
models, runs NMS on the device, decodes all of an image's boxes in one SAM call and, on the CPU,
runs its own layers (deformable attention as one gather, oneDNN products with the activations
fused, bfloat16 weights cast once). Both sides run here on the same random-init models and images
(timings only), with the same number of boxes per image (the top ``--boxes``), masks made at
the image's size on both; a re-creation of the demos' settings, not the demos' code. The
engine's SAM stages are timed piecewise as the engine runs them (freed memory kept), and its end
to end counts its own ``segment_boxes`` call in their place.

    python benchmarks/bench_grounded.py --small                 # quick CPU run
    python benchmarks/bench_grounded.py --device cuda --dtypes float32 bfloat16
    python benchmarks/bench_grounded.py --detector DIR --segmenter DIR --tagger DIR

Default models: ``GroundingDinoConfig()`` (= grounding-dino-tiny's sizes) and ``SamConfig()``
(= sam-vit-base), random weights. Prints a table and writes JSON under benchmarks/results/.
Where FiftyOne is not installed (the GPU machine), or with ``--no-writing``, the labels are not
written to a dataset and there is no writing stage.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import platform
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch
from PIL import Image
from transformers import (
    BertTokenizerFast,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SamConfig,
    SamImageProcessor,
    SamModel,
    SamProcessor,
)

from tag2text_zoo import load_tagger
from tag2text_zoo.engines.device import autocast
from tag2text_zoo.engines.grounded import GroundedSegmenter
from tag2text_zoo.engines.grounding_decode import Detections
from tag2text_zoo.engines.grounding_dino import load_grounding_dino
from tag2text_zoo.engines.heap import kept_freed_memory
from tag2text_zoo.engines.sam_family import load_sam, sam_adapter

ROOT = Path(__file__).resolve().parents[1]
VOCAB = ROOT / "tests" / "data" / "reference" / "bert-base-uncased-vocab.txt"
TINY_TAGGER = ROOT / "tests" / "data" / "fixtures" / "tag2text-tiny"
TAGS = ["dog", "cat", "person", "car", "tree", "grass", "sky", "building", "road", "table"]


def random_init_models(small: bool) -> tuple:
    """Full-size Grounding DINO-T and SAM ViT-B with their processors, random weights (the
    same on every call; ``small``: detector at 480 px)."""
    torch.manual_seed(0)
    edge = {"shortest_edge": 480, "longest_edge": 800} if small else None
    detector_processor = GroundingDinoProcessor(
        GroundingDinoImageProcessor(**({"size": edge} if edge else {})),
        BertTokenizerFast(str(VOCAB)),
    )
    # SamVisionConfig initialises at std 1e-10: activations that small go subnormal, and float32
    # then ran SAM's encoder ~10x slower on the CPU than real weights would; 0.02 as elsewhere.
    sam_config = SamConfig(vision_config={"initializer_range": 0.02})
    return (
        GroundingDinoForObjectDetection(GroundingDinoConfig()),
        detector_processor,
        SamModel(sam_config),
        SamProcessor(SamImageProcessor()),
    )


def _models(args: argparse.Namespace) -> tuple:
    """Fresh detector, its processor, segmenter and its processor, as ``args`` name them."""
    if not args.detector:
        return random_init_models(args.small)
    return (*load_grounding_dino(args.detector), *load_sam(args.segmenter))


def demo_segmenter(args: argparse.Namespace, **options) -> GroundedSegmenter:
    """The engine's prompts and box decoding around the models as transformers ships them, as
    the demos run them: deformable attention by grid_sample, PyTorch's own linear products,
    each activation a pass of its own (copies taken before the engine swaps its layers in)."""
    detector, detector_processor, segmenter, segmenter_processor = _models(args)
    shipped = copy.deepcopy(detector), copy.deepcopy(segmenter)
    seg = GroundedSegmenter(detector, detector_processor, segmenter, segmenter_processor, **options)
    seg.detector, seg.segmenter = (model.to(seg.device).eval() for model in shipped)
    seg.sam = sam_adapter(seg.segmenter, segmenter_processor)
    return seg


def _top(d: Detections, k: int) -> Detections:
    return Detections(d.boxes[:k], d.scores[:k], d.tags[:k])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stages:
    """Accumulates seconds per stage."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.seconds = device, {}

    def time(self, stage: str, fn, *args):
        _sync(self.device)
        start = time.perf_counter()
        out = fn(*args)
        _sync(self.device)
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
        return out


def engine_pipeline(seg, tagger, images, boxes, batch, dataset, stages) -> None:
    """The engine: batches of images through every stage (the models see
    ``seg.images_per_pass`` at a time: one on the CPU), one SAM decoder call per image."""
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        pixels = torch.stack([tagger.preprocess(im) for im in chunk]).to(tagger.device)
        results = stages.time("tagging", tagger.predict_tensors, pixels, None, False)
        tags = [(r.tags + TAGS)[: len(TAGS)] for r in results]  # random tagger: pad to TAGS
        prompts = [seg.prompts(t) for t in tags]
        dets = stages.time("detection", seg.detect, chunk, prompts)
        dets = [_top(d, boxes) for d in dets]
        enc = seg.segmenter_processor.image_processor(chunk, return_tensors="pt")
        pixels = enc["pixel_values"].to(seg.device)

        def encode(pixels=pixels):  # as segment_boxes: images_per_pass at a time
            with kept_freed_memory(seg.device), autocast(seg.device, seg.autocast_dtype):
                step = seg.images_per_pass
                parts = [pixels[i : i + step] for i in range(0, len(pixels), step)]
                return torch.cat([seg.sam.embed(p) for p in parts])

        emb = stages.time("sam_encoder", encode)

        def decode(emb=emb, dets=dets, enc=enc):  # as segment_boxes: masks at the image's size
            with kept_freed_memory(seg.device):
                for row, d in enumerate(dets):
                    with autocast(seg.device, seg.autocast_dtype):
                        pred_masks, _ = seg.sam.decode(emb, row, d.boxes, enc)
                    seg.sam.masks(pred_masks.float().cpu(), enc, row)

        stages.time("sam_decoder", decode)
        outs = stages.time("sam_full", seg.segment_boxes, chunk, dets)
        if dataset is not None:
            stages.time("writing", _write, dataset, outs)


def demo_pipeline(seg, tagger, images, boxes, dataset, stages) -> None:
    """The demos' settings: batch 1, float32, NMS on the CPU, one SAM call per box."""
    for image in images:
        result = stages.time(
            "tagging", tagger.predict_tensors, tagger.preprocess(image)[None], None, False
        )[0]
        tags = (result.tags + TAGS)[: len(TAGS)]
        (det,) = stages.time("detection", _detect_cpu_nms, seg, image, tags)
        det = _top(det, boxes)
        enc = seg.segmenter_processor.image_processor([image], return_tensors="pt")
        emb = stages.time(
            "sam_encoder", seg.segmenter.get_image_embeddings, enc["pixel_values"].to(seg.device)
        )

        def per_box(emb=emb, det=det, enc=enc):  # each box's mask at the image's size
            for box in det.boxes.to(seg.device):
                out = seg.segmenter(
                    image_embeddings=emb, input_boxes=box[None, None], multimask_output=False
                )
                seg.segmenter_processor.post_process_masks(
                    out.pred_masks.cpu(), enc["original_sizes"], enc["reshaped_input_sizes"]
                )

        stages.time("sam_decoder", per_box)
        if dataset is not None:
            stages.time("writing", _write, dataset, [None])


def _detect_cpu_nms(seg: GroundedSegmenter, image: Image.Image, tags: list[str]):
    dets = seg.detect([image], [seg.prompts(tags)])
    return [Detections(d.boxes.cpu(), d.scores.cpu(), d.tags) for d in dets]


def _write(dataset, results) -> None:
    import fiftyone as fo

    from tag2text_zoo import to_detections

    samples = []
    for r in results:
        labels = to_detections(r, r.image_size) if r is not None else fo.Detections()
        samples.append(fo.Sample(filepath="/tmp/bench.png", grounded=labels))
    dataset.add_samples(samples, progress=False)


def _run_side(side: str, seg, tagger, images, args, dataset) -> dict[str, float]:
    """One pass of a side over the images: seconds per stage, and end to end.

    The engine's SAM stages are timed twice: piecewise (``sam_encoder``, ``sam_decoder``, as the
    demo's) and as the engine's own call (``sam_full``), which is what its end to end counts."""
    stages = Stages(seg.device)
    start = time.perf_counter()
    if side == "demo":
        demo_pipeline(seg, tagger, images, args.boxes, dataset, stages)
        return {**stages.seconds, "end_to_end": time.perf_counter() - start}
    engine_pipeline(seg, tagger, images, args.boxes, args.batch_size, dataset, stages)
    piecewise = stages.seconds["sam_encoder"] + stages.seconds["sam_decoder"]
    return {**stages.seconds, "end_to_end": time.perf_counter() - start - piecewise}


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    options = {"device": device, "box_threshold": 0.0, "text_threshold": 0.0}
    # One engine per dtype: bfloat16 casts its weights once. The demo side: batch 1, float32.
    segmenters = {"demo": demo_segmenter(args, batch_size=1, **options)}
    for dtype in args.dtypes:
        segmenters[f"engine {dtype}"] = GroundedSegmenter(
            *_models(args), dtype=dtype, batch_size=args.batch_size, **options
        )
    tagger = load_tagger(args.tagger, device=device)
    rng = np.random.default_rng(0)
    w, h = args.size
    images = [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)) for _ in range(args.images)
    ]
    sides = list(segmenters)
    seconds: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    dataset = None
    if args.writing:  # FiftyOne only where it is installed
        import fiftyone as fo

        dataset = fo.Dataset()
    try:
        with torch.inference_mode():
            for side in sides:  # warm-up
                _run_side(side, segmenters[side], tagger, images[:1], args, dataset)
            for r in range(args.repeats):  # the sides take turns, in alternating order
                for side in sides if r % 2 == 0 else sides[::-1]:
                    timing = _run_side(side, segmenters[side], tagger, images, args, dataset)
                    seconds[side].append(timing)
    finally:
        if dataset is not None:
            dataset.delete()
    rows = [
        {
            "setting": side,
            "stage": stage,
            "images_per_s": round(len(images) / median([r[stage] for r in rounds]), 3),
            "rounds": [round(len(images) / r[stage], 3) for r in rounds],
        }
        for side, rounds in seconds.items()
        for stage in rounds[0]
    ]
    cuda = device.type == "cuda"
    return {
        "benchmark": "bench_grounded",
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "images": args.images,
        "image_size": list(args.size),
        "boxes_per_image": args.boxes,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "engine_dtypes": args.dtypes,
        "writes_labels": args.writing,
        "small": args.small,
        "models": "random-init GroundingDinoConfig() + SamConfig() (SAM encoder at std 0.02)"
        if not args.detector
        else f"{args.detector} + {args.segmenter}",
        "tagger": _portable(args.tagger),
        "results": rows,
    }


def _table(report: dict) -> str:
    """Images/s per stage (rows) and side (columns); end to end with its ratio to the demo."""
    sides = list(dict.fromkeys(r["setting"] for r in report["results"]))
    value = {(r["setting"], r["stage"]): r["images_per_s"] for r in report["results"]}
    lines = [f"{'stage':12} " + " ".join(f"{s:>18}" for s in sides)]
    for stage in dict.fromkeys(r["stage"] for r in report["results"]):
        cells = []
        for side in sides:
            if (side, stage) not in value:  # sam_full: the engine's own SAM call
                cells.append(f"{'-':>18}")
                continue
            cell = f"{value[side, stage]:.3f}"
            if stage == "end_to_end" and side != "demo":
                cell += f" ({value[side, stage] / value['demo', stage]:.2f}x)"
            cells.append(f"{cell:>18}")
        lines.append(f"{stage:12} " + " ".join(cells))
    return "\n".join(lines)


def _portable(name_or_dir: str) -> str:
    """A catalogue name, or a folder inside the repository as a repository-relative path."""
    path = Path(name_or_dir).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else name_or_dir


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        default=["float32", "bfloat16"],
        choices=["float32", "bfloat16", "float16"],
        help="the engine's sides (the demo side is float32)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="rounds of every side")
    parser.add_argument("--detector", default=None, help="Grounding DINO folder (else random)")
    parser.add_argument("--segmenter", default=None, help="SAM folder (with --detector)")
    parser.add_argument("--tagger", default=str(TINY_TAGGER), help="tagger name or directory")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    parser.add_argument("--boxes", type=int, default=8, help="boxes segmented per image")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--small", action="store_true", help="4 small images, detector at 480")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--no-writing",
        dest="writing",
        action="store_false",
        help="no dataset writes (the default where FiftyOne is not installed)",
    )
    args = parser.parse_args(argv)
    args.writing = args.writing and importlib.util.find_spec("fiftyone") is not None
    if args.small:
        args.images, args.size = min(args.images, 4), [320, 240]
    report = run(args)
    print(f"images/s per stage ({report['device']}, median of {args.repeats} rounds)")
    print(_table(report))
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    path = args.out / f"bench_grounded-{device}{'-small' if args.small else ''}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    report["path"] = str(path)
    return report


if __name__ == "__main__":
    main()
