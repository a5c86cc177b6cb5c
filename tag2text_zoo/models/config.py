"""Frozen configuration dataclasses mirroring the sections of a model directory's ``config.json``.

The schema is the neutral one of the golden fixtures (``recognize-anything-fixture/1``); real
downloads get a ``config.json`` in the same schema generated from the catalogue.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Keys that describe a file or a fixture but configure nothing.
_DESCRIPTIVE_KEYS = frozenset(
    {
        "schema", "compare", "user_tags", "checkpoint", "format", "num_keys", "note", "formula",
        "subset_of_ram_tag_list",
    }
)  # fmt: skip


def _from_dict(cls: type[T], data: Mapping[str, Any], section: str) -> T:
    """Builds dataclass ``cls`` from ``data``; unknown keys are errors (typos must not pass)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names - _DESCRIPTIVE_KEYS)
    if unknown:
        raise ValueError(f"config.json section '{section}': unknown keys {unknown}")
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


@dataclass(frozen=True)
class SwinConfig:
    """Swin visual encoder (Microsoft layout; built with timm)."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int = 12
    patch_size: int = 4
    in_chans: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    ape: bool = False
    patch_norm: bool = True
    layer_norm_eps: float = 1e-5
    num_features: int | None = None
    num_output_tokens: int | None = None
    type: str = "swin"

    @property
    def out_width(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


@dataclass(frozen=True)
class TextConfig:
    """The BERT used by the tag encoder and the caption decoder."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int = 30524
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int = 0
    tag_encoder_cross_attention_width: int = 1024
    text_decoder_cross_attention_width: int = 768


@dataclass(frozen=True)
class TaggingHeadConfig:
    """The label decoder: cross-attention-only BERT layers over label queries."""

    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    cross_attention_width: int
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    self_attention: bool = False
    shares_weights_with_tag_encoder_layers: tuple[int, ...] = ()


@dataclass(frozen=True)
class ThresholdConfig:
    """Tag decision thresholds: ``sigmoid(logit) > threshold`` (strict)."""

    default: float = 0.68
    per_class: Mapping[int, float] = field(default_factory=dict)
    file: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThresholdConfig:
        cfg = _from_dict(cls, data, "thresholds")
        per_class = {int(k): float(v) for k, v in dict(cfg.per_class).items()}
        return dataclasses.replace(cfg, per_class=per_class)


@dataclass(frozen=True)
class LinearConfig:
    """A plain linear layer's sizes (RAM's ``image_proj``, ``wordvec_proj`` and shared ``fc``)."""

    in_features: int
    out_features: int
    shared_across_classes: bool = False


@dataclass(frozen=True)
class LabelEmbedConfig:
    """RAM's learned label embeddings: ``shape`` rows (classes x descriptions), CLIP width."""

    shape: tuple[int, int]
    descriptions_per_class: int | None = None


@dataclass(frozen=True)
class ReweightConfig:
    """RAM++'s per-image description re-weighting (the scale is a checkpoint parameter)."""

    param: str = "reweight_scale"
    value_in_checkpoint: float | None = None


@dataclass(frozen=True)
class TokenizerConfig:
    """BERT uncased WordPiece plus the two added ids ``[DEC]`` and ``[ENC]``."""

    vocab_file: str = "vocab.txt"
    do_lower_case: bool = True
    tokenize_chinese_chars: bool = True
    strip_accents: bool | None = None
    added_tokens: Mapping[str, int] = field(
        default_factory=lambda: {"[DEC]": 30522, "[ENC]": 30523}
    )
    cls_token_id: int = 101
    sep_token_id: int = 102
    pad_token_id: int = 0
    unk_token_id: int = 100
    mask_token_id: int = 103
    bos_token_id: int = 30522
    enc_token_id: int = 30523


@dataclass(frozen=True)
class GenerationConfig:
    """Caption generation settings (defaults: the official ``inference_tag2text`` call)."""

    num_beams: int = 3
    max_length: int = 50
    min_length: int = 10
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    early_stopping: bool = False
    eos_token_id: int = 102
    pad_token_id: int = 0
    do_sample: bool = False
    top_p: float = 0.9
    sample_repetition_penalty: float = 1.1


@dataclass(frozen=True)
class ModelConfig:
    """A whole model directory's ``config.json``."""

    model_type: str
    vision: SwinConfig
    num_tags: int
    image_size: int = 384
    image_mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    image_std: tuple[float, ...] = (0.229, 0.224, 0.225)
    text: TextConfig | None = None
    tagging_head: TaggingHeadConfig | None = None
    tag_list_file: str = "tag_list.txt"
    tag_list_chinese_file: str | None = None
    image_proj: LinearConfig | None = None
    label_embed: LabelEmbedConfig | None = None
    wordvec_proj: LinearConfig | None = None
    fc: LinearConfig | None = None
    reweight: ReweightConfig | None = None
    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)
    delete_tag_index: tuple[int, ...] = ()
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    prompt: str = "a picture of "
    prompt_ids: tuple[int, ...] = (30522, 1037, 3861, 1997)
    tag_max_tokens: int = 40
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    checkpoint_file: str = "model.pth"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        data = dict(data)
        sections: dict[str, Any] = {}
        builders = {
            "vision": lambda d: _from_dict(SwinConfig, d, "vision"),
            "text": lambda d: _from_dict(TextConfig, d, "text"),
            "tagging_head": lambda d: _from_dict(TaggingHeadConfig, d, "tagging_head"),
            "thresholds": ThresholdConfig.from_dict,
            "tokenizer": lambda d: _from_dict(TokenizerConfig, d, "tokenizer"),
            "generation": lambda d: _from_dict(GenerationConfig, d, "generation"),
            "image_proj": lambda d: _from_dict(LinearConfig, d, "image_proj"),
            "label_embed": lambda d: _from_dict(LabelEmbedConfig, d, "label_embed"),
            "wordvec_proj": lambda d: _from_dict(LinearConfig, d, "wordvec_proj"),
            "fc": lambda d: _from_dict(LinearConfig, d, "fc"),
            "reweight": lambda d: _from_dict(ReweightConfig, d, "reweight"),
        }
        for name, build in builders.items():
            if name in data:
                sections[name] = build(data.pop(name))
        checkpoint = data.pop("checkpoint", None)
        if checkpoint and "file" in checkpoint:
            sections["checkpoint_file"] = checkpoint["file"]
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - _DESCRIPTIVE_KEYS)
        if unknown:
            raise ValueError(f"config.json: unknown keys {unknown}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        try:
            return cls(**kwargs, **sections)
        except TypeError as err:
            raise ValueError(f"config.json: {err}") from err

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read model config {path}: {err}") from err

    @property
    def has_captioner(self) -> bool:
        return self.model_type == "tag2text"
