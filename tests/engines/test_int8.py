"""dtype="int8": a tagger's linear layers as int8 matrix products on the CPU (engines/int8.py);
tied layers stay tied, RAM's per-class scorer stays float32, and other engines and devices refuse
it. Its tags against the reference are checked with bfloat16's in test_fast_paths.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from data_paths import FIXTURES
from torch import nn

from tag2text_zoo import load_dense_segmenter, load_grounded_segmenter, load_tagger, loaders
from tag2text_zoo.engines.device import resolve_precision
from tag2text_zoo.engines.int8 import (
    Int8Linear,
    check_int8_supported,
    full_range_is_exact,
    quantize_linear_layers,
)

CLIP = FIXTURES / "tagalign-tiny" / "clip"


@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_follows_the_float_layer(bias):
    torch.manual_seed(0)
    linear = nn.Linear(96, 40, bias=bias)
    int8 = Int8Linear(linear)
    x = torch.randn(3, 7, 96)
    with torch.inference_mode():
        ref, out = linear(x), int8(x)
    assert out.shape == ref.shape and out.dtype == torch.float32
    error = (out - ref).abs().max() / ref.abs().max()
    assert 0 < error < 0.03  # quantised (not the float layer), and close to it
    view = torch.randn(7, 3, 96).transpose(0, 1)  # not contiguous
    torch.testing.assert_close(int8(view), int8(view.contiguous()), rtol=0, atol=0)
    assert (int8.in_features, int8.out_features) == (96, 40)


def test_inputs_keep_8_bits_where_the_kernel_sums_them_exactly():
    """7-bit inputs (reduce_range) only where 8-bit ones could saturate: they double the error."""
    torch.manual_seed(0)
    linear = nn.Linear(768, 256)
    int8 = Int8Linear(linear)
    x = torch.randn(64, 768)
    with torch.inference_mode():
        ref, out = linear(x), int8(x)
        seven_bits = torch.ops.quantized.linear_dynamic(x, int8._packed, True)
    if not full_range_is_exact():
        torch.testing.assert_close(out, seven_bits, rtol=0, atol=0)
        return
    error, error_7 = ((y - ref).abs().max() / ref.abs().max() for y in (out, seven_bits))
    assert error < 0.7 * error_7, (error, error_7)


def test_shared_layers_stay_shared_and_kept_ones_stay_float():
    shared = nn.Linear(8, 8)
    model = nn.ModuleDict(
        {"a": nn.Sequential(shared), "b": nn.Sequential(shared), "fc": nn.Linear(8, 1)}
    )
    assert quantize_linear_layers(model, keep=("fc",)) == 1
    assert isinstance(model["a"][0], Int8Linear) and model["a"][0] is model["b"][0]
    assert type(model["fc"]) is nn.Linear


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_the_replaced_float_weights_go_back_to_the_system():
    """glibc keeps freed heap pages; without handing them back, an int8 tagger's process was as
    large as a float32 one's."""
    torch.empty(8 << 20, dtype=torch.uint8)  # freed at once: glibc now heaps 4 MB blocks
    model = nn.Sequential(*[nn.Linear(1024, 1024) for _ in range(48)])  # 4 MB weights, 192 MB
    before = _resident_mb()
    quantize_linear_layers(model)
    assert before - _resident_mb() > 100  # 192 MB of float32 freed, 48 MB of int8 made


def _resident_mb() -> float:
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024


def test_an_int8_tagger_quantises_its_linear_layers(
    tag2text_dir, tag2text_images, one_torch_thread
):
    tagger = load_tagger(tag2text_dir, device="cpu", dtype="int8", exif_transpose=False)
    model = tagger.model
    assert not [name for name, m in model.named_modules() if type(m) is nn.Linear]
    assert isinstance(model.visual_encoder.layers[0].blocks[0].mlp.fc1, Int8Linear)
    assert isinstance(model.text_decoder.cls.predictions.decoder, Int8Linear)  # the LM head
    # its tied word embeddings stay float32
    assert model.text_decoder.bert.embeddings.word_embeddings.weight.dtype == torch.float32
    for i in tagger.config.tagging_head.shares_weights_with_tag_encoder_layers:
        head, encoder = model.tagging_head.encoder.layer[i], model.tag_encoder.layers[i]
        assert head.intermediate is encoder.intermediate  # still the reference's tied layers
    results = tagger.predict(tag2text_images[:3])  # the static-cache decoder on int8 layers
    prompt = list(tagger.config.prompt_ids)
    assert all(r.tags and r.caption for r in results), results
    assert all(r.caption_token_ids[: len(prompt)] == prompt for r in results)
    assert all(len(r.caption_token_ids) > len(prompt) for r in results)


def test_ram_keeps_its_per_class_scorer_in_float32(one_torch_thread):
    tagger = load_tagger(FIXTURES / "ram-tiny", device="cpu", dtype="int8", exif_transpose=False)
    float_layers = [name for name, m in tagger.model.named_modules() if isinstance(m, nn.Linear)]
    assert float_layers == ["fc"] and tagger.model.fc.weight.dtype == torch.float32
    assert isinstance(tagger.model.image_proj, Int8Linear)


def test_int8_is_for_taggers_on_the_cpu(tag2text_dir, grounded_dirs, monkeypatch):
    precision = resolve_precision("cpu", "int8", allow_int8=True)
    assert (precision.weights, precision.autocast, precision.int8) == (torch.float32, None, True)
    with pytest.raises(ValueError, match="expected one of float32, bfloat16, float16$"):
        resolve_precision("cpu", "int8")
    for load in (
        lambda: load_grounded_segmenter(*grounded_dirs, device="cpu", dtype="int8"),
        lambda: load_dense_segmenter(CLIP, device="cpu", dtype="int8"),
    ):
        with pytest.raises(ValueError, match="dtype 'int8' is not supported"):
            load()
    with pytest.raises(ValueError, match="runs on the CPU only; use bfloat16 on a GPU"):
        check_int8_supported(torch.device("cuda"))
    with monkeypatch.context() as patch:  # refused before the checkpoint loads
        patch.setattr(loaders, "load_checkpoint", _must_not_load)
        with pytest.raises(ValueError, match="compile_encoder does not support dtype 'int8'"):
            load_tagger(tag2text_dir, device="cpu", dtype="int8", compile_encoder=True)
    if "qnnpack" in torch.backends.quantized.supported_engines:
        monkeypatch.setattr(torch.backends.quantized, "engine", "qnnpack")
        with pytest.raises(ValueError, match="it is 'qnnpack' here"):
            check_int8_supported(torch.device("cpu"))


def _must_not_load(*args, **kwargs):
    raise AssertionError("the checkpoint was loaded before the options were checked")
