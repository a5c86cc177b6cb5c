"""Linear layers through oneDNN's product on the CPU, with the activation that follows fused.

PyTorch runs a float32 ``nn.Linear`` on the CPU as MKL's ``addmm``, and a bfloat16 one under
autocast as an ``addmm`` too: it first copies the bias into every row of a freshly allocated output
(a pass over memory whose pages are faulted in there), then multiplies. oneDNN's product adds the
bias as it writes, and can apply an exact GELU or a ReLU there too, while the output is still in
the cache. On a 2-core Zen 4 EPYC, with Tag2Text on 8 images, the profiler put matrix products and
copies (the bias copies among them) at 12.6 s of 16.0 with MKL's float32 products, 8.5 s of 11.8
with oneDNN's; tags took 1.06-1.25 s per image instead of 1.15-1.46 and tags + caption 1.44-1.61
instead of 1.88-2.16 (interleaved processes), with the same tags and captions. For a caption
decoder's few rows (3 to 96, one per beam) MKL was slower still: 6-12 GFLOP/s at 3 rows, 26-44 at
9, 83-131 at 48, oneDNN 24-34, 65-80 and 140-169. Then bfloat16 layers (weights cast once,
:func:`~.device.precast_for_autocast`) and the feed-forward GELUs of the Swin and BERT blocks:
bfloat16 tags 0.569-0.582 s per image against 0.626-0.649 with ``addmm`` and a separate GELU,
float32 0.972-1.056 against 1.005-1.097 (three rounds of interleaved processes, the same float32
probabilities). Sums may be ordered differently from ``addmm``'s. Which blocks apply which
activation right after which layer is a table (:data:`FEED_FORWARDS`; the grounded engine's
transformers models have theirs, :mod:`.transformers_feed_forwards`).

The product is ``torch.ops.mkldnn._linear_pointwise``, which PyTorch's compiler uses for oneDNN
linear layers; :func:`onednn_linear_works` checks it once per process and dtype, and layers
stay as they are without it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from timm.layers import Mlp
from torch import nn
from torch.nn import functional as F

from ..models.bert import Intermediate
from .linear_swap import swap_linear_layers

ONEDNN_DTYPES = (torch.float32, torch.bfloat16)
# oneDNN's post-op and its algorithm argument per activation ("gelu" + "none": the exact erf GELU).
_POST_OPS = {"none": ("none", ""), "gelu": ("gelu", "none"), "relu": ("relu", "")}
# Blocks that apply their activation right after a linear layer: (the layer, the activation).
ActivationAfterLinear = Mapping[type[nn.Module], tuple[str, str]]
FEED_FORWARDS: ActivationAfterLinear = {
    Mlp: ("fc1", "act"),  # timm's (Swin's feed-forward)
    Intermediate: ("dense", "act"),  # BERT's
}


class OneDnnLinear(nn.Linear):
    """An :class:`~torch.nn.Linear` sharing another's parameters (ties stay tied), followed by
    ``activation`` ("none", "gelu" or "relu"), whose CPU products are oneDNN's: float32 ones, and
    bfloat16 ones under bfloat16 autocast with bfloat16 weights. Under autograd or compilation,
    or in other dtypes, it is the plain layer (then the activation)."""

    def __init__(self, linear: nn.Linear, activation: str = "none") -> None:
        if activation not in _POST_OPS:
            raise ValueError(f"unsupported activation {activation!r}")
        super().__init__(linear.in_features, linear.out_features, bias=False, device="meta")
        self.weight, self.bias = linear.weight, linear.bias
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._onednn_dtype(x)
        if dtype is None:
            return _PLAIN_ACTIVATIONS[self.activation](super().forward(x))
        return _onednn_linear(x.to(dtype), self.weight, self.bias, self.activation)

    def _onednn_dtype(self, x: torch.Tensor) -> torch.dtype | None:
        """The dtype oneDNN's product computes ``x`` in (autocast's, where it is on), or None
        where the plain layer must run: on other devices, with gradients (oneDNN's product has
        none), under ``torch.compile`` (the compiler picks its own products), or where the
        weights are not in that dtype."""
        if x.device.type != "cpu" or torch.is_grad_enabled() or torch.compiler.is_compiling():
            return None
        autocast = torch.is_autocast_enabled("cpu")
        dtype = torch.get_autocast_dtype("cpu") if autocast else x.dtype
        return dtype if dtype == self.weight.dtype and dtype in ONEDNN_DTYPES else None

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


_PLAIN_ACTIVATIONS = {"none": lambda x: x, "gelu": F.gelu, "relu": F.relu}


def _onednn_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str = "none"
) -> torch.Tensor:
    post_op, algorithm = _POST_OPS[activation]
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, post_op, [], algorithm)


@functools.cache
def onednn_linear_works(dtype: torch.dtype = torch.float32) -> bool:
    """Whether this PyTorch has oneDNN's linear product in ``dtype`` on the CPU and it computes
    ``F.linear`` (and, fused, each activation of it)."""
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(*s, generator=generator) for s in ((2, 3, 16), (8, 16), (8,)))
    x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    try:
        with torch.inference_mode():
            outs = {a: _onednn_linear(x, weight, bias, a) for a in _POST_OPS}
    except (RuntimeError, AttributeError):  # a build without oneDNN, or the op is gone
        return False
    expected = nn.functional.linear(x.float(), weight.float(), bias.float())
    return all(
        torch.allclose(out.float(), _PLAIN_ACTIVATIONS[a](expected), rtol=tolerance, atol=tolerance)
        for a, out in outs.items()
    )


def use_onednn_products(model: nn.Module, blocks: ActivationAfterLinear = FEED_FORWARDS) -> int:
    """Replaces every float32 or bfloat16 :class:`~torch.nn.Linear` on the CPU in ``model`` by
    a :class:`OneDnnLinear` (one per layer, however many parents share it), where
    :func:`onednn_linear_works` in its dtype, then fuses the activation of each block in
    ``blocks`` (timm's ``Mlp`` and BERT's ``Intermediate`` by default) into its layer where
    oneDNN computes it; returns how many layers were replaced."""
    swapped = swap_linear_layers(model, _onednn_layer)
    for block in model.modules():
        names = blocks.get(type(block))
        if names is not None:
            _fuse_activation(block, *names)
    return swapped


def _onednn_layer(name: str, layer: nn.Linear) -> OneDnnLinear | None:
    """``layer`` as a :class:`OneDnnLinear` if it is on the CPU in a dtype oneDNN computes."""
    weight = layer.weight
    if weight.device.type != "cpu" or weight.dtype not in ONEDNN_DTYPES:
        return None
    return OneDnnLinear(layer) if onednn_linear_works(weight.dtype) else None


def _post_op(act: nn.Module) -> str | None:
    """The post-op that computes ``act`` exactly: an exact GELU (``nn.GELU`` or transformers'
    ``GELUActivation``, which calls ``F.gelu``) or a ReLU; None for any other."""
    if type(act) is nn.GELU:
        return "gelu" if act.approximate == "none" else None
    if type(act) is nn.ReLU:
        return "relu"
    is_transformers_gelu = type(act).__name__ == "GELUActivation"
    return "gelu" if is_transformers_gelu and getattr(act, "act", None) is F.gelu else None


def _fuse_activation(block: nn.Module, linear_name: str, act_name: str) -> None:
    """Moves ``block``'s activation into its preceding oneDNN layer (a new one sharing the
    parameters, so that a layer tied elsewhere stays as it is there)."""
    linear, act = getattr(block, linear_name), getattr(block, act_name)
    post_op = _post_op(act)
    if type(linear) is OneDnnLinear and linear.activation == "none" and post_op is not None:
        setattr(block, linear_name, OneDnnLinear(linear, activation=post_op))
        setattr(block, act_name, nn.Identity())
