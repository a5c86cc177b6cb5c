"""The one catalogue of downloadable models: pinned files (URL, size, sha256), configs, licenses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_RAM_COMMIT = "7cb804a8609e9f4b1a50b7f31436d2df40bb9481"
_RAM_DATA = f"https://raw.githubusercontent.com/xinyu1205/recognize-anything/{_RAM_COMMIT}/ram/data"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model directory and where it comes from.

    Files on the Hugging Face hub (``hf_repo`` set) are fetched with ``huggingface_hub``; others
    from ``url`` with a resumable HTTP download. Either way the sha256 is checked.
    """

    filename: str
    url: str
    size: int
    sha256: str
    hf_repo: str | None = None
    hf_filename: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    model_type: str
    files: tuple[RemoteFile, ...]
    config: dict[str, Any]
    license: str
    source: str
    tags: tuple[str, ...] = field(default=("tagging",))

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files)


BERT_VOCAB = RemoteFile(
    filename="vocab.txt",
    url="https://huggingface.co/google-bert/bert-base-uncased/resolve/main/vocab.txt",
    size=231_508,
    sha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    hf_repo="google-bert/bert-base-uncased",
    hf_filename="vocab.txt",
)

_TAG2TEXT_CONFIG: dict[str, Any] = {
    "model_type": "tag2text",
    "image_size": 384,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "vision": {
        "type": "swin", "embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32],
        "window_size": 12, "patch_size": 4, "in_chans": 3, "mlp_ratio": 4.0, "qkv_bias": True,
        "ape": False, "patch_norm": True, "layer_norm_eps": 1e-5, "num_features": 1024,
        "num_output_tokens": 145,
    },
    "text": {
        "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "vocab_size": 30524, "max_position_embeddings": 512,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0,
        "tag_encoder_cross_attention_width": 1024, "text_decoder_cross_attention_width": 768,
    },
    "tagging_head": {
        "num_hidden_layers": 2, "hidden_size": 768, "num_attention_heads": 4,
        "intermediate_size": 3072, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
        "cross_attention_width": 1024, "self_attention": False,
        "shares_weights_with_tag_encoder_layers": [0, 1],
    },
    "num_tags": 3429,
    "tag_list_file": "tag_list.txt",
    "thresholds": {"default": 0.68, "per_class": {"2701": 0.7, "2828": 0.7, "1167": 0.7}},
    "delete_tag_index": [127, 2961, 3351, 3265, 3338, 3355, 3359],
    "prompt": "a picture of ",
    "prompt_ids": [30522, 1037, 3861, 1997],
    "tag_max_tokens": 40,
    "generation": {"num_beams": 3, "max_length": 50, "min_length": 10},
    "checkpoint": {"file": "tag2text_swin_14m.pth"},
}  # fmt: skip

_SWIN_L: dict[str, Any] = {
    "type": "swin", "embed_dim": 192, "depths": [2, 2, 18, 2], "num_heads": [6, 12, 24, 48],
    "window_size": 12, "patch_size": 4, "in_chans": 3, "mlp_ratio": 4.0, "qkv_bias": True,
    "ape": False, "patch_norm": True, "layer_norm_eps": 1e-5, "num_features": 1536,
    "num_output_tokens": 145,
}  # fmt: skip

_RAM_HEAD: dict[str, Any] = {
    "num_hidden_layers": 2, "hidden_size": 768, "num_attention_heads": 4,
    "intermediate_size": 3072, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
    "cross_attention_width": 512, "self_attention": False,
}  # fmt: skip


def _ram_config(plus: bool) -> dict[str, Any]:
    """RAM / RAM++ (Swin-L, 384): what differs is the description count and the text modules."""
    config: dict[str, Any] = {
        "model_type": "ram_plus" if plus else "ram",
        "image_size": 384,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "vision": _SWIN_L,
        "image_proj": {"in_features": 1536, "out_features": 512},
        "label_embed": {
            "shape": [4585 * 51 if plus else 4585, 512],
            "descriptions_per_class": 51 if plus else None,
        },
        "wordvec_proj": {"in_features": 512, "out_features": 768},
        "tagging_head": _RAM_HEAD,
        "fc": {"in_features": 768, "out_features": 1, "shared_across_classes": True},
        "num_tags": 4585,
        "tag_list_file": "tag_list.txt",
        "tag_list_chinese_file": "tag_list_chinese.txt",
        "thresholds": {"file": "tag_list_threshold.txt"},
        "delete_tag_index": [],
        "checkpoint": {"file": "ram_plus_swin_large_14m.pth" if plus else "ram_swin_large_14m.pth"},
    }
    if plus:
        config["reweight"] = {"param": "reweight_scale"}
    else:
        config["tagging_head"] = {**_RAM_HEAD, "shares_weights_with_tag_encoder_layers": [0, 1]}
        config["text"] = {
            "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "intermediate_size": 3072, "vocab_size": 30524, "max_position_embeddings": 512,
            "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0,
            "tag_encoder_cross_attention_width": 512, "text_decoder_cross_attention_width": 768,
        }  # fmt: skip
    return config


_RAM_LISTS = (
    RemoteFile(
        filename="tag_list.txt",
        url=f"{_RAM_DATA}/ram_tag_list.txt",
        size=41_904,
        sha256="5d96d2f7225527480ad773aaac76b6e5c08a18adf6eae9ca7d2ab923d5e7bd8b",
    ),
    RemoteFile(
        filename="tag_list_chinese.txt",
        url=f"{_RAM_DATA}/ram_tag_list_chinese.txt",
        size=44_181,
        sha256="c912657a0f30be7b2f5df6ccffa17e1d84561d0bea508528e38b6d0d711bcfbe",
    ),
    RemoteFile(
        filename="tag_list_threshold.txt",
        url=f"{_RAM_DATA}/ram_tag_list_threshold.txt",
        size=22_016,
        sha256="b6f81d0de1bc7f9c251af512c413eae976c77dbfbadf700d4e3d90510f4c6447",
    ),
)

CATALOGUE: dict[str, ModelSpec] = {
    "tag2text-swin-14m": ModelSpec(
        name="tag2text-swin-14m",
        description="Tag2Text (Swin-B, 14M images): 3,429 tags and tag-guided captions",
        model_type="tag2text",
        files=(
            RemoteFile(
                filename="tag2text_swin_14m.pth",
                url="https://huggingface.co/xinyu1205/recognize_anything_model/resolve/main/"
                "tag2text_swin_14m.pth",
                size=4_478_705_095,
                sha256="4ce96f0ce98f940a6680d567f66a38ccc9ca8c4e638e5f5c5c2e881a0e3502ac",
                hf_repo="xinyu1205/recognize_anything_model",
                hf_filename="tag2text_swin_14m.pth",
            ),
            RemoteFile(
                filename="tag_list.txt",
                url=f"{_RAM_DATA}/tag2text_ori_tag_list.txt",
                size=29_062,
                sha256="7d05c7cb88ed46a2aee1434776964f6bdbda0c0f4233c8633e109084382d3a45",
            ),
            BERT_VOCAB,
        ),
        config=_TAG2TEXT_CONFIG,
        license="Apache-2.0",
        source="https://github.com/xinyu1205/recognize-anything",
        tags=("tagging", "captioning"),
    ),
    "ram-swin-large-14m": ModelSpec(
        name="ram-swin-large-14m",
        description="RAM (Swin-L, 14M images): 4,585 tags in English and Chinese",
        model_type="ram",
        files=(
            RemoteFile(
                filename="ram_swin_large_14m.pth",
                url="https://huggingface.co/xinyu1205/recognize_anything_model/resolve/main/"
                "ram_swin_large_14m.pth",
                size=5_625_634_877,
                sha256="15c729c793af28b9d107c69f85836a1356d76ea830d4714699fb62e55fcc08ed",
                hf_repo="xinyu1205/recognize_anything_model",
                hf_filename="ram_swin_large_14m.pth",
            ),
            *_RAM_LISTS,
        ),
        config=_ram_config(plus=False),
        license="Apache-2.0",
        source="https://github.com/xinyu1205/recognize-anything",
        tags=("tagging", "open-set"),
    ),
    "ram-plus-swin-large-14m": ModelSpec(
        name="ram-plus-swin-large-14m",
        description="RAM++ (Swin-L, 14M images): 4,585 tags in English and Chinese, open-set",
        model_type="ram_plus",
        files=(
            RemoteFile(
                filename="ram_plus_swin_large_14m.pth",
                url="https://huggingface.co/xinyu1205/recognize-anything-plus-model/resolve/main/"
                "ram_plus_swin_large_14m.pth",
                size=3_010_210_801,
                sha256="497c178836ba66698ca226c7895317e6e800034be986452dbd2593298d50e87d",
                hf_repo="xinyu1205/recognize-anything-plus-model",
                hf_filename="ram_plus_swin_large_14m.pth",
            ),
            *_RAM_LISTS,
        ),
        config=_ram_config(plus=True),
        license="Apache-2.0",
        source="https://github.com/xinyu1205/recognize-anything",
        tags=("tagging", "open-set"),
    ),
}
