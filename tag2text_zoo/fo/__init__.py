"""FiftyOne adapters: label converters, the ``Model`` wrapper, resumable runs, tag evaluation."""

from .labels import check_prompt_field, prompt_tags, to_classifications
from .model import TaggerGetItem, TaggerModel, TaggerModelConfig

__all__ = [
    "TaggerGetItem",
    "TaggerModel",
    "TaggerModelConfig",
    "check_prompt_field",
    "prompt_tags",
    "to_classifications",
]
