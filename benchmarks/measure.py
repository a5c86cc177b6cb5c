"""What the benchmarks share: timing, matrix-product peak, FLOPs, peak memory, test images."""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tag2text_zoo.engines.int8 import Int8Linear
from tag2text_zoo.engines.onednn_linear import ONEDNN_DTYPES, OneDnnLinear, onednn_linear_works

# The product the issue measured the hardware limit with: 3,429 label queries through a
# 768 -> 3072 feed-forward layer (the tagging head's largest matrices).
PEAK_SHAPE = (3429, 768, 3072)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Runs ``fn`` once; returns (wall seconds, CPU seconds of this process, all threads)."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def matmul_peak(dtype: str, device: torch.device, repeats: int = 5) -> float:
    """Best GFLOP/s of a linear product on :data:`PEAK_SHAPE` in ``dtype`` (a measured, attainable
    peak): ``F.linear``'s, and in float32 and bfloat16 on the CPU also oneDNN's, which the
    taggers run there (float32: 10-14% faster than ``F.linear`` on a Zen 4 EPYC); ``"int8"``:
    the taggers' int8 layer (``engines/int8.py``, the CPU only)."""
    m, k, n = PEAK_SHAPE
    x = torch.randn(m, k, device=device)
    if dtype == "int8":
        products: list[Callable[[torch.Tensor], torch.Tensor]] = [
            Int8Linear(nn.Linear(k, n, bias=False))
        ]
    else:
        x = x.to(getattr(torch, dtype))
        weight = torch.randn(n, k, device=device).to(x.dtype)
        products = [functools.partial(F.linear, weight=weight)]
        if device.type == "cpu" and x.dtype in ONEDNN_DTYPES and onednn_linear_works(x.dtype):
            products.append(OneDnnLinear(nn.Linear(k, n, bias=False).to(x.dtype)))
    best = math.inf
    for product in products:
        with torch.inference_mode():
            product(x)
            run = functools.partial(product, x)
            best = min(best, *(timed(run, device)[0] for _ in range(repeats)))
    return 2 * m * k * n / best / 1e9


def _linear_flops(x_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    """A linear product's FLOPs: 2 per input row, input feature and output feature."""
    return 2 * math.prod(x_shape[:-1]) * weight_shape[1] * weight_shape[0]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products, convolutions and attention that ``fn`` runs (with oneDNN's
    linear product, which float32 taggers use on the CPU, and PyTorch's counter does not
    know)."""
    onednn = getattr(torch.ops.mkldnn, "_linear_pointwise", None)  # absent from some builds
    formulas = {} if onednn is None else {onednn: _linear_flops}
    with FlopCounterMode(display=False, custom_mapping=formulas) as counter:
        fn()
    return counter.get_total_flops()


def median(values: list[float]) -> float:
    return statistics.median(values)


def reset_peak_memory(device: torch.device) -> None:
    """Starts a new peak: GPU allocator statistics, or the process's RSS high-water mark."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets VmHWM (proc(5), clear_refs)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak is the process's lifetime maximum


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or peak RSS (since :func:`reset_peak_memory` where possible)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_images(directory: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEG photos-sized images of smooth random colour (4 sizes, both orientations)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [(640, 480), (480, 640), (512, 512), (800, 600)]
    paths = []
    for i in range(count):
        path = directory / f"image{i:04d}.jpg"
        width, height = sizes[i % len(sizes)]
        coarse = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
        if not path.is_file():
            Image.fromarray(coarse).resize((width, height), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def machine(device: torch.device) -> dict:
    """Where the figures come from."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "device": str(device),
        "device_name": name or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # e.g. AVX2, AVX512
    }


def _cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_result(out: Path, result: dict) -> Path:
    """Writes ``result`` as ``<out>/<benchmark>-<model>-<device type>.json``; says where."""
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(result["machine"]["device"]).type
    path = out / f"{result['benchmark']}-{result['model']}-{device}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return path
