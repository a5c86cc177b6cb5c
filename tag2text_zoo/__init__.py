"""Tag2Text-family tagging and captioning, grounded segmentation and TagAlign dense segmentation,
for FiftyOne and plain Python.

Map of the package (imports point down this list only):

- :mod:`.models`: pure PyTorch modules (Tag2Text, RAM, RAM++, the TagAlign projector) and
  official-checkpoint loading; no FiftyOne, files or network.
- :mod:`.engines`: images in, dataclasses out (:class:`Tagger`, :class:`GroundedSegmenter`,
  :class:`DenseSegmenter`), batched; ``engines/device.py`` is the one device/dtype/autocast rule.
- :mod:`.assets`: the model catalogue, downloads, model directories, hub availability.
- :mod:`.defaults`: the one source of default model names, thresholds and output fields.
- :mod:`.loaders`: ``load_tagger``, ``load_grounded_segmenter``, ``load_dense_segmenter`` and
  :class:`ModelSpec` (a model to load, as data).
- :mod:`.fo`: FiftyOne adapters by capability (``fo/tagging``, ``fo/grounded``, ``fo/dense``)
  over one shared base (``fo/base``): each has its ``fom.Model`` adapter, label conversion and
  runner (``label_samples``, ``segment_samples``, ``segment_dense``: resumable, batch by batch,
  returning one :class:`RunReport`), and its evaluation.
- :mod:`.zoo`: the FiftyOne remote model zoo (the hooks below and ``manifest.json``).
- :mod:`.cli` and the App operators in ``plugin/`` call only the names exported here.
"""

from . import defaults
from .engines.dense import MAIN_SETTINGS, VOC_SETTINGS, DenseResult, DenseSegmenter, DenseSettings
from .engines.grounded import GroundedResult, GroundedSegmenter
from .engines.preprocess import ImageLoadError
from .engines.tagalign_train import TrainConfig, TrainResult
from .engines.tagger import Tagger, TagResult
from .engines.vocabulary import VocabularyEncoder
from .fo.base.datasets import dataset_for
from .fo.base.mask_targets import MaskTargets, record_mask_targets
from .fo.base.report import Failure, RunReport
from .fo.base.tags import parse_tags
from .fo.dense.evaluation import DenseEvaluation, evaluate_dense_segmentations
from .fo.dense.model import DenseModel, DenseModelConfig, heatmap_field
from .fo.dense.run import segment_dense
from .fo.dense.training import train_tagalign
from .fo.grounded.labels import to_detections, to_segmentation
from .fo.grounded.model import GroundedModel, GroundedModelConfig
from .fo.grounded.run import segment_samples
from .fo.tagging.evaluation import TagEvaluation, evaluate_tags
from .fo.tagging.labels import tags_field, to_classifications
from .fo.tagging.model import TaggerModel, TaggerModelConfig
from .fo.tagging.run import label_samples
from .loaders import (
    ModelSpec,
    load_dense_segmenter,
    load_grounded_segmenter,
    load_tagger,
    resolve_model_dir,
)

__all__ = [
    "MAIN_SETTINGS",
    "VOC_SETTINGS",
    "DenseEvaluation",
    "DenseModel",
    "DenseModelConfig",
    "DenseResult",
    "DenseSegmenter",
    "DenseSettings",
    "Failure",
    "GroundedModel",
    "GroundedModelConfig",
    "GroundedResult",
    "GroundedSegmenter",
    "ImageLoadError",
    "MaskTargets",
    "ModelSpec",
    "RunReport",
    "TagEvaluation",
    "TagResult",
    "Tagger",
    "TaggerModel",
    "TaggerModelConfig",
    "TrainConfig",
    "TrainResult",
    "VocabularyEncoder",
    "dataset_for",
    "defaults",
    "evaluate_dense_segmentations",
    "evaluate_tags",
    "heatmap_field",
    "label_samples",
    "parse_tags",
    "load_dense_segmenter",
    "load_grounded_segmenter",
    "load_tagger",
    "record_mask_targets",
    "resolve_model_dir",
    "segment_dense",
    "segment_samples",
    "tags_field",
    "to_classifications",
    "to_detections",
    "to_segmentation",
    "train_tagalign",
]


# FiftyOne remote model zoo hooks (manifest.json sits next to this file); logic in zoo/.
def download_model(model_name: str, model_path: str) -> None:
    """Downloads a zoo model (``"tag2text-swin-14m-torch"``) for FiftyOne."""
    from . import zoo

    zoo.download_model(model_name, model_path)


def load_model(model_name: str, model_path: str, **kwargs):
    """Loads a downloaded zoo model as a FiftyOne model (``fo.zoo.load_zoo_model``)."""
    from . import zoo

    return zoo.load_model(model_name, model_path, **kwargs)


def resolve_input(model_name: str, ctx):
    """The "apply zoo model" operator's options form for ``model_name``."""
    from . import zoo

    return zoo.resolve_input(model_name, ctx)


def parse_parameters(model_name: str, ctx, params: dict) -> None:
    """Turns that form's values into :func:`load_model` keyword arguments."""
    from . import zoo

    zoo.parse_parameters(model_name, ctx, params)
