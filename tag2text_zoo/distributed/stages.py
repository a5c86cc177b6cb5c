"""The worker side of the Ray backend: one model per actor, plain rows in, plain results out.

A batch is a dict of columns (Ray Data's numpy format): ``id``, ``filepath``, ``prompt`` (the
sample's tags, or None) and ``error`` ("" while the sample is usable). Each stage loads its
model once from a :class:`~tag2text_zoo.loaders.ModelSpec`, adds its output column to the
usable rows and passes failed rows through untouched: an unreadable image fails its row with the
reason (never retried), and a batch that raises fails each of its rows with the error, as the
local run loop does. Results are plain dicts of lists and arrays; :func:`tag_result`,
:func:`grounded_result` and :func:`dense_result` turn them back into the engines' dataclasses.

Nothing here imports FiftyOne or touches a database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..engines.dense import DenseResult
from ..engines.grounded import GroundedResult
from ..engines.grounding_decode import Detections
from ..engines.preprocess import ImageLoadError, load_image
from ..engines.tagger import TagResult
from ..loaders import ModelSpec

Row = dict[str, Any]
Batch = dict[str, np.ndarray]

# The columns of every row, and those the stages add (read by the next stage or the driver).
BASE = ("id", "filepath", "prompt", "error")
TAGS, DETECTIONS, RESULT = "tags", "detections", "result"


@dataclass(frozen=True)
class StageSpec:
    """One stage of a pipeline: its class, constructor arguments and name (for actor counts).

    Attributes:
        name: ``"tag"``, ``"detect"``, ``"mask"`` or ``"dense"``.
        stage: the :class:`Stage` subclass the actors run.
        kwargs: its constructor's keyword arguments (plain data and a ModelSpec).
        model: the model the stage loads (its ``device`` decides GPU or CPU actors).
    """

    name: str
    stage: type[Stage]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> ModelSpec:
        return self.kwargs["spec"]


def to_rows(batch: Batch) -> list[Row]:
    """A batch of columns as one dict per row, tags as lists of strings (a column of no tags
    at all may reach here as NaNs)."""
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    for row in rows:
        prompt, error = row.get("prompt"), row.get("error")
        is_list = isinstance(prompt, (list, tuple, np.ndarray))
        row["prompt"] = [str(t) for t in prompt] if is_list else None
        row["error"] = error if isinstance(error, str) else ""
    return rows


def to_columns(rows: list[Row], output: str) -> Batch:
    """The rows' base columns and ``output`` (``{}`` where a row failed), as columns; object
    arrays, so dicts and lists stay as they are."""
    columns: Batch = {}
    for key in (*BASE, output):
        column = np.empty(len(rows), dtype=object)
        column[:] = [row.get(key, {} if key == output else None) for row in rows]
        columns[key] = column
    columns["error"] = np.array([row["error"] for row in rows], dtype=str)
    return columns


class Stage:
    """A Ray Data callable class: loads one model, labels the usable rows of each batch.

    Subclasses name their :attr:`output` column and implement :meth:`process`.
    """

    output: str

    def __init__(self, spec: ModelSpec) -> None:
        self.engine = spec.load()

    def __call__(self, batch: Batch) -> Batch:
        rows = to_rows(batch)
        ready = [row for row in rows if not row["error"]]
        if ready:
            try:
                with torch.inference_mode():  # the engines' stage methods leave it to callers
                    self.process(ready)
            except Exception as err:  # noqa: BLE001 - reported per sample, as run_model does
                for row in ready:
                    row["error"] = row["error"] or f"{type(err).__name__}: {err}"
        return to_columns(rows, self.output)

    def process(self, rows: list[Row]) -> None:
        """Adds the stage's output to each row, or sets its ``error``."""
        raise NotImplementedError

    def load(self, rows: list[Row], exif_transpose: bool) -> tuple[list[Row], list[Image.Image]]:
        """The rows whose image loads, and the images; the others get the loading error."""
        good, images = [], []
        for row in rows:
            try:
                images.append(load_image(row["filepath"], exif_transpose=exif_transpose))
                good.append(row)
            except ImageLoadError as err:
                row["error"] = str(err)
        return good, images


class TagStage(Stage):
    """Tags (and captions) each image with a :class:`~tag2text_zoo.Tagger`.

    Args:
        spec: a ``"tagger"`` model spec.
        caption: also caption (Tag2Text); a row's ``prompt`` steers its caption.
        steered: tags will steer captions (refused for models that do not caption).
    """

    output = TAGS

    def __init__(self, spec: ModelSpec, caption: bool = True, steered: bool = False) -> None:
        super().__init__(spec)
        self.caption = caption
        if caption and steered and not self.engine.can_caption:
            model_type = self.engine.config.model_type
            raise ValueError(f"specified tags steer captions, but {model_type} does not caption")

    def process(self, rows: list[Row]) -> None:
        good, images = self.load(rows, self.engine.exif_transpose)
        if not good:
            return
        pixels = torch.stack([self.engine.load_pixels(image) for image in images])
        prompts = [row["prompt"] for row in good]
        caption = self.caption and self.engine.can_caption
        steer = prompts if caption and any(p is not None for p in prompts) else None
        for row, result in zip(good, self.engine.predict_tensors(pixels, steer, caption)):
            row[TAGS] = dataclasses.asdict(result)


class DetectStage(Stage):
    """Grounding DINO boxes of each image's tags: the row's prompt, fixed classes, or the
    ``tags`` of a :class:`TagStage` before it.

    Args:
        spec: a ``"grounded"`` model spec (the detector of its pair is used).
        classes: one class list for every image.
        exif_transpose: apply EXIF orientation.
    """

    output = DETECTIONS

    def __init__(
        self, spec: ModelSpec, classes: Sequence[str] | None = None, exif_transpose: bool = True
    ) -> None:
        super().__init__(spec)
        self.classes, self.exif_transpose = classes, exif_transpose

    def process(self, rows: list[Row]) -> None:
        good, images = self.load(rows, self.exif_transpose)
        prompts = [self.engine.prompts(*self._tags(row)) for row in good]
        for row, found in zip(good, self.engine.detect(images, prompts)):
            row[DETECTIONS] = {
                "boxes": found.boxes.float().cpu().numpy(),
                "scores": found.scores.float().cpu().numpy(),
                "tags": list(found.tags),
            }

    def _tags(self, row: Row) -> tuple[list[str], list[int] | None]:
        if row.get(TAGS):  # a tagging stage ran before
            return row[TAGS]["tags"], row[TAGS]["tag_indices"]
        if row["prompt"] is not None:  # the sample's tags field
            return row["prompt"], None
        return list(self.classes or []), None


class MaskStage(Stage):
    """SAM masks of the boxes that a :class:`DetectStage` found.

    Args:
        spec: a ``"grounded"`` model spec (the SAM model of its pair is used).
        exif_transpose: apply EXIF orientation.
    """

    output = RESULT

    def __init__(self, spec: ModelSpec, exif_transpose: bool = True) -> None:
        super().__init__(spec)
        self.exif_transpose = exif_transpose

    def process(self, rows: list[Row]) -> None:
        good, images = self.load(rows, self.exif_transpose)
        device = self.engine.device
        found = [
            Detections(
                torch.from_numpy(row[DETECTIONS]["boxes"]).to(device),
                torch.from_numpy(row[DETECTIONS]["scores"]).to(device),
                row[DETECTIONS]["tags"],
            )
            for row in good
        ]
        for row, result in zip(good, self.engine.segment_boxes(images, found)):
            masks = result.masks
            row[RESULT] = {
                **dataclasses.asdict(dataclasses.replace(result, masks=np.packbits(masks))),
                "mask_shape": masks.shape,
            }


class DenseStage(Stage):
    """TagAlign segmentation of each image into its prompt's classes, or fixed ones.

    Args:
        spec: a ``"dense"`` model spec.
        classes: the classes of rows without a prompt.
        heatmaps: also return the per-class scores (for heatmaps).
        exif_transpose: apply EXIF orientation.
    """

    output = RESULT

    def __init__(
        self,
        spec: ModelSpec,
        classes: Sequence[str] | None = None,
        heatmaps: bool = False,
        exif_transpose: bool = True,
    ) -> None:
        super().__init__(spec)
        self.classes, self.heatmaps, self.exif_transpose = classes, heatmaps, exif_transpose

    def process(self, rows: list[Row]) -> None:
        good, images = self.load(rows, self.exif_transpose)
        names = [row["prompt"] if row["prompt"] is not None else list(self.classes) for row in good]
        for row, result in zip(good, self.engine.predict(images, names, exif_transpose=False)):
            labels = result.labels.astype(np.uint8 if len(result.classes) < 256 else np.int32)
            scores = result.scores if self.heatmaps else np.zeros((0, 0, 0), np.float32)
            row[RESULT] = dataclasses.asdict(
                dataclasses.replace(result, labels=labels, scores=scores)
            )


def tag_result(result: dict[str, Any]) -> TagResult:
    """A :class:`TagStage` result as the engine's dataclass."""
    return TagResult(**result)


def grounded_result(result: dict[str, Any]) -> GroundedResult:
    """A :class:`MaskStage` result (masks bit-packed) as the engine's dataclass."""
    fields = {k: v for k, v in result.items() if k != "mask_shape"}
    shape = tuple(result["mask_shape"])
    masks = np.unpackbits(result["masks"], count=int(np.prod(shape))).reshape(shape)
    return GroundedResult(**{**fields, "labels": list(fields["labels"]), "masks": masks.view(bool)})


def dense_result(result: dict[str, Any]) -> DenseResult:
    """A :class:`DenseStage` result as the engine's dataclass."""
    return DenseResult(**{**result, "classes": list(result["classes"])})
