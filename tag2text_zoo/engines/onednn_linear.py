"""float32 linear layers through oneDNN's product on the CPU.

PyTorch runs a float32 ``nn.Linear`` on the CPU as MKL's ``addmm``: it first copies the bias
into every row of a freshly allocated output (a pass over memory whose pages are faulted in
there), then multiplies. oneDNN's product, the library behind PyTorch's bfloat16 products, adds
the bias as it writes. On a 2-core Zen 4 EPYC, with Tag2Text on 8 images, the profiler put
matrix products and copies (the bias copies among them) at 12.6 s of 16.0 with MKL's products,
8.5 s of 11.8 with oneDNN's; tags took 1.06-1.25 s per image instead of 1.15-1.46 and tags +
caption 1.44-1.61 instead of 1.88-2.16 (interleaved processes), with the same tags and
captions. For a caption decoder's few rows (3 to 96, one per beam) MKL was slower still: 6-12
GFLOP/s at 3 rows, 26-44 at 9, 83-131 at 48, oneDNN 24-34, 65-80 and 140-169. Both compute in
float32; the sums may be ordered differently. The product is
``torch.ops.mkldnn._linear_pointwise``, which PyTorch's compiler uses for oneDNN linear layers;
:func:`onednn_linear_works` checks it once per process, and layers stay as they are without it.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from .linear_swap import swap_linear_layers


class OneDnnLinear(nn.Linear):
    """An :class:`~torch.nn.Linear` sharing another's parameters (ties stay tied) whose float32
    CPU products are oneDNN's (without autocast, autograd or compilation; otherwise it is the
    plain layer)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear.in_features, linear.out_features, bias=False, device="meta")
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or _plain_layer_needed():
            return super().forward(x)
        return _onednn_linear(x, self.weight, self.bias)


def _plain_layer_needed() -> bool:
    """Whether the plain layer must run: under autocast its product is not a float32 one,
    oneDNN's product has no gradient, and ``torch.compile`` does not trace it (the compiler picks
    its own products)."""
    return (
        torch.is_grad_enabled() or torch.is_autocast_enabled("cpu") or torch.compiler.is_compiling()
    )


def _onednn_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@functools.cache
def onednn_linear_works() -> bool:
    """Whether this PyTorch has oneDNN's float32 linear product and it computes ``F.linear``."""
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(*s, generator=generator) for s in ((2, 3, 16), (8, 16), (8,)))
    try:
        with torch.inference_mode():
            out = _onednn_linear(x, weight, bias)
    except (RuntimeError, AttributeError):  # a build without oneDNN, or the op is gone
        return False
    return bool(torch.allclose(out, nn.functional.linear(x, weight, bias), rtol=1e-5, atol=1e-5))


def use_onednn_products(model: nn.Module) -> int:
    """Replaces every float32 :class:`~torch.nn.Linear` on the CPU in ``model`` by a
    :class:`OneDnnLinear` (one per layer, however many parents share it), where
    :func:`onednn_linear_works`; returns how many were replaced."""
    if not onednn_linear_works():
        return 0
    return swap_linear_layers(model, _onednn_layer)


def _onednn_layer(name: str, layer: nn.Linear) -> OneDnnLinear | None:
    """``layer`` as a :class:`OneDnnLinear` if it is float32 on the CPU."""
    if layer.weight.dtype != torch.float32 or layer.weight.device.type != "cpu":
        return None
    return OneDnnLinear(layer)
