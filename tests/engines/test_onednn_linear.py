"""Engines on the CPU take oneDNN's linear products (engines/onednn_linear.py), float32 and
bfloat16, with the feed-forward GELUs fused: the same outputs as nn.Linear (and GELU), the same
parameters (ties kept), and only where they apply. The golden tags and captions through this
path are checked by the parity tests in test_tagger.py, bfloat16's by test_fast_paths.py, the
grounded and dense engines' outputs by theirs."""

from __future__ import annotations

import pytest
import torch
from data_paths import FIXTURES
from timm.layers import Mlp
from torch import nn
from transformers import GroundingDinoForObjectDetection, SamModel
from transformers.activations import ACT2FN, GELUActivation

from tag2text_zoo import load_dense_segmenter, load_grounded_segmenter, load_tagger
from tag2text_zoo.engines import onednn_linear
from tag2text_zoo.engines.onednn_linear import OneDnnLinear, use_onednn_products
from tag2text_zoo.engines.transformers_feed_forwards import transformers_feed_forwards
from tag2text_zoo.models.bert import BertLayer, Intermediate

CLIP = FIXTURES / "tagalign-tiny" / "clip"

needs_onednn = pytest.mark.skipif(
    not onednn_linear.onednn_linear_works(), reason="this PyTorch has no oneDNN linear product"
)
needs_onednn_bfloat16 = pytest.mark.skipif(
    not onednn_linear.onednn_linear_works(torch.bfloat16), reason="no bfloat16 oneDNN product"
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


@needs_onednn
def test_the_fused_gelu_is_the_layer_then_gelu(monkeypatch):
    torch.manual_seed(0)
    linear = nn.Linear(96, 200)
    fused = OneDnnLinear(OneDnnLinear(linear), activation="gelu")  # as fusing wraps a swapped one
    x = torch.randn(2, 7, 96) * 3
    with torch.inference_mode():
        expected = nn.functional.gelu(linear(x))
        monkeypatch.setattr(torch.nn.functional, "linear", _refuse)
        monkeypatch.setattr(torch.nn.functional, "gelu", _refuse)
        out = fused(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert fused.weight is linear.weight and fused.bias is linear.bias
    with pytest.raises(ValueError, match="activation"):
        OneDnnLinear(linear, activation="tanh")


@needs_onednn
def test_the_fused_relu_is_the_layer_then_relu(monkeypatch):
    torch.manual_seed(0)
    linear = nn.Linear(32, 64)
    fused = OneDnnLinear(linear, activation="relu")
    x = torch.randn(3, 32)
    with torch.inference_mode():
        expected = nn.functional.relu(linear(x))
        monkeypatch.setattr(torch.nn.functional, "linear", _refuse)
        monkeypatch.setattr(torch.nn.functional, "relu", _refuse)
        out = fused(x)
    assert (expected == 0).any() and (expected > 0).any()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "act, post_op",
    [
        (nn.GELU(), "gelu"),
        (nn.GELU(approximate="tanh"), None),
        (nn.ReLU(), "relu"),
        (nn.SiLU(), None),
        (GELUActivation(), "gelu"),  # transformers' exact GELU (F.gelu)
        (GELUActivation(use_gelu_python=True), None),  # its Python one: left as it is
        (ACT2FN["quick_gelu"], None),
    ],
)
def test_only_activations_onednn_computes_exactly_are_fused(act, post_op):
    assert onednn_linear._post_op(act) == post_op


@needs_onednn_bfloat16
@pytest.mark.parametrize("activation", ["none", "gelu"])
def test_bfloat16_weights_under_autocast_take_onednn(activation, monkeypatch):
    torch.manual_seed(0)
    linear = nn.Linear(96, 200).to(torch.bfloat16)  # weights cast once, as engines do
    layer = OneDnnLinear(linear, activation=activation)
    x = torch.randn(5, 96)  # float32: autocast casts it
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = linear(x)
        if activation == "gelu":
            expected = nn.functional.gelu(expected)
        monkeypatch.setattr(torch.nn.functional, "linear", _refuse)
        out = layer(x)
    assert out.dtype == torch.bfloat16
    # oneDNN adds the bias and applies the GELU before rounding to bfloat16; addmm after.
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)


def test_the_plain_layer_where_onednn_does_not_apply(monkeypatch):
    layer = OneDnnLinear(nn.Linear(16, 8))
    fused = OneDnnLinear(layer, activation="gelu")
    monkeypatch.setattr(onednn_linear, "_onednn_linear", _refuse)
    x = torch.randn(4, 16)
    layer(x).sum().backward()  # autograd on: the plain, differentiable layer
    assert layer.weight.grad is not None
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert layer(x).dtype == torch.bfloat16  # float32 weights: autocast's product
        layer.double()(torch.randn(4, 16, dtype=torch.float64))  # neither float32 nor bfloat16
        layer.float()
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        assert layer(x).shape == (4, 8)  # traced by torch.compile: its choice
        plain = nn.functional.gelu(nn.functional.linear(x, layer.weight, layer.bias))
        torch.testing.assert_close(fused(x), plain)  # the plain layer, then its GELU


def test_parameters_and_ties_are_kept(monkeypatch):
    monkeypatch.setattr(onednn_linear, "onednn_linear_works", lambda dtype: True)
    shared = nn.Linear(8, 8)
    model = nn.ModuleDict({"a": nn.Sequential(shared), "b": nn.Sequential(shared)})
    model["head"] = nn.Linear(8, 30)
    embedding = nn.Embedding(30, 8)
    model["head"].weight = embedding.weight  # tied, as a language-model head is
    model["wide"] = nn.Linear(8, 8).double()  # not float32 or bfloat16: left alone
    keys = set(model.state_dict())
    assert use_onednn_products(model) == 2
    assert isinstance(model["a"][0], OneDnnLinear) and model["a"][0] is model["b"][0]
    assert model["a"][0].weight is shared.weight and model["a"][0].bias is shared.bias
    assert model["head"].weight is embedding.weight
    assert type(model["wide"]) is nn.Linear
    assert set(model.state_dict()) == keys


def test_nothing_is_swapped_without_the_product(monkeypatch):
    monkeypatch.setattr(onednn_linear, "onednn_linear_works", lambda dtype: dtype != torch.bfloat16)
    model = nn.Sequential(nn.Linear(8, 8).to(torch.bfloat16), Intermediate(8, 32))
    assert use_onednn_products(model) == 1 and type(model[0]) is nn.Linear
    monkeypatch.setattr(onednn_linear, "onednn_linear_works", lambda dtype: False)
    model = Intermediate(8, 32)
    assert use_onednn_products(model) == 0 and type(model.dense) is nn.Linear
    assert type(model.act) is nn.GELU  # nothing to fuse it into


@needs_onednn
def test_feed_forward_gelus_are_fused_with_the_same_outputs(monkeypatch):
    torch.manual_seed(0)
    mlp = Mlp(64, 256)  # timm's, as in Swin blocks
    layer = BertLayer(64, 4, 256, 1e-12, cross_width=48, self_attention=False)
    other = nn.Sequential(mlp.fc1)  # the layer tied elsewhere, without a GELU after it
    x, image = torch.randn(2, 9, 64), torch.randn(2, 5, 48)
    model = nn.ModuleList([mlp, layer, other])
    keys = set(model.state_dict())
    with torch.inference_mode():
        kv = layer.crossattention.self.keys_values(image)
        expected = (mlp(x), layer(x, cross_kv=kv), other(x))
        use_onednn_products(model)
        monkeypatch.setattr(torch.nn.functional, "gelu", _refuse)  # inside oneDNN's product now
        out = (mlp(x), layer(x, cross_kv=kv), other(x))
    for block, name in ((mlp, "fc1"), (layer.intermediate, "dense")):
        assert getattr(block, name).activation == "gelu" and type(block.act) is nn.Identity
    assert other[0].activation == "none" and other[0].weight is mlp.fc1.weight
    assert set(model.state_dict()) == keys
    for got, want in zip(out, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@needs_onednn
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_tagger_on_the_cpu_runs_every_linear_layer_with_it(tag2text_dir, one_torch_thread, dtype):
    if not onednn_linear.onednn_linear_works(getattr(torch, dtype)):
        pytest.skip(f"no {dtype} oneDNN product")
    tagger = load_tagger(tag2text_dir, device="cpu", dtype=dtype, exif_transpose=False)
    for part in ("visual_encoder", "tagging_head", "tag_encoder", "text_decoder"):
        layers = _linear_layers(getattr(tagger.model, part))
        assert layers, part
        assert all(isinstance(m, OneDnnLinear) for m in layers), part
    blocks = [m for m in tagger.model.modules() if isinstance(m, (Mlp, Intermediate))]
    assert blocks and all(type(block.act) is nn.Identity for block in blocks)


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


def _fused_blocks(model: nn.Module) -> dict[str, set[str]]:
    """The feed-forward blocks of the table in ``model``: their fused layers' activations."""
    fused: dict[str, set[str]] = {}
    for block in model.modules():
        names = transformers_feed_forwards().get(type(block))
        if names is not None:
            linear, act = (getattr(block, n) for n in names)
            kind = linear.activation if type(act) is nn.Identity else "not fused"
            fused.setdefault(type(block).__name__, set()).add(kind)
    return fused


@needs_onednn
def test_the_grounded_models_fuse_their_activations_with_the_same_outputs(
    grounded_dirs, one_torch_thread
):
    """Every feed-forward block of Grounding DINO (Swin, BERT, text enhancer, deformable
    encoder and decoder layers) and of SAM runs its GELU or ReLU inside oneDNN's product, and
    both models give what transformers' own layers give."""
    engine = load_grounded_segmenter(*grounded_dirs, device="cpu")
    detector = GroundingDinoForObjectDetection.from_pretrained(grounded_dirs[0]).eval()
    sam = SamModel.from_pretrained(grounded_dirs[1]).eval()
    fused = _fused_blocks(engine.detector)
    # Swin's feed-forward is SwinMLP in transformers 5, SwinIntermediate in 4
    swin = fused.pop("SwinMLP", None) or fused.pop("SwinIntermediate", None)
    assert swin == {"gelu"}
    assert fused == {
        "BertIntermediate": {"gelu"},
        "GroundingDinoTextEnhancerLayer": {"relu"},
        "GroundingDinoDeformableLayer": {"relu"},
        "GroundingDinoDecoderLayer": {"relu"},
    }
    # SAM's image encoder (GELU) and its mask decoder's two-way transformer (ReLU)
    assert _fused_blocks(engine.segmenter) == {"SamMLPBlock": {"gelu", "relu"}}
    image = torch.randn(1, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    inputs = {"pixel_values": image, "input_ids": torch.tensor([[101, 4937, 1012, 102]])}
    pixels = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        got, expected = engine.detector(**inputs), detector(**inputs)
        for name in ("encoder_last_hidden_state_vision", "logits", "pred_boxes"):
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-5)
        boxes = torch.tensor([[[4.0, 8.0, 40.0, 50.0]]])
        got, expected = (m(pixel_values=pixels, input_boxes=boxes) for m in (engine.segmenter, sam))
        for name in ("pred_masks", "iou_scores"):
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-5)


@needs_onednn_bfloat16
def test_a_bfloat16_grounded_engine_casts_its_layers_once(grounded_dirs, one_torch_thread):
    engine = load_grounded_segmenter(*grounded_dirs, device="cpu", dtype="bfloat16")
    for model in (engine.detector, engine.segmenter):
        layers = _linear_layers(model)
        assert layers and all(isinstance(m, OneDnnLinear) for m in layers)
        assert all(m.weight.dtype == torch.bfloat16 for m in layers)  # both run under autocast
        blocks = _fused_blocks(model)
        assert blocks and all("not fused" not in kinds for kinds in blocks.values())


@needs_onednn_bfloat16
def test_a_bfloat16_dense_engine_swaps_its_layers_in_their_dtypes(one_torch_thread):
    dense = load_dense_segmenter(CLIP, device="cpu", dtype="bfloat16")
    vision, text = _linear_layers(dense.clip.vision_model), _linear_layers(dense.clip.text_model)
    assert vision and all(isinstance(m, OneDnnLinear) for m in vision)
    assert all(m.weight.dtype == torch.bfloat16 for m in vision)  # cast once, for autocast
    assert text and all(isinstance(m, OneDnnLinear) for m in text)
    assert all(m.weight.dtype == torch.float32 for m in text)  # embeds outside autocast too
