"""The caption decoder as the beam search drives it: a static cache, images admitted as they come.

An image's tag-encoder states are computed when it is admitted (together with the other images
admitted at that moment), so that a long run of images streams through a fixed number of slots.
On CUDA each decoding step replays a captured CUDA graph: the step's few hundred small kernels
launch as one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.bert import TextDecoder


class CaptionDecoder:
    """:class:`~.beam_search.SlotDecoder` over a :class:`~tag2text_zoo.models.bert.TextDecoder`.

    Args:
        decoder: the model's caption decoder.
        prompt_ids: the prompt every caption starts with.
        capacity: most images in flight.
        rows_per_image: sequences per image (the number of beams; 1 for sampling).
        max_length: longest sequence, prompt included.
        cross_length: tag-encoder sequence length (every image's is padded to it).
        hidden_size: tag-encoder state width.
        dtype: cache dtype (that of the decoder's activations).
        cuda_graphs: replay each step as a CUDA graph (CUDA only).
    """

    def __init__(
        self,
        decoder: TextDecoder,
        prompt_ids: list[int],
        capacity: int,
        rows_per_image: int,
        max_length: int,
        cross_length: int,
        hidden_size: int,
        dtype: torch.dtype,
        cuda_graphs: bool = False,
    ) -> None:
        self.decoder, self.capacity, self.rows_per_image = decoder, capacity, rows_per_image
        self.device = next(decoder.parameters()).device
        self.prompt = torch.tensor(prompt_ids, device=self.device)
        empty = torch.zeros(0, cross_length, hidden_size, dtype=dtype, device=self.device)
        self.cache = decoder.new_cache(empty, rows_per_image, max_length, slots=capacity)
        self.running = 0
        self._encode: Callable[[list[int]], torch.Tensor] | None = None
        self._graphs = _StepGraphs(decoder, self.cache) if cuda_graphs else None

    def start(self, encode: Callable[[list[int]], torch.Tensor]) -> CaptionDecoder:
        """Starts a new run; ``encode(images)`` gives those images' tag-encoder states."""
        self._encode, self.running = encode, 0
        self.cache.lengths[:] = [0] * len(self.cache.lengths)
        return self

    def admit(self, images: list[int]) -> torch.Tensor:
        assert self._encode is not None, "call start() first"
        first = self.running
        self.decoder.set_cross_states(self.cache, first, self._encode(images))
        rows = [(first + i) * self.rows_per_image for i in range(len(images))]
        logits = self.decoder.prefill(self.prompt.expand(len(images), -1), self.cache, rows)
        self.cache.spread(rows, len(self.prompt))
        self.running += len(images)
        return logits

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self._graphs is not None:
            logits = self._graphs(tokens)
        else:
            logits = self.decoder.step(tokens, self.cache)
        self.cache.advance(len(tokens))
        return logits

    def keep(self, rows: list[int], images: list[int]) -> None:
        self.cache.keep(rows, images)
        self.running = len(images)


class _StepGraphs:
    """The decoder step captured as CUDA graphs, one per number of running rows.

    Inputs (tokens, positions) and the cache live in static buffers; a graph's first use warms
    the step up on a side stream, then captures it. Running the same step twice writes the same
    keys/values, so the warm-up leaves the cache as one step would.
    """

    def __init__(self, decoder: TextDecoder, cache) -> None:
        self.decoder, self.cache = decoder, cache
        self.tokens = torch.zeros(len(cache.lengths), dtype=torch.long, device=cache.keys.device)
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = len(tokens)
        self.tokens[:rows].copy_(tokens)
        self.cache.device_positions(rows)
        if rows not in self.graphs:

            def step() -> torch.Tensor:
                return self.decoder.step(self.tokens[:rows], self.cache, static=True)

            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                logits = step()
            self.graphs[rows] = (graph, logits)
        graph, logits = self.graphs[rows]
        graph.replay()
        return logits
