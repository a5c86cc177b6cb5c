"""Device, dtype and autocast: one rule for every engine (tagger, grounded, dense, training).

Engines keep float32 weights (float64 for the tagger's exactness checks) and run ``bfloat16`` /
``float16`` under autocast; :func:`precast_for_autocast` lets an engine cast its linear and
convolution weights once instead of on every call. Taggers also take ``int8`` on the CPU (int8
linear layers, :mod:`.int8`). Unknown values are refused with a ValueError naming the accepted
ones.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from .. import defaults
from .int8 import check_int8_supported

DTYPES = {name: getattr(torch, name) for name in defaults.DTYPES}
_FLOAT64 = {"float64": torch.float64}
_AUTOCAST = (torch.bfloat16, torch.float16)
_DEVICES = "'cpu', 'cuda' or 'cuda:N'"


@dataclass(frozen=True)
class Precision:
    """Where and how an engine computes.

    Attributes:
        device: the torch device.
        weights: dtype of the weights (float32, or float64).
        autocast: dtype run under ``torch.autocast``, or None.
        int8: linear layers to become int8 (:func:`.int8.quantize_linear_layers`).
    """

    device: torch.device
    weights: torch.dtype
    autocast: torch.dtype | None
    int8: bool = False


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; None: CUDA when available, else the CPU.

    Raises:
        ValueError: not a CPU or CUDA device, or a GPU that is not there.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not supported; expected {_DEVICES}") from err
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; expected {_DEVICES}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {resolved} requested but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {resolved} requested; only {torch.cuda.device_count()} GPU(s)"
            )
    return resolved


def resolve_precision(
    device: str | torch.device | None,
    dtype: str | torch.dtype = "float32",
    *,
    allow_float64: bool = False,
    allow_int8: bool = False,
) -> Precision:
    """Checks a device and dtype pair once, for any engine.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; None: CUDA when available.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (the last two under autocast), as a
            name or a torch dtype; ``"float64"`` too where ``allow_float64``, ``"int8"`` (the
            CPU only) where ``allow_int8``.

    Raises:
        ValueError: an unknown device or dtype (the message lists the accepted ones), float16
            on the CPU, or int8 on a GPU or without PyTorch's x86 int8 kernels.
    """
    accepted = {**DTYPES, **(_FLOAT64 if allow_float64 else {})}
    names = [*accepted, *(["int8"] if allow_int8 else [])]
    name = str(dtype).removeprefix("torch.")
    if name not in names:
        raise ValueError(f"dtype {name!r} is not supported; expected one of {', '.join(names)}")
    resolved = resolve_device(device)
    if name == "int8":
        check_int8_supported(resolved)
        return Precision(resolved, torch.float32, None, int8=True)
    if accepted[name] == torch.float16 and resolved.type == "cpu":
        raise ValueError("float16 needs a GPU; use bfloat16 or float32 on the CPU")
    autocast = accepted[name] if accepted[name] in _AUTOCAST else None
    if autocast == torch.bfloat16 and resolved.type == "cpu" and not cpu_has_bfloat16_units():
        warnings.warn(
            f"dtype 'bfloat16' on this CPU ({torch.backends.cpu.get_cpu_capability()}, no "
            "AVX-512 or AMX bfloat16 units) is emulated and runs several times slower than "
            "float32; use float32 here",
            RuntimeWarning,
            stacklevel=2,
        )
    weights = torch.float64 if name == "float64" else torch.float32
    return Precision(resolved, weights, autocast)


def cpu_has_bfloat16_units() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX-512 or AMX); without them it
    emulates bfloat16, and a 2-core AVX2 EPYC tagged with Tag2Text 5.6x slower than in float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def images_per_pass(device: torch.device, batch_size: int, cpu_most: int) -> int:
    """Images per forward pass: ``batch_size``, but at most ``cpu_most`` on the CPU, where each
    engine measured larger passes to be slower per image."""
    return min(batch_size, cpu_most) if device.type == "cpu" else batch_size


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def precast_for_autocast(model: nn.Module, dtype: torch.dtype) -> None:
    """Casts the weights and biases of ``model``'s linear and convolution layers to ``dtype``.

    Under autocast these layers cast their weights to ``dtype`` on every call; casting them once
    gives the same results (the layers compute in ``dtype`` either way) without re-reading every
    weight per call, which dominates a caption decoder's step and a small batch's encoder pass.
    Everything else (norms, embeddings) keeps its dtype, and autocast still decides per operation.
    A weight tied to another module (a language-model head and its word embeddings) is copied
    for the layer, so the other module keeps its float32 original.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            for name in ("weight", "bias"):
                param = getattr(module, name)
                if param is not None and param.dtype != dtype:
                    setattr(module, name, nn.Parameter(param.detach().to(dtype), False))
