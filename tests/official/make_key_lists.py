"""Writes tests/data/reference/official/*.json: every state_dict key -> shape of the official
models, built with the official packages (full size on the meta device, and the tiny layouts of
tiny_official.py). Run once in the environment of .ci/official_checkpoints.sh:

    python tests/official/make_key_lists.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from data_paths import REFERENCE  # noqa: E402
from tiny_official import (  # noqa: E402
    grounding_dino_args,
    save_tiny_bert,
    tiny_grounding_dino,
    tiny_sam,
    tiny_sam2,
)

from tag2text_zoo.assets.official import OFFICIAL_CHECKPOINTS  # noqa: E402

OUT = REFERENCE / "official"
VOCAB = REFERENCE / "bert-base-uncased-vocab.txt"
GROUNDING_DINO = {
    "groundingdino-swint-ogc": "GroundingDINO_SwinT_OGC.py",
    "groundingdino-swinb-cogcoor": "GroundingDINO_SwinB_cfg.py",
}


def write(name: str, model: torch.nn.Module) -> None:
    """Writes the key list; for a released model, also how much larger the published file is
    than the model's weights (archive entries take some tens of KB; more means other tensors)."""
    state = model.state_dict()
    lines = [f"{json.dumps(k)}: {json.dumps(list(v.shape))}" for k, v in state.items()]
    (OUT / f"{name}.json").write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    report = f"{name}: {len(lines)} keys"
    if name in OFFICIAL_CHECKPOINTS:
        weights = _bytes(state)
        published = OFFICIAL_CHECKPOINTS[name].files[0].size
        report += f", published file - weights: {published - weights:,} bytes"
    print(report)


def _bytes(state: dict[str, torch.Tensor]) -> int:
    """Bytes of the weights as torch.save stores them: a shared tensor once."""
    if any(v.is_meta for v in state.values()):  # meta tensors share nothing here
        return sum(v.numel() * v.element_size() for v in state.values())
    storages = {
        v.untyped_storage().data_ptr(): v.untyped_storage().nbytes() for v in state.values()
    }
    return sum(storages.values())


def full_grounding_dino(config: str, bert_folder: Path) -> torch.nn.Module:
    """The released layout; BERT is bert-base (its weights are in the released file)."""
    import groundingdino.util.get_tokenlizer as text
    from groundingdino.models import build_model
    from transformers import BertConfig, BertModel

    original = text.get_pretrained_language_model
    text.get_pretrained_language_model = lambda _: BertModel(BertConfig())
    try:
        return build_model(grounding_dino_args(bert_folder, config))
    finally:
        text.get_pretrained_language_model = original


def main() -> None:
    from sam2.build_sam import build_sam2
    from segment_anything import sam_model_registry
    from segment_anything_hq import sam_model_registry as hq_registry

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        bert = save_tiny_bert(Path(tmp) / "bert", VOCAB)
        write("tiny-sam", tiny_sam())
        write("tiny-sam-hq", tiny_sam(hq=True))
        write("tiny-sam2", tiny_sam2())
        write("tiny-grounding-dino", tiny_grounding_dino(bert))
        with torch.device("meta"):
            for size in ("b", "l", "h"):
                write(f"sam-vit-{size}", sam_model_registry[f"vit_{size}"]())
            write("sam-hq-vit-h", hq_registry["vit_h"]())
        # Hiera and GroundingDINO's Swin call .item() while they are built: these are on the CPU.
        for name, config in GROUNDING_DINO.items():
            write(name, full_grounding_dino(config, bert))
        for size, short in (("tiny", "t"), ("small", "s"), ("base-plus", "b+"), ("large", "l")):
            config = f"configs/sam2.1/sam2.1_hiera_{short}.yaml"
            write(f"sam2.1-hiera-{size}", build_sam2(config, None, device="cpu"))


if __name__ == "__main__":
    main()
