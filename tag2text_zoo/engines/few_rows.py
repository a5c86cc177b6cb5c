"""float32 linear layers that multiply few rows as ``W @ x^T`` on the CPU.

A caption decoding step multiplies every decoder weight by one row per beam: 3 rows when one
image is left, which is how every batch's longest caption ends. For so few rows MKL's float32
``x @ W^T`` (what :func:`torch.nn.functional.linear` runs) read the weights at 4-8 GB/s on a
2-core Zen 4 EPYC, where ``W @ x^T`` read them at 17-27 GB/s (the memory's speed): 2-6x faster
per layer at 3 rows, 1.0-2.8x up to 8 rows, and no faster at 9-15 (measured per shape, on
weights too large for the cache). The results were bit-identical: each output is the same dot
product either way.
"""

from __future__ import annotations

import torch
from torch import nn

# Most rows (all leading dimensions together) that take the W @ x^T product.
FEW_ROWS = 8


class FewRowsLinear(nn.Linear):
    """An :class:`~torch.nn.Linear` sharing another's parameters (ties stay tied) whose
    products of at most :data:`FEW_ROWS` rows are taken as ``W @ x^T``."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear.in_features, linear.out_features, bias=False, device="meta")
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if rows > FEW_ROWS:
            return super().forward(x)
        columns = x.reshape(rows, self.in_features).t()
        if self.bias is None:
            out = self.weight @ columns
        else:
            out = torch.addmm(self.bias.unsqueeze(1), self.weight, columns)
        return out.t().contiguous().reshape(*x.shape[:-1], self.out_features)


def use_few_rows_products(model: nn.Module) -> int:
    """Replaces every :class:`~torch.nn.Linear` of ``model`` by a :class:`FewRowsLinear` (one
    per layer, however many parents share it); returns how many were replaced."""
    swapped: dict[int, FewRowsLinear] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                if id(child) not in swapped:
                    swapped[id(child)] = FewRowsLinear(child)
                setattr(parent, name, swapped[id(child)])
    return len(swapped)
