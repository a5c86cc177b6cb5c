"""Full-size catalogue models with random weights, written as official-layout model directories.

The benchmarks run our engine and the official code on the very same checkpoint file: a model of
the catalogue's architecture, seeded random weights, saved as ``{"model": state_dict}`` under the
official parameter names (:func:`~tag2text_zoo.models.export_official_state_dict`), next to the
real tag lists, thresholds and vocabulary, so that tag strings (which steer captions) are the real
ones. Compute per image is that of the real model; only the outputs are meaningless.

A random caption decoder almost never ends a caption, so every caption would run to the maximum
length; ``eos_bias`` raises the end-of-sentence logit so that captions end at realistic, varied
lengths. Both sides read the same file, so this changes nothing in the comparison.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.models import ModelConfig, build_model, export_official_state_dict

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "reference"
_LISTS = {  # model directory file -> reference data file, per model type
    "tag2text": {"tag_list.txt": "tag2text_ori_tag_list.txt"},
    "ram": {
        "tag_list.txt": "ram_tag_list.txt",
        "tag_list_chinese.txt": "ram_tag_list_chinese.txt",
        "tag_list_threshold.txt": "ram_tag_list_threshold.txt",
    },
}
_SEP_TOKEN = 102  # [SEP], the caption's end-of-sentence token
_MARKER = "random-model.json"


def write_random_model_dir(
    name: str, directory: Path, seed: int = 0, eos_bias: float = 80.0
) -> Path:
    """Writes (once; reused when the same settings are already there) a random model directory.

    Args:
        name: catalogue name, e.g. ``"tag2text-swin-14m"``.
        directory: where to write (a scratch folder; the checkpoint is 1-3 GB).
        seed: torch seed of the random weights.
        eos_bias: added to the caption decoder's [SEP] bias (captioning models only).

    Returns:
        ``directory``, a model directory that ``load_tagger`` and the official code both read.
    """
    settings = {"name": name, "seed": seed, "eos_bias": eos_bias, "format": 2}
    marker = directory / _MARKER
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return directory
    spec = CATALOGUE[name]
    cfg = ModelConfig.from_dict(spec.config)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_model(cfg)
    if cfg.model_type != "tag2text":  # RAM's label embeddings start at zero: all tags alike
        with torch.no_grad():
            model.label_embed.normal_(std=cfg.label_embed.shape[1] ** -0.5)
    if cfg.has_captioner:
        with torch.no_grad():
            model.text_decoder.cls.predictions.bias[_SEP_TOKEN] += eos_bias
        shutil.copyfile(REFERENCE / "bert-base-uncased-vocab.txt", directory / "vocab.txt")
    for target, source in _LISTS["tag2text" if cfg.model_type == "tag2text" else "ram"].items():
        shutil.copyfile(REFERENCE / source, directory / target)
    checkpoint = directory / cfg.checkpoint_file
    checkpoint.with_suffix(".safetensors").unlink(missing_ok=True)  # a stale converted copy
    torch.save({"model": export_official_state_dict(model)}, checkpoint)
    (directory / "config.json").write_text(json.dumps(spec.config, indent=1))
    marker.write_text(json.dumps(settings))
    return directory


@dataclass(frozen=True)
class BenchModel:
    """The model a benchmark runs: its directory, its name in reports, and where its weights
    come from (said in every JSON result)."""

    directory: Path
    name: str
    weights: str

    @classmethod
    def of(cls, model_dir: Path | None, name: str, work_dir: Path) -> BenchModel:
        """``model_dir`` as it is (a fixture), else catalogue model ``name`` with random weights
        written under ``work_dir`` (:func:`write_random_model_dir`)."""
        if model_dir is not None:
            return cls(model_dir, model_dir.name, str(model_dir))
        weights = "random (full size, official layout; benchmarks/random_models.py)"
        return cls(write_random_model_dir(name, work_dir / name), name, weights)
