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
- :mod:`.distributed`: the Ray backend's worker side (stages over plain rows, one model per
  actor; no FiftyOne) and :class:`RayBackend` (where and how a run goes on Ray).
- :mod:`.fo`: FiftyOne adapters by capability (``fo/tagging``, ``fo/grounded``, ``fo/dense``)
  over one shared base (``fo/base``): each has its ``fom.Model`` adapter, label conversion and
  runner (``label_samples``, ``segment_samples``, ``segment_dense``: resumable, batch by batch,
  returning one :class:`RunReport`; ``backend="ray"`` runs the models on Ray, driven from
  ``fo/base/ray_run.py``), and its evaluation.
- :mod:`.zoo`: the FiftyOne remote model zoo: entries, hooks and the generation of
  ``zoo/manifest.json`` (the repository's ``zoo/`` folder is the source FiftyOne downloads; its
  ``__init__.py`` delegates to :mod:`.zoo`).
- :mod:`.cli` and the App operators in ``plugin/`` call only the names exported here.
"""

import importlib

# Public names, imported on first use: the engines run without FiftyOne installed (GPU workers,
# Ray actors), and `import tag2text_zoo` stays cheap. name -> module under this package.
_EXPORTS = {
    "defaults": "defaults",
    "DenseResult": "engines.dense",
    "DenseSegmenter": "engines.dense",
    "DenseSettings": "engines.dense",
    "MAIN_SETTINGS": "engines.dense",
    "VOC_SETTINGS": "engines.dense",
    "GroundedResult": "engines.grounded",
    "GroundedSegmenter": "engines.grounded",
    "ImageLoadError": "engines.preprocess",
    "SearchEmbedder": "engines.search",
    "TrainConfig": "engines.tagalign_train",
    "TrainResult": "engines.tagalign_train",
    "TagResult": "engines.tagger",
    "Tagger": "engines.tagger",
    "parse_tags": "engines.tag_strings",
    "VocabularyEncoder": "engines.vocabulary",
    "RayBackend": "distributed.backend",
    "dataset_for": "fo.base.datasets",
    "MaskTargets": "fo.base.mask_targets",
    "record_mask_targets": "fo.base.mask_targets",
    "Failure": "fo.base.report",
    "RunReport": "fo.base.report",
    "RunStopped": "fo.base.report",
    "tags_fields": "fo.base.tags",
    "DenseEvaluation": "fo.dense.evaluation",
    "evaluate_dense_segmentations": "fo.dense.evaluation",
    "DenseModel": "fo.dense.model",
    "DenseModelConfig": "fo.dense.model",
    "heatmap_field": "fo.dense.model",
    "segment_dense": "fo.dense.run",
    "train_tagalign": "fo.dense.training",
    "to_detections": "fo.grounded.labels",
    "to_segmentation": "fo.grounded.labels",
    "GroundedModel": "fo.grounded.model",
    "GroundedModelConfig": "fo.grounded.model",
    "segment_samples": "fo.grounded.run",
    "TagEvaluationConfig": "fo.tagging.evaluation",
    "TagEvaluationResults": "fo.tagging.evaluation",
    "evaluate_tags": "fo.tagging.evaluation",
    "tags_field": "fo.tagging.labels",
    "to_classifications": "fo.tagging.labels",
    "TaggerModel": "fo.tagging.model",
    "TaggerModelConfig": "fo.tagging.model",
    "label_samples": "fo.tagging.run",
    "ModelSpec": "loaders",
    "load_dense_segmenter": "loaders",
    "load_grounded_segmenter": "loaders",
    "load_tagger": "loaders",
    "resolve_model_dir": "loaders",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    value = module if name == "defaults" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
