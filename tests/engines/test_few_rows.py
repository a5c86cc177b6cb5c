"""float32 caption decoders on the CPU take few-row products as W @ x^T (engines/few_rows.py):
the same outputs as nn.Linear, the same parameters (ties kept), and only where it pays.
The golden captions through this path are checked by the parity tests in test_tagger.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tag2text_zoo import load_tagger
from tag2text_zoo.engines.few_rows import FEW_ROWS, FewRowsLinear, use_few_rows_products


def _refuse_f_linear(*args, **kwargs):
    raise AssertionError("F.linear was called")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 3, FEW_ROWS, FEW_ROWS + 1, 48])
def test_same_outputs_as_the_linear_layer(bias, rows):
    torch.manual_seed(0)
    linear = nn.Linear(96, 200, bias=bias)
    layer = FewRowsLinear(linear)
    x = torch.randn(rows, 1, 96)  # a decoding step: one token per beam row
    with torch.inference_mode():
        ref, out = linear(x), layer(x)
    assert out.shape == ref.shape == (rows, 1, 200) and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    view = torch.randn(96, rows).t()  # not contiguous
    torch.testing.assert_close(layer(view), linear(view), rtol=1e-5, atol=1e-6)


def test_only_few_rows_leave_the_usual_product(monkeypatch):
    layer = FewRowsLinear(nn.Linear(16, 8))
    monkeypatch.setattr(torch.nn.functional, "linear", _refuse_f_linear)
    layer(torch.randn(FEW_ROWS, 16))  # W @ x^T: F.linear is not called
    with pytest.raises(AssertionError, match="F.linear"):
        layer(torch.randn(FEW_ROWS + 1, 16))


def test_parameters_and_ties_are_kept():
    shared = nn.Linear(8, 8)
    model = nn.ModuleDict({"a": nn.Sequential(shared), "b": nn.Sequential(shared)})
    model["head"] = nn.Linear(8, 30)
    embedding = nn.Embedding(30, 8)
    model["head"].weight = embedding.weight  # tied, as a language-model head is
    keys = set(model.state_dict())
    assert use_few_rows_products(model) == 2
    assert isinstance(model["a"][0], FewRowsLinear) and model["a"][0] is model["b"][0]
    assert model["a"][0].weight is shared.weight and model["a"][0].bias is shared.bias
    assert model["head"].weight is embedding.weight
    assert set(model.state_dict()) == keys


@pytest.mark.parametrize(("dtype", "expected"), [("float32", True), ("bfloat16", False)])
def test_a_float32_tagger_on_the_cpu_decodes_with_it(
    tag2text_dir, one_torch_thread, dtype, expected
):
    tagger = load_tagger(tag2text_dir, device="cpu", dtype=dtype, exif_transpose=False)
    decoder_layers = [m for m in tagger.model.text_decoder.modules() if isinstance(m, nn.Linear)]
    assert decoder_layers
    assert all(isinstance(m, FewRowsLinear) == expected for m in decoder_layers)
    encoder_layers = [m for m in tagger.model.visual_encoder.modules() if isinstance(m, nn.Linear)]
    assert not any(isinstance(m, FewRowsLinear) for m in encoder_layers)  # never few rows
