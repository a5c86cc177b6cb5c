"""Renaming the keys of a foreign state dict with ordered regular-expression rules.

The key maps of the official SAM, SAM 2 and Grounding DINO checkpoints (``official_*.py``) are
lists of ``(pattern, replacement)`` rules applied in order to every key, plus two structural
helpers: indexed ``nn.Sequential`` children that transformers names, and the official ``MLP``
layer lists that transformers splits into ``proj_in`` / ``layers`` / ``proj_out``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import torch

# (pattern, replacement): a replacement string or a function of the match, as for re.sub
Rule = tuple[str, str | Callable[[re.Match[str]], str]]


def rename(state: Mapping[str, torch.Tensor], rules: Sequence[Rule]) -> dict[str, torch.Tensor]:
    """Applies every rule, in order, to every key (each rule sees the previous one's result)."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out = {}
    for key, value in state.items():
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def sequential(prefix: str, names: Sequence[str | None]) -> list[Rule]:
    """Rules renaming ``prefix.i.`` to ``prefix.names[i].`` (``None``: a child without weights).

    ``prefix`` is a regular expression; the rules keep what it matched.
    """
    return [
        (rf"^({prefix})\.{i}\.", rf"\1.{name}.") for i, name in enumerate(names) if name is not None
    ]


def split_mlp_layers(state: Mapping[str, torch.Tensor], mlp: str) -> dict[str, torch.Tensor]:
    """Renames ``<mlp>.layers.i.`` (official MLPs) to ``proj_in`` / ``layers.{i-1}`` / ``proj_out``.

    Args:
        state: the state dict.
        mlp: a regular expression, without capturing groups, matching the MLPs' prefixes
            (e.g. ``r"mask_decoder\\.(?:iou_prediction_head|hf_mlp)"``).
    """
    layer = re.compile(rf"^({mlp})\.layers\.(\d+)\.(.*)$")
    depth: dict[str, int] = {}
    for key in state:
        if match := layer.match(key):
            depth[match[1]] = max(depth.get(match[1], 0), int(match[2]) + 1)
    out = {}
    for key, value in state.items():
        if match := layer.match(key):
            prefix, index, rest = match[1], int(match[2]), match[3]
            if index == 0:
                name = "proj_in"
            elif index == depth[prefix] - 1:
                name = "proj_out"
            else:
                name = f"layers.{index - 1}"
            key = f"{prefix}.{name}.{rest}"
        out[key] = value
    return out


def count_indexed(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    """How many ``prefix.<i>.`` children the state dict holds (``prefix`` is literal)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    return len({match[1] for key in state if (match := pattern.match(key))})
