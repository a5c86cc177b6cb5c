"""Tag2Text-family image tagging and captioning, for FiftyOne and plain Python."""

from .api import load_tagger, resolve_model_dir
from .engines.preprocess import ImageLoadError
from .engines.tagger import Tagger, TagResult

__all__ = ["ImageLoadError", "TagResult", "Tagger", "load_tagger", "resolve_model_dir"]


# FiftyOne remote model zoo hooks (manifest.json sits next to this file); logic in fo/zoo.py.
def download_model(model_name: str, model_path: str) -> None:
    """Downloads a zoo model (``"tag2text-swin-14m-torch"``) for FiftyOne."""
    from .fo import zoo

    zoo.download_model(model_name, model_path)


def load_model(model_name: str, model_path: str, **kwargs):
    """Loads a downloaded zoo model as a FiftyOne model (``fo.zoo.load_zoo_model``)."""
    from .fo import zoo

    return zoo.load_model(model_name, model_path, **kwargs)


def resolve_input(model_name: str, ctx):
    """The "apply zoo model" operator's options form for ``model_name``."""
    from .fo import zoo

    return zoo.resolve_input(model_name, ctx)


def parse_parameters(model_name: str, ctx, params: dict) -> None:
    """Turns that form's values into :func:`load_model` keyword arguments."""
    from .fo import zoo

    zoo.parse_parameters(model_name, ctx, params)
