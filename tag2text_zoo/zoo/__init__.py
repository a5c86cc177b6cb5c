"""The FiftyOne remote-zoo side of the package: manifest, download, load and options form.

FiftyOne copies the repository's ``zoo/`` folder (the one holding ``manifest.json``) to
``<model_zoo_dir>/tag2text-zoo/`` and calls the hooks of its ``__init__.py``, which imports them
from here: zoo-loaded models are this installed package's classes.
Each kind of entry is a module with the same five names: ``ENTRIES`` (name -> what it is),
``manifest_fields``, ``download``, ``load`` and ``form``:

- :mod:`.taggers`: ``<catalogue name>-torch`` (Tag2Text, RAM, RAM++),
- :mod:`.grounded`: ``grounded-sam-*-torch`` (Grounding DINO + SAM pairs),
- :mod:`.dense`: ``tagalign-clip-vit-b16-torch`` (TagAlign over CLIP).

:mod:`.install` puts a model in the zoo folder once; :mod:`.manifest` generates
``manifest.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import defaults
from ..fo.base.tags import parse_tags
from . import dense, grounded, taggers
from .manifest import SUFFIX, zoo_name

KINDS: tuple[ModuleType, ...] = (taggers, grounded, dense)


def _entry(name: str) -> tuple[ModuleType, str]:
    """The kind module and entry name of a zoo name (``"tag2text-swin-14m-torch"``)."""
    base = name.removesuffix(SUFFIX)
    for kind in KINDS:
        if base in kind.ENTRIES:
            return kind, base
    known = ", ".join(zoo_name(n) for kind in KINDS for n in kind.ENTRIES)
    raise ValueError(f"unknown model {name!r}; known: {known}")


def download_model(name: str, model_path: str | os.PathLike) -> None:
    """Makes the zoo folder hold model ``name``; ``model_path`` is its ``base_filename``."""
    kind, base = _entry(name)
    kind.download(base, Path(model_path))


def load_model(name: str, model_path: str | os.PathLike, **kwargs: Any) -> Any:
    """The downloaded model as a FiftyOne model (``TaggerModel``, ``GroundedModel`` or
    ``DenseModel``); ``kwargs`` are the kind's ``load`` options."""
    kind, base = _entry(name)
    return kind.load(base, Path(model_path), **kwargs)


def resolve_input(name: str, ctx: Any) -> Any:
    """The options form FiftyOne's "apply zoo model" operator shows for our models."""
    import fiftyone.operators.types as types

    kind, base = _entry(name)
    inputs = types.Object()
    inputs.enum("device", ["auto", "cuda", "cpu"], default="auto", label="Device")
    dtypes = defaults.TAGGER_DTYPES if kind is taggers else defaults.DTYPES
    inputs.enum("dtype", list(dtypes), default="float32", label="Precision")
    kind.form(base, inputs)
    return types.Property(inputs)


def parse_parameters(name: str, ctx: Any, params: dict[str, Any]) -> None:
    """Turns the form's values into :func:`load_model` keyword arguments (in place)."""
    for key in [k for k, v in params.items() if v in (None, "")]:
        del params[key]
    if params.get("device") == "auto":
        del params["device"]
    if isinstance(params.get("classes"), str):  # the form's "a, b" (blank entries dropped)
        params["classes"] = parse_tags(params["classes"])
        if not params["classes"]:
            del params["classes"]
