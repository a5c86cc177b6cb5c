"""Runs the official recognize-anything code as its users run it, for the benchmarks to time.

Runs in the official code's own environment, never in this project's: ``bench_tagger.py`` starts
it as a subprocess on the same checkpoint file and images as our engine, and drives it through
stdin/stdout, one JSON line per request, so that the two sides can be interleaved while each keeps
its model loaded.

    SCRATCH/venv/bin/python benchmarks/official_runner.py --src SCRATCH/src \
        --bert SCRATCH/bert-base-uncased --model-type tag2text --checkpoint FILE

The official environment, in a scratch folder outside this repository (about 6 GB):
- ``SCRATCH/src/ram``: the ``ram/`` package of github.com/xinyu1205/recognize-anything at commit
  7cb804a (``git archive 7cb804a ram | tar -x -C SCRATCH/src``);
- ``SCRATCH/venv``: a virtual environment with ``torch torchvision transformers==4.25.1
  timm==0.4.12 scipy numpy pillow``, then ``pip install --no-deps fairscale==0.4.4`` (the pins of
  the official requirements that matter; fairscale's own pins would replace torch);
- ``SCRATCH/bert-base-uncased``: the ``vocab.txt`` of the hub's ``bert-base-uncased`` and a
  ``tokenizer_config.json`` of ``{"do_lower_case": true, "model_max_length": 512}`` (the official
  code loads its tokenizer from that name).

Requests: ``{"mode": "tags+caption" | "tags", "images": [path, ...]}``. Replies: per-image wall
and CPU seconds, the outputs (tag string, Chinese tag string, caption) and the process's peak RSS.
Images are read and transformed once, on first use, with the official ``get_transform``, as the
official inference scripts do (batch 1, float32); only the model calls are timed.

Entry points: Tag2Text ``inference_tag2text`` (tags + caption); RAM and RAM++ ``inference_ram``
(the official RAM++ script uses it too). Tag2Text's tags alone have no public function: "tags"
runs the tagging part of ``Tag2Text.generate`` (Swin, tagging head, fc, thresholds), as written
there, without the caption.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time

import numpy as np
import torch

DELETE_TAG_INDEX = [127, 2961, 3351, 3265, 3338, 3355, 3359]  # the official demos' list
VIT = {"tag2text": "swin_b", "ram": "swin_l", "ram_plus": "swin_l"}


def build(model_type: str, checkpoint: str, bert: str) -> torch.nn.Module:
    from ram.models import ram, ram_plus, tag2text

    kwargs = dict(pretrained=checkpoint, image_size=384, vit=VIT[model_type])
    if model_type == "tag2text":
        return tag2text(text_encoder_type=bert, delete_tag_index=DELETE_TAG_INDEX, **kwargs)
    return (ram if model_type == "ram" else ram_plus)(text_encoder_type=bert, **kwargs)


def tag2text_tags(model, image: torch.Tensor) -> str:
    """The tagging part of the official ``Tag2Text.generate`` (batch 1), line for line."""
    image_embeds = model.visual_encoder(image)
    image_atts = torch.ones(image_embeds.size()[:-1], dtype=torch.long)
    label_embed = model.label_embed.weight.unsqueeze(0).repeat(1, 1, 1)
    tagging_embed = model.tagging_head(
        encoder_embeds=label_embed,
        encoder_hidden_states=image_embeds,
        encoder_attention_mask=image_atts,
        return_dict=False,
        mode="tagging",
    )
    logits = model.fc(tagging_embed[0])
    targets = torch.where(
        torch.sigmoid(logits) > model.class_threshold,
        torch.tensor(1.0),
        torch.zeros(model.num_class),
    )
    tag = targets.cpu().numpy()
    tag[:, model.delete_tag_index] = 0
    return " | ".join(model.tag_list[np.argwhere(tag[0] == 1)].squeeze(axis=1))


def run_one(model, model_type: str, mode: str, image: torch.Tensor) -> dict:
    from ram import inference_ram, inference_tag2text

    if model_type == "tag2text":
        if mode == "tags":
            return {"tags": tag2text_tags(model, image)}
        tags, _, caption = inference_tag2text(image, model, "None")
        return {"tags": tags, "caption": caption}
    tags, chinese = inference_ram(image, model)
    return {"tags": tags, "tags_chinese": chinese}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="folder holding the official `ram` package")
    parser.add_argument("--bert", required=True, help="bert-base-uncased tokenizer folder")
    parser.add_argument("--model-type", required=True, choices=sorted(VIT))
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, args.src)
    # The official code prints while it builds and runs: keep stdout for the replies.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    from PIL import Image
    from ram import get_transform

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        model = build(args.model_type, args.checkpoint, args.bert).eval()
    transform, pixels = get_transform(image_size=384), {}
    ready = {
        "ready": True,
        "load_s": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(ready), file=replies, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        reply: dict = {"wall_s": [], "cpu_s": [], "outputs": []}
        for path in request["images"]:
            if path not in pixels:
                pixels[path] = transform(Image.open(path)).unsqueeze(0)
            wall, cpu = time.perf_counter(), time.process_time()
            with torch.no_grad():
                output = run_one(model, args.model_type, request["mode"], pixels[path])
            reply["wall_s"].append(time.perf_counter() - wall)
            reply["cpu_s"].append(time.process_time() - cpu)
            reply["outputs"].append(output)
        reply["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(reply), file=replies, flush=True)


if __name__ == "__main__":
    main()
