"""One device/dtype rule for every engine: bad values are refused with the accepted ones named."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from data_paths import FIXTURES

from tag2text_zoo import load_dense_segmenter, load_grounded_segmenter, load_tagger
from tag2text_zoo.engines import device as device_module
from tag2text_zoo.engines.device import resolve_precision

CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ],
)

BAD = [
    ({"device": "tpu"}, r"device 'tpu' is not supported; expected 'cpu', 'cuda' or 'cuda:N'"),
    ({"dtype": "int4"}, r"dtype 'int4' is not supported; expected one of float32, bfloat16"),
    ({"device": "cpu", "dtype": "float16"}, r"float16 needs a GPU"),
]


def test_precision_of_good_values():
    assert resolve_precision("cpu").autocast is None
    cpu = resolve_precision("cpu", torch.bfloat16)
    assert (cpu.device.type, cpu.weights, cpu.autocast) == ("cpu", torch.float32, torch.bfloat16)
    assert resolve_precision("cpu", "float64", allow_float64=True).weights == torch.float64
    with pytest.raises(ValueError, match="expected one of float32, bfloat16, float16$"):
        resolve_precision("cpu", "float64")


@pytest.mark.parametrize("units", [True, False])
def test_bfloat16_on_a_cpu_without_bfloat16_units_warns(units, monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_bfloat16_units", lambda: units)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_precision("cpu", "bfloat16").autocast == torch.bfloat16
        resolve_precision("cpu", "float32")
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    if units:
        assert messages == []
    else:
        assert len(messages) == 1 and "slower than float32; use float32" in messages[0]


def test_bfloat16_units_are_detected():
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    flags = set(next((line for line in lines if line.startswith("flags")), "").split())
    if not flags:
        pytest.skip("reads an x86 CPU's flags from /proc/cpuinfo")
    if flags & {"avx512_bf16", "amx_bf16"}:
        assert device_module.cpu_has_bfloat16_units()
    elif "avx512bw" not in flags:  # AVX2 and older: oneDNN emulates bfloat16
        assert not device_module.cpu_has_bfloat16_units()
    else:
        pytest.skip("AVX-512 without bfloat16 instructions: oneDNN's own choice")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_precision("cuda:0")


@pytest.mark.parametrize(("bad", "message"), BAD, ids=["device", "dtype", "float16-cpu"])
def test_every_engine_refuses_the_same_bad_values(bad, message, tag2text_dir, grounded_dirs):
    loaders = [
        lambda: load_tagger(tag2text_dir, **bad),
        lambda: load_grounded_segmenter(*grounded_dirs, **bad),
        lambda: load_dense_segmenter(FIXTURES / "tagalign-tiny" / "clip", **bad),
    ]
    for load in loaders:
        with pytest.raises(ValueError, match=message):
            load()


# The GPU test's assertions also run on the CPU, so that they are known to hold somewhere.
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_tagger_runs_bfloat16_under_autocast(device, tag2text_dir, tag2text_images):
    tagger = load_tagger(tag2text_dir, device=device, dtype="bfloat16", exif_transpose=False)
    assert tagger.autocast_dtype == torch.bfloat16
    # linear and convolution weights are cast once (precast_for_autocast); norms stay float32
    first_block = tagger.model.visual_encoder.layers[0].blocks[0]
    assert first_block.mlp.fc1.weight.dtype == torch.bfloat16
    assert first_block.norm1.weight.dtype == torch.float32
    assert tagger.predict(tag2text_images[:1])[0].caption
