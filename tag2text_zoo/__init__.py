"""Tag2Text-family image tagging and captioning, for FiftyOne and plain Python."""

from .api import load_tagger, resolve_model_dir
from .engines.preprocess import ImageLoadError
from .engines.tagger import Tagger, TagResult

__all__ = ["ImageLoadError", "TagResult", "Tagger", "load_tagger", "resolve_model_dir"]
