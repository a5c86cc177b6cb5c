"""Model pickers: what is installed, what a run would download and how big it is, and what to do
when a model is missing and there is no network."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

import fiftyone.operators.types as types

from tag2text_zoo import defaults
from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.assets.download import LOCAL_MODELS_ENV, default_models_dir, installed_model_dir
from tag2text_zoo.assets.hub import (
    DOWNLOAD_BYTES,
    hub_model_problem,
    installed_hub_models,
    online,
)
from tag2text_zoo.assets.official import (
    OFFICIAL_CHECKPOINTS,
    installed_official_checkpoint,
    weights_problem,
)

from .common import Form, fail, gigabytes

# config.json model_type of each hub model family the loaders accept
DETECTOR_TYPES = ("grounding-dino",)
SEGMENTER_TYPES = ("sam", "sam_hq", "sam2")
CLIP_TYPES = ("clip",)
TEXT_ENCODER_TYPES = ("clip", "clip_text_model")  # a whole CLIP, or its text half


def tagger_input(form: Form, names: Sequence[str] = tuple(CATALOGUE), key: str = "model") -> str:
    """A dropdown of catalogue taggers, each labelled installed or with its download size.

    Preselects the last choice, else the default model if it can be had, else an installed one.
    Offline, a model that is not installed is refused with what to do about it.
    """
    installed = [n for n in names if installed_model_dir(n) is not None]
    choices = types.Dropdown()
    for name in names:
        size = gigabytes(CATALOGUE[name].size_bytes)
        status = "installed" if name in installed else f"{size} download"
        choices.add_choice(
            name, label=f"{name} ({status})", description=CATALOGUE[name].description
        )
    first = defaults.TAGGER if defaults.TAGGER in names else names[0]
    usable = first in installed or online() or not installed
    default = form.default(key, first if usable else installed[0])
    prop = form.inputs.enum(key, list(names), default=default, label="Tagging model", view=choices)
    name = form.value(key, default)
    if name in installed:
        return name
    if name not in names:
        fail(prop, f"{name!r} is not one of {', '.join(names)}")
        return name
    size = gigabytes(CATALOGUE[name].size_bytes)
    if online():
        form.downloads.append(f"{name} ({size})")
        return name
    installed_now = ", ".join(installed) or "none"
    fail(prop, f"{name} is not on this machine and there is no network to download it ({size})")
    _how_to(
        form,
        key,
        f"Put the model directory of {name} in {_local_hint(name)} or in "
        f"{default_models_dir() / name}, e.g. copied from a machine where "
        f"`python -m tag2text_zoo tag IMAGE --model {name}` downloaded it. "
        f"Installed tagging models: {installed_now}.",
    )
    return name


def hub_model_input(
    form: Form,
    key: str,
    label: str,
    suggested: Sequence[str],
    model_types: Collection[str],
    local_example: str,
    description: str = "hub id or local folder (transformers format)",
    official: Sequence[str] = (),
) -> str:
    """A hub id or local transformers folder, with the installed models of ``model_types`` and
    the ``suggested`` hub ids as choices (each labelled with its status or download size).

    With ``official`` (names of the official checkpoint files' catalogue), those names are
    choices too and a path to an official checkpoint file is accepted.

    Preselects the last choice, else the first suggestion if it can be had, else an installed
    model. Refuses a value that cannot be loaded now, saying what to do instead.
    """
    installed = installed_hub_models(model_types)
    installed += [n for n in official if installed_official_checkpoint(n) is not None]
    options = [*installed, *(s for s in (*suggested, *official) if s not in installed)]
    view = types.AutocompleteView(
        choices=[types.Choice(v, label=_label(v, installed)) for v in options]
    )
    usable = hub_model_problem(suggested[0]) is None or not installed
    default = form.default(key, suggested[0] if usable else installed[0])
    prop = form.inputs.str(
        key,
        default=default,
        required=True,
        label=label,
        view=view,
        description=description,
    )
    value = form.value(key, default)
    problem = weights_problem(value) if official else hub_model_problem(value)
    if problem:
        size = _download_bytes(value)
        fail(prop, problem + (f" ({gigabytes(size)})" if size else ""))
        _how_to(
            form,
            key,
            "Choose an installed model ("
            + (", ".join(_label(v, installed) for v in installed) or "none found")
            + f") or give a local folder in transformers format, such as "
            f"{_local_hint(local_example)}"
            + (", or an official checkpoint file." if official else "."),
        )
    elif value not in installed and not Path(value).expanduser().exists():
        size = _download_bytes(value)
        form.downloads.append(f"{value} ({gigabytes(size) if size else 'size unknown'})")
    return value


def _how_to(form: Form, key: str, text: str) -> None:
    """What to do about a missing model, shown under the form's choices."""
    form.inputs.view(f"{key}_how_to", types.Warning(label="Without a network", description=text))


def _download_bytes(value: str) -> int | None:
    """The download size of a hub model or official checkpoint file, where known."""
    official = OFFICIAL_CHECKPOINTS.get(value)
    return official.size_bytes if official else DOWNLOAD_BYTES.get(value)


def _label(value: str, installed: list[str]) -> str:
    if value not in installed:
        size = _download_bytes(value)
        return f"{value} ({gigabytes(size)} download)" if size else value
    if value in OFFICIAL_CHECKPOINTS:
        return f"{value} (official checkpoint, downloaded)"
    if Path(value).is_dir():
        return f"{Path(value).parent.name}/{Path(value).name} (local folder)"
    return f"{value} (in the Hugging Face cache)"


def _local_hint(name: str) -> str:
    """Where an offline model goes: ``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>``."""
    root = os.environ.get(LOCAL_MODELS_ENV)
    where = f" (= {Path(root) / name})" if root else ", with that variable set for the App"
    return f"${LOCAL_MODELS_ENV}/{name}{where}"
