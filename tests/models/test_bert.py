"""The BERT blocks' attention: label queries shared by every image are projected once."""

from __future__ import annotations

import torch

from tag2text_zoo.models.bert import MultiHeadAttention


def test_expanded_queries_are_projected_once_with_the_same_attention():
    torch.manual_seed(0)
    attention = MultiHeadAttention(32, 4, kv_width=24).double()
    labels, image = torch.randn(1, 11, 32).double(), torch.randn(3, 7, 24).double()
    kv = attention.keys_values(image)
    rows_projected = []
    attention.query.register_forward_hook(lambda m, i, o: rows_projected.append(i[0].shape[0]))
    with torch.inference_mode():
        shared = attention(labels.expand(3, -1, -1), kv)  # one row per image, all the same
        materialised = attention(labels.repeat(3, 1, 1), kv)
    assert rows_projected == [1, 3]
    torch.testing.assert_close(shared, materialised, rtol=1e-12, atol=1e-12)
    for i in range(3):  # and each image's rows are its own attention
        alone = attention(labels, (kv[0][i : i + 1], kv[1][i : i + 1]))
        torch.testing.assert_close(shared[i : i + 1], alone, rtol=1e-12, atol=1e-12)
