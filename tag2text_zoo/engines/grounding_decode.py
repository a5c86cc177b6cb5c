"""Grounding DINO outputs -> boxes with tag labels, thresholds and class-agnostic NMS."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import box_convert, nms


@dataclass
class Detections:
    """Boxes of one image, on the detector's device.

    Attributes:
        boxes: [N, 4] float32, XYXY in pixels of the original image.
        scores: [N] float32, the box score (max token probability).
        tags: the tag of each box.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    tags: list[str]

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> Detections:
        return cls(torch.zeros(0, 4, device=device), torch.zeros(0, device=device), [])


def decode_pass(
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    span_mask: torch.Tensor,
    tags: tuple[str, ...],
    image_size: tuple[int, int],
    box_threshold: float,
    text_threshold: float,
) -> Detections:
    """Keeps the boxes of one detector pass and names each by its best tag.

    A box is kept when its highest token probability is above `box_threshold` (the demos' box
    score); its tag is the one whose tokens reach the highest probability, if that is above
    `text_threshold`. Unlike the demos, which decode every token over `text_threshold` into one
    string, a box never gets a merge of several tags.

    Args:
        logits: [Q, T] token logits of the queries (-inf past the text).
        pred_boxes: [Q, 4] boxes, relative CXCYWH.
        span_mask: [num_tags, T] bool, True at each tag's tokens.
        tags: the tag names, one per span_mask row.
        image_size: (height, width) of the original image.
        box_threshold: minimum box score (strict).
        text_threshold: minimum probability of the chosen tag (strict).

    Returns:
        The kept boxes, scores and tags.
    """
    probs = logits.float().sigmoid()
    scores = probs.max(dim=-1).values
    keep = scores > box_threshold
    probs, scores = probs[keep], scores[keep]
    mask = span_mask.to(probs.device)[None]  # 1 x num_tags x T
    tag_probs = torch.where(mask, probs[:, None, :], torch.zeros((), device=probs.device))
    best_prob, best_tag = tag_probs.amax(dim=-1).max(dim=-1)
    named = best_prob > text_threshold
    height, width = image_size
    scale = torch.tensor([width, height, width, height], device=pred_boxes.device)
    boxes = box_convert(pred_boxes[keep][named].float(), "cxcywh", "xyxy") * scale
    return Detections(boxes, scores[named], [tags[i] for i in best_tag[named].tolist()])


def merge_passes(passes: list[Detections], nms_iou: float) -> Detections:
    """Concatenates the passes of one image and runs class-agnostic NMS, best score first."""
    if not passes:
        return Detections.empty()
    boxes = torch.cat([p.boxes for p in passes])
    scores = torch.cat([p.scores for p in passes])
    tags = [t for p in passes for t in p.tags]
    order = nms(boxes, scores, nms_iou)
    return Detections(boxes[order], scores[order], [tags[i] for i in order.tolist()])
