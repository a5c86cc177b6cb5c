"""Tagger throughput: the batched engine against the reference's settings, side by side.

The baseline reproduces how the official code runs: one image at a time, float32, the tag
encoder run once per beam, and no key/value cache (every decoding step recomputes the whole
sequence). Both produce the same tags and captions; the script checks that before timing.

    python benchmarks/bench_tagger.py                        # full-size Tag2Text, random weights
    python benchmarks/bench_tagger.py --model tests/data/fixtures/tag2text-tiny --images 6

Prints a table and writes JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tag2text_zoo import Tagger, load_tagger
from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.engines.beam_search import beam_search
from tag2text_zoo.engines.tokenizer import TagTokenizer
from tag2text_zoo.models import ModelConfig, build_model
from tag2text_zoo.models.bert import TextDecoder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VOCAB = ROOT / "tests" / "data" / "reference" / "bert-base-uncased-vocab.txt"


class UncachedDecoder:
    """The reference's decoding: per-beam tag-encoder states, full recompute at every step."""

    def __init__(self, decoder: TextDecoder, per_beam_states: torch.Tensor, num_beams: int):
        self.decoder, self.states, self.num_beams = decoder, per_beam_states, num_beams
        self.device = per_beam_states.device
        self.sequences: torch.Tensor | None = None

    def step(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.sequences is None:  # the prompt, run for every beam as the reference does
            self.sequences = input_ids.repeat_interleave(self.num_beams, 0)
            return self._logits()[:: self.num_beams]
        self.sequences = torch.cat([self.sequences, input_ids], dim=1)
        return self._logits()

    def _logits(self) -> torch.Tensor:
        return self.decoder(self.sequences, self.decoder.new_cache(self.states))

    def repeat(self, times: int) -> None:
        pass  # rows are already per beam

    def select(self, rows: torch.Tensor, images: torch.Tensor | None) -> None:
        self.sequences = self.sequences.index_select(0, rows)
        self.states = self.states.index_select(0, rows)


@torch.inference_mode()
def reference_settings_predict(tagger: Tagger, image: Image.Image) -> tuple[list[str], str]:
    """One image the official way (batch 1, fp32, tag encoder per beam, no KV cache)."""
    model, gen = tagger.model, tagger.generation
    pixels = tagger.preprocess(image)[None].to(tagger.device)
    embeds = model.encode_image(pixels)
    probs = torch.sigmoid(model.tag_logits(embeds))[0]
    on = ((probs > tagger.thresholds) & ~tagger.deleted).nonzero().flatten().tolist()
    tags = [tagger.tag_names[i] for i in on]
    ids, mask = tagger.tokenizer.encode_tags([" | ".join(tags)] * gen.num_beams)
    states = model.encode_tags(
        ids.to(tagger.device), mask.to(tagger.device), embeds.repeat_interleave(gen.num_beams, 0)
    )
    decoder = UncachedDecoder(model.text_decoder, states, gen.num_beams)
    (generated,) = beam_search(decoder, list(tagger.config.prompt_ids), 1, gen)
    text = tagger.tokenizer.decode(generated.token_ids)[len(tagger.config.prompt) :]
    return tags, text


def _reference_settings_all(tagger: Tagger, images: list[Image.Image]) -> None:
    for image in images:
        reference_settings_predict(tagger, image)


def random_init_tagger(name: str, vocab: Path, device: str) -> Tagger:
    """A full-size catalogue model with random weights (same compute as the real one)."""
    cfg = ModelConfig.from_dict(CATALOGUE[name].config)
    torch.manual_seed(0)
    model = build_model(cfg)
    tokenizer = (
        TagTokenizer(vocab, cfg.tokenizer, cfg.tag_max_tokens) if cfg.has_captioner else None
    )
    names = [f"tag{i}" for i in range(cfg.num_tags)]
    return Tagger(model, cfg, names, tokenizer, device=device)


def synthetic_images(count: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    sizes = [(640, 480), (480, 640), (512, 512), (800, 600)]
    return [
        Image.fromarray(rng.integers(0, 256, (*sizes[i % 4][::-1], 3), dtype=np.uint8))
        for i in range(count)
    ]


def _rate(fn, count: int, repeats: int) -> float:
    """Images per second, best of ``repeats`` runs after a warm-up."""
    fn()
    best = min(_timed(fn) for _ in range(repeats))
    return count / best


def _timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    if Path(args.model).is_dir():
        tagger = load_tagger(args.model, device=args.device)
    else:
        tagger = random_init_tagger(args.model, args.vocab, args.device)
    images = synthetic_images(args.images)
    rows = []

    def add(mode: str, setting: str, batch: int, dtype: str, rate: float) -> None:
        rows.append(dict(mode=mode, setting=setting, batch_size=batch, dtype=dtype, img_s=rate))

    captions = tagger.can_caption
    if captions:
        baseline = [reference_settings_predict(tagger, im) for im in images]
        engine = tagger.predict(images)
        same = all(b == (r.tags, r.caption) for b, r in zip(baseline, engine))
        if not same:
            raise SystemExit("baseline and engine disagree; fix that before timing")
        run_once = functools.partial(_reference_settings_all, tagger, images)
        rate = _rate(run_once, len(images), args.repeats)
        add("tags+caption", "reference settings", 1, "float32", rate)
    modes = {"tags": False, "tags+caption": True} if captions else {"tags": False}
    for dtype in args.dtypes:
        runner = _with_dtype(tagger, dtype)
        for batch in args.batch_sizes:
            runner.batch_size = batch
            for mode, caption in modes.items():
                run_once = functools.partial(runner.predict, images, caption=caption)
                add(mode, "engine", batch, dtype, _rate(run_once, len(images), args.repeats))
    base = next((r["img_s"] for r in rows if r["setting"] == "reference settings"), None)
    for r in rows:
        r["vs_reference"] = r["img_s"] / base if base and r["mode"] == "tags+caption" else None
    return {
        "benchmark": "bench_tagger",
        "model": str(args.model),
        "images": len(images),
        "device": _device_name(tagger.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "outputs_identical_to_reference_settings": captions or None,
        "rows": rows,
    }


def _with_dtype(tagger: Tagger, dtype: str) -> Tagger:
    if dtype == "float32":
        return tagger
    return Tagger(
        tagger.model,
        tagger.config,
        tagger.tag_names,
        tagger.tokenizer,
        device=tagger.device,
        dtype=dtype,
    )


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tag2text-swin-14m", help="catalogue name or model dir")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", nargs="+", default=None)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.dtypes is None:
        args.dtypes = ["float32", "bfloat16"] if args.device.startswith("cuda") else ["float32"]
    result = run(args)
    print(f"{result['model']} on {result['device']}, {result['images']} images")
    print(f"{'mode':<14}{'setting':<20}{'batch':>6}{'dtype':>10}{'img/s':>10}{'vs ref':>9}")
    for r in result["rows"]:
        ratio = f"{r['vs_reference']:.2f}x" if r["vs_reference"] else ""
        print(
            f"{r['mode']:<14}{r['setting']:<20}{r['batch_size']:>6}{r['dtype']:>10}"
            f"{r['img_s']:>10.3f}{ratio:>9}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    tag = Path(result["model"]).name
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    path = args.out / f"bench_tagger-{tag}-{kind}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
