"""Freed memory kept in the heap during CPU engine calls (engines/heap.py): inside the scope a
freed block's pages are reused without faults, on leaving they go back to the system, the scope
is counted, the process's own malloc settings win, and the engines run their models inside it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from data_paths import FIXTURES

from tag2text_zoo import load_dense_segmenter, load_grounded_segmenter, load_tagger
from tag2text_zoo.engines import heap

needs_glibc = pytest.mark.skipif(heap._glibc() is None, reason="malloc is not glibc's here")

# In a fresh interpreter (these settings are the process's): page faults of 4 rounds of filling
# and freeing a 64 MB block, outside, inside (once the heap has grown to fit) and after a nested
# scope, and the resident memory inside (block freed) and after leaving.
_PROBE = """
import json, resource, torch
from tag2text_zoo.engines.heap import kept_freed_memory

cpu = torch.device("cpu")
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
def refill_faults():
    torch.ones(2**24).add_(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        torch.ones(2**24).add_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
out = {"outside": refill_faults()}
with kept_freed_memory(cpu):
    refill_faults()  # the heap grows to fit
    out["inside"] = refill_faults()
    with kept_freed_memory(cpu):
        pass
    out["after_inner_scope"] = refill_faults()
    out["rss_inside_mb"] = rss_mb()
out["rss_after_mb"] = rss_mb()
print(json.dumps(out))
"""


@needs_glibc
def test_inside_the_scope_freed_pages_are_reused_and_given_back_after():
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    out = json.loads(done.stdout)
    pages = 4 * 2**26 // 4096
    assert out["outside"] > pages / 2, out  # glibc maps a fresh block: every page faults
    assert out["inside"] < pages / 20, out
    assert out["after_inner_scope"] < pages / 20, out  # the outer scope still holds
    assert out["rss_inside_mb"] - out["rss_after_mb"] > 48, out  # the freed 64 MB went back


def test_the_process_own_malloc_settings_are_left_alone(monkeypatch):
    heap._glibc.cache_clear()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    try:
        assert heap._glibc() is None
        with heap.kept_freed_memory(torch.device("cpu")):
            assert heap._depth == 0
    finally:
        monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
        heap._glibc.cache_clear()


def _record_depth(module: torch.nn.Module, depths: list[int]) -> None:
    """Appends the scope's depth to ``depths`` whenever ``module`` runs."""
    module.register_forward_pre_hook(lambda *_: depths.append(heap._depth))


@needs_glibc
@pytest.mark.parametrize("method", ["predict_tensors", "tag_probabilities", "embed_tensors"])
def test_taggers_run_their_models_with_freed_memory_kept(method):
    tagger = load_tagger(FIXTURES / "tag2text-tiny", device="cpu")
    depths: list[int] = []
    _record_depth(tagger.model.visual_encoder.patch_embed, depths)
    pixels = torch.rand(2, 3, tagger.config.image_size, tagger.config.image_size)
    getattr(tagger, method)(pixels)
    assert depths == [1]
    assert heap._depth == 0


@needs_glibc
def test_grounded_and_dense_engines_run_their_models_with_freed_memory_kept(grounded_dirs):
    grounded = load_grounded_segmenter(
        *grounded_dirs, device="cpu", box_threshold=0.0, text_threshold=0.0
    )
    dense = load_dense_segmenter(FIXTURES / "tagalign-tiny" / "clip", device="cpu")
    depths: dict[str, list[int]] = {"detector": [], "segmenter": [], "clip": []}
    _record_depth(grounded.detector, depths["detector"])
    _record_depth(grounded.segmenter, depths["segmenter"])
    _record_depth(dense.clip.vision_model.embeddings, depths["clip"])
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    (result,) = grounded.segment([image], [["cat", "dog"]])
    dense.predict([image], ["cat", "dog"])
    assert len(result.labels) > 0  # the segmenter ran
    assert all(d and min(d) >= 1 for d in depths.values()), depths
    assert heap._depth == 0
