"""The transformers blocks of the grounded engine's models whose linear layer is followed
directly by its activation (GELU or ReLU), for :func:`.onednn_linear.use_onednn_products` to
fuse: Grounding DINO's Swin, BERT and encoder/decoder layers, SAM's and SAM-HQ's image encoder.
Looked up by name: a class that a transformers version lacks is left out (SAM 2's feed-forward
applies one activation module after several layers, and is not listed)."""

from __future__ import annotations

import functools
import importlib

from torch import nn

from .onednn_linear import ActivationAfterLinear

_BLOCKS = {  # module: {class: (linear layer, activation after it)}
    "swin.modeling_swin": {
        "SwinMLP": ("fc1", "activation_fn"),  # transformers 5
        "SwinIntermediate": ("dense", "intermediate_act_fn"),  # transformers 4
    },
    "bert.modeling_bert": {"BertIntermediate": ("dense", "intermediate_act_fn")},
    "grounding_dino.modeling_grounding_dino": {
        "GroundingDinoTextEnhancerLayer": ("fc1", "activation"),
        "GroundingDinoDeformableLayer": ("fc1", "activation_fn"),
        "GroundingDinoDecoderLayer": ("fc1", "activation_fn"),
    },
    "sam.modeling_sam": {"SamMLPBlock": ("lin1", "act")},
    "sam_hq.modeling_sam_hq": {"SamHQMLPBlock": ("lin1", "act")},
}


@functools.cache
def transformers_feed_forwards() -> ActivationAfterLinear:
    """The table, built on first use (it imports the modeling modules it names)."""
    found: dict[type[nn.Module], tuple[str, str]] = {}
    for module_name, classes in _BLOCKS.items():
        try:
            module = importlib.import_module(f"transformers.models.{module_name}")
        except ImportError:
            continue
        for class_name, names in classes.items():
            block = getattr(module, class_name, None)
            if block is not None:
                found[block] = names
    return found
