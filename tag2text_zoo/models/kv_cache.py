"""The caption decoder's key/value cache, allocated once: decoding steps write into it in place.

Rows hold running sequences; a slot holds one image's cross-attention keys/values, shared by its
``rows_per_slot`` consecutive rows (its beams). Running images occupy the leading slots and rows,
so a step works on views of the buffers, and beam reordering copies only the rows that change,
and only their used positions.
"""

from __future__ import annotations

import torch


class KVCache:
    """Static keys/values of a decoder with ``layers`` layers.

    Attributes:
        keys, values: ``[layers, rows, heads, max_length, head_dim]`` self-attention entries.
        cross_keys, cross_values: ``[layers, slots, heads, cross_length, head_dim]``.
        lengths: tokens held by each row (host-side, so steps need no device sync).
        positions: the same on the device, refreshed by :meth:`device_positions`.
    """

    def __init__(
        self,
        layers: int,
        slots: int,
        rows_per_slot: int,
        heads: int,
        head_dim: int,
        max_length: int,
        cross_length: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        rows = slots * rows_per_slot
        kw = {"dtype": dtype, "device": device}
        self.rows_per_slot, self.max_length = rows_per_slot, max_length
        self.keys = torch.zeros(layers, rows, heads, max_length, head_dim, **kw)
        self.values = torch.zeros_like(self.keys)
        self.cross_keys = torch.zeros(layers, slots, heads, cross_length, head_dim, **kw)
        self.cross_values = torch.zeros_like(self.cross_keys)
        self.lengths = [0] * rows
        self.positions = torch.zeros(rows, dtype=torch.long, device=device)

    @property
    def slots(self) -> int:
        return self.cross_keys.shape[1]

    def device_positions(self, rows: int) -> torch.Tensor:
        """``lengths[:rows]`` as a device tensor (a view of a static buffer)."""
        self.positions[:rows].copy_(torch.tensor(self.lengths[:rows]), non_blocking=True)
        return self.positions[:rows]

    def advance(self, rows: int) -> None:
        """Counts the token that a step appended to each of the first ``rows`` rows."""
        self.lengths[:rows] = [n + 1 for n in self.lengths[:rows]]

    def set_cross(self, first_slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Stores per-layer cross keys/values ``[layers, n, heads, L, d]`` in slots from
        ``first_slot`` on."""
        end = first_slot + keys.shape[1]
        self.cross_keys[:, first_slot:end] = keys
        self.cross_values[:, first_slot:end] = values

    def spread(self, rows: list[int], length: int) -> None:
        """Copies each of ``rows`` (a slot's first row, ``length`` tokens) to the rest of its
        slot's rows: every beam starts from the same prompt."""
        for row in rows:
            rest = slice(row + 1, row + self.rows_per_slot)
            self.keys[:, rest, :, :length] = self.keys[:, row : row + 1, :, :length]
            self.values[:, rest, :, :length] = self.values[:, row : row + 1, :, :length]
            self.lengths[rest] = [length] * (self.rows_per_slot - 1)

    def keep(self, rows: list[int], slots: list[int]) -> None:
        """Row ``i`` takes over row ``rows[i]``'s entries (beam reordering) and slot ``j`` slot
        ``slots[j]``'s (the running images that remain, in any order); the rows after them are
        empty. Only the rows and slots that change are copied."""
        _move([self.cross_keys, self.cross_values], slots)
        used = max((self.lengths[r] for i, r in enumerate(rows) if r != i), default=0)
        _move([self.keys, self.values], rows, used)
        self.lengths[: len(rows)] = [self.lengths[r] for r in rows]
        self.lengths[len(rows) :] = [0] * (len(self.lengths) - len(rows))  # free for new images


def _move(buffers: list[torch.Tensor], sources: list[int], used: int | None = None) -> None:
    """Entry ``i`` (along dim 1) of each buffer takes entry ``sources[i]``'s first ``used``
    positions (dim 3; all by default), for the ``i`` whose source differs."""
    moved = [i for i, source in enumerate(sources) if source != i]
    if not moved:
        return
    dst = torch.tensor(moved, device=buffers[0].device)
    src = torch.tensor([sources[i] for i in moved], device=buffers[0].device)
    for buffer in buffers:
        buffer[:, dst, :, :used] = buffer[:, src, :, :used]
