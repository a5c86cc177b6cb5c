"""GroundedResult -> FiftyOne labels: Detections with box-cropped masks, semantic Segmentation."""

from __future__ import annotations

import fiftyone as fo
import numpy as np

from ...engines.grounded import GroundedResult
from ..base.mask_targets import MaskTargets


def to_detections(result: GroundedResult, frame_size: tuple[int, int]) -> fo.Detections:
    """One `fo.Detection` per box: relative [x, y, w, h], mask cropped to the box.

    The crop follows FiftyOne's SAM output processor,
    ``mask[int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))]``, with the box first
    clipped to the image.

    Args:
        result: one image's grounded result.
        frame_size: (width, height) of the image.

    Returns:
        Detections with the tag as label, the box score as confidence and ``sam_iou``.
    """
    width, height = frame_size
    detections = []
    for i, label in enumerate(result.labels):
        x1, y1, x2, y2 = np.clip(result.boxes[i], 0, [width, height, width, height]).tolist()
        mask = result.masks[i][int(round(y1)) : int(round(y2)), int(round(x1)) : int(round(x2))]
        detections.append(
            fo.Detection(
                label=label,
                bounding_box=[x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height],
                mask=mask,
                confidence=float(result.scores[i]),
                sam_iou=float(result.iou_predictions[i]),
            )
        )
    return fo.Detections(detections=detections)


def to_segmentation(result: GroundedResult, targets: MaskTargets) -> fo.Segmentation:
    """A semantic mask: each pixel gets the class of the best-scoring box mask covering it.

    Args:
        result: one image's grounded result.
        targets: the field's class map; classes it lacks are added (0 is background).

    Returns:
        The segmentation (uint8 up to 255 classes, else uint16); ``targets.targets`` is the
        field's mask_targets.
    """
    values = [targets.id(label) for label in result.labels]
    height, width = result.masks.shape[1:]
    semantic = np.zeros((height, width), targets.dtype)
    # paint lowest score first so the best box wins where masks overlap
    for i in np.argsort(result.scores, kind="stable"):
        semantic[result.masks[i]] = values[i]
    return fo.Segmentation(mask=semantic)


def to_grounded_labels(
    result: GroundedResult, targets: MaskTargets | None = None
) -> fo.Detections | dict[str, fo.Label]:
    """One image's labels: its Detections, or with ``targets`` (the semantic field's class map)
    ``{"detections": fo.Detections, "semantic": fo.Segmentation}``."""
    detections = to_detections(result, result.image_size)
    if targets is None:
        return detections
    return {"detections": detections, "semantic": to_segmentation(result, targets)}
