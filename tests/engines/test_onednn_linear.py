"""float32 engines on the CPU take oneDNN's linear products (engines/onednn_linear.py): the same
outputs as nn.Linear, the same parameters (ties kept), and only where they apply. The golden
tags and captions through this path are checked by the parity tests in test_tagger.py, the
grounded and dense engines' outputs by theirs."""

from __future__ import annotations

import pytest
import torch
from data_paths import FIXTURES
from torch import nn

from tag2text_zoo import load_dense_segmenter, load_grounded_segmenter, load_tagger
from tag2text_zoo.engines import onednn_linear
from tag2text_zoo.engines.onednn_linear import OneDnnLinear, use_onednn_products

CLIP = FIXTURES / "tagalign-tiny" / "clip"

needs_onednn = pytest.mark.skipif(
    not onednn_linear.onednn_linear_works(), reason="this PyTorch has no oneDNN linear product"
)


def _refuse(*args, **kwargs):
    raise AssertionError("the plain product was called")


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 3, 9, 48, 300])
def test_same_outputs_as_the_linear_layer(bias, rows, monkeypatch):
    torch.manual_seed(0)
    linear = nn.Linear(96, 200, bias=bias)
    layer = OneDnnLinear(linear)
    x = torch.randn(rows, 1, 96)  # a decoding step: one token per beam row
    view = torch.randn(96, rows).t()  # not contiguous
    with torch.inference_mode():
        ref, ref_view = linear(x), linear(view)
        monkeypatch.setattr(torch.nn.functional, "linear", _refuse)  # oneDNN's, not F.linear
        out, out_view = layer(x), layer(view)
    assert out.shape == ref.shape == (rows, 1, 200) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_view, ref_view, rtol=1e-5, atol=1e-5)


def test_the_plain_layer_where_onednn_does_not_apply(monkeypatch):
    layer = OneDnnLinear(nn.Linear(16, 8))
    monkeypatch.setattr(onednn_linear, "_onednn_linear", _refuse)
    layer(torch.randn(4, 16)).sum().backward()  # autograd on: the plain, differentiable layer
    assert layer.weight.grad is not None
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert layer(torch.randn(4, 16)).dtype == torch.bfloat16  # autocast's product
        layer.double()(torch.randn(4, 16, dtype=torch.float64))  # not float32
        layer.float()
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        assert layer(torch.randn(4, 16)).shape == (4, 8)  # traced by torch.compile: its choice


def test_parameters_and_ties_are_kept(monkeypatch):
    monkeypatch.setattr(onednn_linear, "onednn_linear_works", lambda: True)
    shared = nn.Linear(8, 8)
    model = nn.ModuleDict({"a": nn.Sequential(shared), "b": nn.Sequential(shared)})
    model["head"] = nn.Linear(8, 30)
    embedding = nn.Embedding(30, 8)
    model["head"].weight = embedding.weight  # tied, as a language-model head is
    model["wide"] = nn.Linear(8, 8).double()  # not float32: left alone
    keys = set(model.state_dict())
    assert use_onednn_products(model) == 2
    assert isinstance(model["a"][0], OneDnnLinear) and model["a"][0] is model["b"][0]
    assert model["a"][0].weight is shared.weight and model["a"][0].bias is shared.bias
    assert model["head"].weight is embedding.weight
    assert type(model["wide"]) is nn.Linear
    assert set(model.state_dict()) == keys


def test_nothing_is_swapped_without_the_product(monkeypatch):
    monkeypatch.setattr(onednn_linear, "onednn_linear_works", lambda: False)
    model = nn.Sequential(nn.Linear(8, 8))
    assert use_onednn_products(model) == 0 and type(model[0]) is nn.Linear


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@needs_onednn
@pytest.mark.parametrize(("dtype", "expected"), [("float32", True), ("bfloat16", False)])
def test_a_float32_tagger_on_the_cpu_runs_every_linear_layer_with_it(
    tag2text_dir, one_torch_thread, dtype, expected
):
    tagger = load_tagger(tag2text_dir, device="cpu", dtype=dtype, exif_transpose=False)
    for part in ("visual_encoder", "tagging_head", "tag_encoder", "text_decoder"):
        layers = _linear_layers(getattr(tagger.model, part))
        assert layers, part
        assert all(isinstance(m, OneDnnLinear) == expected for m in layers), part


@needs_onednn
def test_an_int8_tagger_keeps_its_float32_layers_on_onednn(ram_family_dir, one_torch_thread):
    tagger = load_tagger(ram_family_dir, device="cpu", dtype="int8", exif_transpose=False)
    onednn = [name for name, m in tagger.model.named_modules() if isinstance(m, OneDnnLinear)]
    assert onednn == ["fc"]  # the layer int8 leaves in float32: RAM's class scorer


@needs_onednn
def test_the_grounded_and_dense_engines_run_their_float32_layers_with_it(
    grounded_dirs, one_torch_thread
):
    grounded = load_grounded_segmenter(*grounded_dirs, device="cpu")
    dense = load_dense_segmenter(CLIP, device="cpu")
    for model in (grounded.detector, grounded.segmenter, dense.clip):
        layers = _linear_layers(model)
        assert layers and all(isinstance(m, OneDnnLinear) for m in layers)


@needs_onednn
def test_a_bfloat16_dense_engine_swaps_only_the_layers_left_in_float32(one_torch_thread):
    dense = load_dense_segmenter(CLIP, device="cpu", dtype="bfloat16")
    vision, text = _linear_layers(dense.clip.vision_model), _linear_layers(dense.clip.text_model)
    assert vision and not any(isinstance(m, OneDnnLinear) for m in vision)  # cast once
    assert text and all(isinstance(m, OneDnnLinear) for m in text)  # embeds outside autocast
