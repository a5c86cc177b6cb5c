"""Checked construction of the config dataclasses from a parsed ``config.json``.

Every value is checked against its field's type hint and range before a dataclass is built, so a
bad file gives a :class:`ConfigError` naming the key and what it must be, never a traceback from
deep inside a model builder.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")

# Keys that describe a file or a fixture but configure nothing.
_DESCRIPTIVE_KEYS = frozenset(
    "schema compare user_tags checkpoint format num_keys note formula "
    "subset_of_ram_tag_list".split()
)
# Sizes, counts and scales: above 0. Every other integer (token ids, indices) is at least 0.
_POSITIVE = frozenset(
    """image_size image_std num_tags embed_dim depths num_heads window_size patch_size in_chans
    mlp_ratio layer_norm_eps num_features num_output_tokens hidden_size num_hidden_layers
    num_attention_heads intermediate_size vocab_size max_position_embeddings cross_attention_width
    tag_encoder_cross_attention_width text_decoder_cross_attention_width in_features out_features
    shape descriptions_per_class tag_max_tokens num_beams max_length top_p repetition_penalty
    sample_repetition_penalty""".split()
)
_SINGULARS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_PLURALS = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


class ConfigError(ValueError):
    """A ``config.json`` that does not fit the schema; names the key and what it must be."""


def _expected(hint: Any) -> str:
    """``hint`` in words: "an integer", "a list of numbers", "a string or null", ..."""
    args = get_args(hint)
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in args)
    if origin is tuple:
        count = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"a list of {count}{_PLURALS[args[0]]}"
    if origin is Mapping:
        return f"an object mapping {_PLURALS[args[0]]} to {_PLURALS[args[1]]}"
    if dataclasses.is_dataclass(hint):
        return "an object"
    return "null" if hint is type(None) else _SINGULARS[hint]


def _conforms(value: Any, hint: Any) -> bool:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        items = args[:1] * len(value) if args[-1] is Ellipsis else args
        return len(value) == len(items) and all(_conforms(v, h) for v, h in zip(value, items))
    if origin is Mapping:
        key, item = args
        return isinstance(value, Mapping) and all(
            (_is_int_text(k) if key is int and isinstance(k, str) else _conforms(k, key))
            and _conforms(v, item)
            for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _is_int_text(text: str) -> bool:
    return text.strip().isdigit()


def _numbers(value: Any) -> list:
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return [value] if number else []


def checked_value(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the field holds it (lists as tuples, integer keys), after checking it."""
    if not _conforms(value, hint):
        raise ConfigError(f"'{key}' must be {_expected(hint)}, got {value!r}")
    positive = key.rpartition(".")[2] in _POSITIVE
    for number in _numbers(value):
        if not math.isfinite(number):
            raise ConfigError(f"'{key}' must be finite, got {value!r}")
        if positive and number <= 0:
            raise ConfigError(f"'{key}' must be positive, got {value!r}")
        if isinstance(number, int) and number < 0:
            raise ConfigError(f"'{key}' must be >= 0, got {value!r}")
    if isinstance(value, list):
        return tuple(value)
    if get_origin(hint) is Mapping and get_args(hint)[0] is int:
        return {int(k): v for k, v in value.items()}
    return value


def build_config(
    cls: type[T], data: Any, section: str = "", built: Mapping[str, Any] | None = None
) -> T:
    """Builds dataclass ``cls`` from ``data``, checking every key's type and range.

    Unknown keys are errors (typos must not pass); nested dataclass fields are built in turn;
    ``built`` holds fields the caller has already made.
    """
    if not isinstance(data, Mapping):
        where = f"'{section}'" if section else "the file"
        raise ConfigError(f"{where} must be an object, got {data!r}")
    prefix = f"{section}." if section else ""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    unknown = sorted(set(data) - {f.name for f in fields} - _DESCRIPTIVE_KEYS)
    if unknown:
        raise ConfigError(f"unknown keys {[prefix + str(k) for k in unknown]}")
    hints = get_type_hints(cls)
    kwargs = dict(built or {})
    for f in fields:
        key = prefix + f.name
        if f.name in kwargs:
            continue
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"missing key '{key}' ({_expected(hints[f.name])})")
            continue
        value, nested = data[f.name], _dataclass_in(hints[f.name])
        if nested is not None and value is not None:
            kwargs[f.name] = build_config(nested, value, key)
        else:
            kwargs[f.name] = checked_value(value, hints[f.name], key)
    return cls(**kwargs)


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a field holds (``TextConfig | None`` -> ``TextConfig``), if any."""
    for candidate in (hint, *get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate  # type: ignore[return-value]
    return None
