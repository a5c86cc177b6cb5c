"""int8 weights for the CPU: linear layers as dynamically quantised int8 matrix products.

Each weight is quantised once, symmetrically per output channel; each call quantises its input
per tensor (8 bits where the CPU's kernel sums products exactly, 7 where it could saturate) and
accumulates in int32 (PyTorch's ``quantized::linear_dynamic``, the fbgemm/x86 kernel
behind ``torch.ao``'s dynamic quantisation). ``torch.ao.quantization`` is deprecated in favour of
torchao, whose eager int8 layer ran about 20x slower than float32 on a 2-core AVX2 CPU, so the
module swap is done here and only the kernel is PyTorch's. On a CPU without AMX this
is the fast path; results follow float32 closely but not exactly.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import warnings
from collections.abc import Container

import torch
from torch import nn

from .linear_swap import swap_linear_layers

_ENGINES = ("x86", "fbgemm")  # the quantised engines with AVX2 / AVX-512 int8 kernels


class Int8Linear(nn.Module):
    """A frozen :class:`~torch.nn.Linear` with per-channel int8 weights and float in/out."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = None if linear.bias is None else linear.bias.detach().to("cpu", torch.float32)
        self._packed = _pack(linear.weight.detach(), bias)
        self._reduce_range = not full_range_is_exact()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self._packed, self._reduce_range)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


@functools.cache
def full_range_is_exact() -> bool:
    """Whether the int8 kernel sums 8-bit inputs exactly on this CPU.

    AVX2 (and AVX-512 without VNNI) adds pairs of u8 x s8 products in 16 bits, which saturate
    for large inputs; PyTorch's answer is ``reduce_range`` (7-bit inputs), which doubles the
    rounding error. VNNI and AMX accumulate in 32 bits. Rather than reading CPU flags, this runs
    the worst case: every input at 255 and every weight at 127, whose pair sums (64,770)
    overflow 16 bits.
    """
    packed = _pack(torch.ones(64, 256), None)
    out = torch.ops.quantized.linear_dynamic(torch.ones(4, 256), packed, False)
    return bool(torch.allclose(out, torch.full_like(out, 256.0), rtol=1e-3))


def _pack(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.ScriptObject:
    """``weight`` quantised symmetrically per output channel and packed for the int8 kernel."""
    weight = weight.to("cpu", torch.float32)
    scales = (weight.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)
    zero_points = torch.zeros(len(scales), dtype=torch.long)
    with warnings.catch_warnings():  # PyTorch deprecates quantised tensors, not the kernel
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor, torch.quantize_per")
        qweight = torch.quantize_per_channel(weight, scales.double(), zero_points, 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(qweight, bias)


def check_int8_supported(device: torch.device) -> None:
    """Raises ValueError unless int8 can run here: the CPU, with PyTorch's x86 int8 kernels."""
    if device.type != "cpu":
        raise ValueError("dtype 'int8' runs on the CPU only; use bfloat16 on a GPU")
    engine = torch.backends.quantized.engine
    if engine not in _ENGINES:
        raise ValueError(
            f"dtype 'int8' needs PyTorch's x86 int8 kernels (torch.backends.quantized.engine "
            f"'x86' or 'fbgemm'); it is {engine!r} here"
        )


def quantize_linear_layers(model: nn.Module, keep: Container[str] = ()) -> int:
    """Replaces every :class:`~torch.nn.Linear` of ``model`` by an :class:`Int8Linear`, except
    those whose qualified names are in ``keep``; returns how many were replaced.

    A layer shared by several parents (tied layers) becomes one int8 layer, still shared. The
    replaced float weights' memory goes back to the system.
    """
    replaced = swap_linear_layers(
        model, lambda name, layer: None if name in keep else Int8Linear(layer)
    )
    _return_freed_memory()
    return replaced


def _return_freed_memory() -> None:
    """Returns freed heap pages to the system: glibc keeps them, and a full-size Tag2Text's
    process stayed 0.9 GB larger in int8 than needed (as large as in float32) without this."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl): nothing to trim this way
        pass
