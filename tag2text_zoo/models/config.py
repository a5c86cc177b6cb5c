"""Frozen configuration dataclasses mirroring the sections of a model directory's ``config.json``.

The schema is the neutral one of the golden fixtures (``recognize-anything-fixture/1``); real
downloads get a ``config.json`` in the same schema generated from the catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_json import ConfigError, build_config, checked_value


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

    def __post_init__(self) -> None:
        values = {
            "default": self.default,
            **{f"per_class.{k}": v for k, v in self.per_class.items()},
        }
        for key, value in values.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"'thresholds.{key}' must be within [0, 1], got {value!r}")


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
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
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

    def __post_init__(self) -> None:
        for key, indices in (
            ("thresholds.per_class", self.thresholds.per_class),
            ("delete_tag_index", self.delete_tag_index),
        ):
            beyond = sorted(i for i in indices if i >= self.num_tags)
            if beyond:
                raise ConfigError(f"'{key}' names classes {beyond}; num_tags is {self.num_tags}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Builds the config from parsed JSON.

        Raises:
            ConfigError: a missing or unknown key, or a value of the wrong type or range (the
                message names the key and what it must be).
        """
        built = {}
        checkpoint = data.get("checkpoint") if isinstance(data, Mapping) else None
        if isinstance(checkpoint, Mapping) and "file" in checkpoint:
            built["checkpoint_file"] = checked_value(checkpoint["file"], str, "checkpoint.file")
        return build_config(cls, data, built=built)

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        """Reads a ``config.json``; every error names the file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read model config {path}: {err}") from err
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    @property
    def has_captioner(self) -> bool:
        return self.model_type == "tag2text"
