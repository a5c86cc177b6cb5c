"""Form pieces, checks and progress shared by the operators; no model code lives here."""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.assets.download import default_models_dir, installed_model_dir
from tag2text_zoo.assets.official import OFFICIAL_CHECKPOINTS, installed_official_checkpoint

# Above this many target samples the form recommends delegated execution.
LARGE_VIEW = 500
_OFFICIAL = {n: s.model_type for n, s in OFFICIAL_CHECKPOINTS.items()}
DETECTORS = ["IDEA-Research/grounding-dino-tiny", "IDEA-Research/grounding-dino-base"]
DETECTORS += [n for n, family in _OFFICIAL.items() if family == "grounding-dino"]
SEGMENTERS = ["facebook/sam-vit-base", "facebook/sam-vit-large", "facebook/sam-vit-huge"]
SEGMENTERS += [n for n, family in _OFFICIAL.items() if family != "grounding-dino"]


@functools.lru_cache(maxsize=1)
def _reachable(_minute: int) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=2).close()
        return True
    except OSError:
        return False


def online() -> bool:
    """Whether model files could be downloaded now (checked at most once a minute)."""
    return _reachable(int(time.monotonic() // 60))


def _weights_problem(value: str) -> str | None:
    """Why a model (hub id, folder, official checkpoint file or catalogue name) cannot be loaded
    now, or None."""
    path = Path(value).expanduser()
    if path.is_file():
        return None  # an official checkpoint file, recognised and converted when loaded
    if path.is_dir():
        return None if (path / "config.json").is_file() else f"{value} has no config.json"
    if value in OFFICIAL_CHECKPOINTS:
        if installed_official_checkpoint(value) or online():
            return None
        folder = default_models_dir() / value
        return f"{value} is not downloaded and there is no network: put its files in {folder}"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(value, "config.json"), str)
    except ValueError:
        return f"{value!r} is neither a folder, a file, a catalogue name nor a Hugging Face hub id"
    if cached or online():
        return None
    return f"{value} is not in the Hugging Face cache and there is no network to download it"


def fail(prop: types.Property, message: str) -> None:
    """Marks a form property invalid; the App shows ``message`` and refuses to run."""
    prop.invalid = True
    prop.error_message = message


def run_inputs(inputs: types.Object, batch_size: int) -> None:
    """Skipping of done samples, batch size and device."""
    import torch

    inputs.bool("skip_existing", default=True, label="Skip samples that already have it")
    inputs.int("batch_size", default=batch_size, min=1, label="Batch size")
    devices = ["auto", "cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    inputs.enum("device", devices, default="auto", label="Device", view=types.Dropdown())


def device(ctx: Any) -> str | None:
    value = ctx.params.get("device") or "auto"
    return None if value == "auto" else value


def tagger_inputs(ctx: Any, inputs: types.Object) -> None:
    """Model choice (with its download status) and tag threshold."""
    names = list(CATALOGUE)
    prop = inputs.enum(
        "model", names, default=names[0], label="Tagging model", view=types.Dropdown()
    )
    name = ctx.params.get("model") or names[0]
    if name in CATALOGUE and installed_model_dir(name) is None:
        size = CATALOGUE[name].size_bytes / 1e9
        if not online():
            fail(prop, f"{name} is not downloaded and there is no network: run "
                 f"`python -m tag2text_zoo tag IMAGE --model {name}` where there is, or put its "
                 f"files in {default_models_dir() / name}")  # fmt: skip
        else:
            inputs.view("download", types.Notice(label=f"{name} ({size:.1f} GB) is downloaded "
                                                 "on first use"))  # fmt: skip
    inputs.float("threshold", min=0.0, max=1.0, label="Tag threshold",
                 description="keep tags scoring at least this; empty: the model's own")  # fmt: skip


def grounding_inputs(ctx: Any, inputs: types.Object) -> None:
    """Detector and SAM choice (hub ids or local folders) and detection thresholds."""
    for key, choices, label in (("detector", DETECTORS, "Grounding DINO"),
                                ("segmenter", SEGMENTERS, "SAM")):  # fmt: skip
        view = types.AutocompleteView(choices=[types.Choice(c, label=c) for c in choices])
        prop = inputs.str(key, default=choices[0], required=True, label=label, view=view,
                          description="hub id, transformers folder, official checkpoint file "
                          "or catalogue name")  # fmt: skip
        problem = _weights_problem(ctx.params.get(key) or choices[0])
        if problem:
            fail(prop, problem)
    inputs.float("box_threshold", default=0.35, min=0.0, max=1.0, label="Box threshold")
    inputs.float("text_threshold", default=0.25, min=0.0, max=1.0, label="Text threshold")
    inputs.float("nms_iou", default=0.5, min=0.0, max=1.0, label="NMS IoU",
                 description="boxes overlapping more than this are merged")  # fmt: skip


def field_choice(
    ctx: Any, inputs: types.Object, key: str, label: str, kinds: tuple[type, ...], **kwargs: Any
) -> types.Property:
    """An enum of the target view's fields holding one of ``kinds``; refuses anything else."""
    schema = ctx.target_view().get_field_schema(flat=True)
    names = [n for n, f in schema.items() if _holds(f, kinds)]
    prop = inputs.enum(key, names, label=label, view=types.Dropdown(), **kwargs)
    value = ctx.params.get(key)
    wanted = " or ".join(k.__name__ for k in kinds)
    if value and value not in schema:
        fail(prop, f"no field {value!r} in this dataset")
    elif value and value not in names:
        fail(prop, f"field {value!r} is not a {wanted} field")
    elif not names and kwargs.get("required"):
        fail(prop, f"this dataset has no {wanted} field")
    return prop


def _holds(field: fo.Field, kinds: tuple[type, ...]) -> bool:
    if isinstance(field, fo.EmbeddedDocumentField):
        return any(isinstance(k, type) and issubclass(field.document_type, k) for k in kinds)
    if isinstance(field, fo.ListField):
        return list in kinds and isinstance(field.field, fo.StringField)
    return str in kinds and isinstance(field, fo.StringField)


def labels_field_ok(ctx: Any, prop: types.Property, field: str, kind: type) -> None:
    """Refuses an output field that exists with another label type."""
    existing = ctx.target_view().get_field(field)
    doc_type = getattr(existing, "document_type", None)
    if existing is not None and doc_type is not kind:
        have = doc_type.__name__ if doc_type else type(existing).__name__
        fail(prop, f"{field!r} already holds {have}; choose another name")


def size_notice(ctx: Any, inputs: types.Object) -> None:
    n = len(ctx.target_view())
    if n > LARGE_VIEW:
        inputs.view("large", types.Warning(label=f"{n} samples: schedule this as a delegated "
                                           "operation and run it with `fiftyone delegated "
                                           "launch`"))  # fmt: skip


def execution_options(ctx: Any) -> foo.ExecutionOptions:
    """Immediate or delegated; delegated is preselected for large views."""
    return foo.ExecutionOptions(
        allow_immediate_execution=True,
        allow_delegated_execution=True,
        default_choice_to_delegated=len(ctx.target_view()) > LARGE_VIEW,
    )


def in_chunks(
    ctx: Any, view: fo.DatasetView, size: int, work: Callable[[fo.DatasetView], Any], what: str
) -> Iterator[Any]:
    """Runs ``work`` on consecutive chunks of ``view``, reporting progress after each.

    In the App the progress messages are yielded; a delegated run records them itself.
    """
    ids = view.values("id")
    for start in range(0, len(ids), size):
        work(view.select(ids[start : start + size]))
        done = min(start + size, len(ids))
        label = f"{what}: {done} / {len(ids)} samples"
        if ctx.delegated:
            ctx.set_progress(progress=done / len(ids), label=label)
        else:
            yield ctx.trigger("set_progress", {"progress": done / len(ids), "label": label})
