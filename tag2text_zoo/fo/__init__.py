"""FiftyOne adapters: label converters, the ``Model`` wrapper, resumable runs, tag evaluation."""

from .evaluate import TagEvaluation, evaluate_tags
from .labels import check_prompt_field, prompt_tags, to_classifications
from .model import TaggerGetItem, TaggerModel, TaggerModelConfig
from .runs import LabelRun, dataset_for, label_samples

__all__ = [
    "LabelRun",
    "TagEvaluation",
    "TaggerGetItem",
    "TaggerModel",
    "TaggerModelConfig",
    "check_prompt_field",
    "dataset_for",
    "evaluate_tags",
    "label_samples",
    "prompt_tags",
    "to_classifications",
]
