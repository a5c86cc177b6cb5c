"""What the operators' forms share: the form being resolved (with the user's last choices on this
dataset), choice lists with readable labels, run options, checks, and the plan of the run.

Model and field pickers are in ``model_pickers.py`` and ``fields.py``; running and reporting in
``report.py``. No model code lives here: runs go through :mod:`tag2text_zoo`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import RayBackend

# Above this many target samples the form recommends delegated execution.
LARGE_VIEW = 500

# The plugin secret (by default an environment variable of the App or delegated-operation
# process) naming the Ray cluster that runs the models.
RAY_ADDRESS = "TAG2TEXT_ZOO_RAY_ADDRESS"

# The execution store (one per dataset) that keeps each operator's last choices.
STORE = "tag2text_zoo"
# Parameters that are not choices of the form.
_NOT_CHOICES = {"view_target", "view", "delegate", "panel_state"}


class Form:
    """One resolution of an operator's form.

    Attributes:
        ctx: the operator's execution context.
        inputs: the form's properties, as they are added.
        last: the user's choices of the last run of this operator on this dataset.
        downloads: what the run will download first, ``"<model> (<size>)"``.
    """

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.inputs = types.Object()
        self.last = last_choices(ctx)
        self.downloads: list[str] = []

    def default(self, key: str, fallback: Any = None) -> Any:
        """The default of an input: the user's last choice, else ``fallback``."""
        return self.last.get(key, fallback)

    def value(self, key: str, default: Any = None) -> Any:
        """What the form holds now: the user's entry, else ``default``."""
        value = self.ctx.params.get(key)
        return default if value is None else value

    def choice(
        self, key: str, options: dict[str, str], default: str, label: str, **kwargs: Any
    ) -> str:
        """Radio buttons of ``value -> readable label``; returns the chosen value."""
        view = types.RadioGroup()
        for value, text in options.items():
            view.add_choice(value, label=text)
        default = self.default(key, default)
        default = default if default in options else next(iter(options))
        self.inputs.enum(key, list(options), default=default, label=label, view=view, **kwargs)
        return self.value(key, default)


# -- the user's last choices, per dataset -------------------------------------------------------
def last_choices(ctx: Any) -> dict[str, Any]:
    """The choices of the last run of ``ctx``'s operator on its dataset ({} if none)."""
    try:
        value = ctx.store(STORE).get(ctx.operator_uri)
    except AttributeError:  # a FiftyOne without execution stores: nothing is remembered
        return {}
    return value if isinstance(value, dict) else {}


def remember_choices(ctx: Any) -> None:
    """Keeps this run's choices as the defaults of the operator's next form on this dataset."""
    choices = {
        key: value
        for key, value in ctx.params.items()
        if key not in _NOT_CHOICES and isinstance(value, (str, int, float, bool))
    }
    try:
        ctx.store(STORE).set(ctx.operator_uri, choices)
    except AttributeError:
        pass


# -- checks ---------------------------------------------------------------------------------------
def fail(prop: types.Property, message: str) -> None:
    """Marks a form property invalid; the App shows ``message`` and refuses to run."""
    prop.invalid = True
    prop.error_message = message


def labels_field_ok(ctx: Any, prop: types.Property, field: str, kind: type) -> None:
    """Refuses an output field that exists with another label type."""
    existing = ctx.target_view().get_field(field)
    doc_type = getattr(existing, "document_type", None)
    if existing is not None and doc_type is not kind:
        have = doc_type.__name__ if doc_type else type(existing).__name__
        fail(prop, f"{field!r} already holds {have}; choose another name")


def output_field(
    form: Form,
    key: str,
    default: str,
    description: str,
    writes: Callable[[str], dict[str, type]],
    label: str = "Output field",
) -> str:
    """A text input naming the run's output; ``writes(name)`` gives the fields the run writes and
    their label types, and a name whose fields hold other types is refused."""
    default = form.default(key, default)
    prop = form.inputs.str(
        key, default=default, required=True, label=label, description=description
    )
    name = form.value(key, default)
    for field, kind in writes(name).items():
        if not prop.invalid:
            labels_field_ok(form.ctx, prop, field, kind)
    return name


# -- run options and the plan ---------------------------------------------------------------------
def run_inputs(form: Form, batch_size: int) -> None:
    """Skipping of done samples, batch size and device."""
    import torch

    inputs = form.inputs
    skip = form.default("skip_existing", True)
    inputs.bool("skip_existing", default=skip, label="Skip samples that already have it")
    inputs.int(
        "batch_size", default=form.default("batch_size", batch_size), min=1, label="Batch size"
    )
    devices = ["auto", "cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    device = form.default("device", "auto")
    inputs.enum(
        "device",
        devices,
        default=device if device in devices else "auto",
        label="Device",
        view=types.Dropdown(),
    )


def device(ctx: Any) -> str | None:
    value = ctx.params.get("device") or "auto"
    return None if value == "auto" else value


def run_options(ctx: Any, batch_size: int) -> dict[str, Any]:
    """The runners' options from the form: batch size, skipping, image-loading workers, and
    the Ray cluster the plugin is configured with."""
    return {
        "batch_size": ctx.params.get("batch_size") or batch_size,
        "skip_existing": ctx.params.get("skip_existing", True),
        "num_workers": None if ctx.delegated else 0,  # no worker processes inside the App
        "backend": backend(ctx),
    }


def backend(ctx: Any) -> str | RayBackend:
    """Ray at the plugin's :data:`RAY_ADDRESS` secret (e.g. ``auto``, ``ray://head:10001``),
    when set; else runs go in this process."""
    address = ctx.secret(RAY_ADDRESS)
    return RayBackend(address) if address else "local"


def mask_inputs(form: Form) -> None:
    """Where masks go: in the database, or PNG files under a folder."""
    to_disk = form.default("masks_to_disk", False)
    form.inputs.bool(
        "masks_to_disk",
        default=to_disk,
        label="Write masks to disk",
        description="PNG files referenced by mask_path instead of masks in the database",
    )
    if form.value("masks_to_disk", to_disk):
        folder = Path(fo.config.default_dataset_dir) / "masks" / form.ctx.dataset.name
        default = form.default("mask_dir", str(folder))
        form.inputs.str("mask_dir", default=default, required=True, label="Mask folder")


def mask_dir(ctx: Any) -> str | None:
    """The folder for PNG masks chosen by :func:`mask_inputs`, or None (masks in the database)."""
    return ctx.params.get("mask_dir") if ctx.params.get("masks_to_disk") else None


def plan(form: Form, done_field: str | None) -> None:
    """Says what the run will do: samples to process and to skip (those with ``done_field``),
    models to download first; and recommends delegating a large run."""
    view = form.ctx.target_view()
    total = len(view)
    skipping = done_field and form.value("skip_existing", form.default("skip_existing", True))
    have = len(view.exists(done_field)) if skipping and view.get_field(done_field) else 0
    text = f"Will process {total - have} of {total} samples"
    if have:
        text += f" and skip {have} that already have {done_field}"
    if form.downloads:
        text += f"; first downloads {', '.join(form.downloads)}"
    form.inputs.view("plan", types.Notice(label=text + "."))
    if total > LARGE_VIEW:
        message = (
            f"{total} samples: schedule this as a delegated operation and run it with "
            "`fiftyone delegated launch`"
        )
        form.inputs.view("large", types.Warning(label=message))


def execution_options(ctx: Any) -> foo.ExecutionOptions:
    """Immediate or delegated; delegated is preselected for large views."""
    return foo.ExecutionOptions(
        allow_immediate_execution=True,
        allow_delegated_execution=True,
        default_choice_to_delegated=len(ctx.target_view()) > LARGE_VIEW,
    )


def gigabytes(size_bytes: int) -> str:
    return f"{size_bytes / 1e9:.1f} GB"
