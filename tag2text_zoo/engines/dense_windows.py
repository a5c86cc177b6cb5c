"""TagAlign's evaluation geometry: keep-ratio resize, normalisation and sliding windows.

These follow the mmseg 0.21.1 test pipeline the reference runs (see the tagalign-tiny fixture
README): OpenCV bilinear resize on uint8, ImageNet mean/std on the 0-255 scale, and mmseg's
``slide_inference`` window placement.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)


def resize_keep_ratio(rgb: np.ndarray, short_side: int = 448, long_side: int = 2048) -> np.ndarray:
    """Resizes HxWx3 uint8 so the short side is `short_side`, unless the long side would pass
    `long_side` (then that side is `long_side`); ``int(x * s + 0.5)`` rounding, OpenCV bilinear.
    """
    height, width = rgb.shape[:2]
    scale = min(long_side / max(height, width), short_side / min(height, width))
    size = (int(width * scale + 0.5), int(height * scale + 0.5))  # cv2 takes (w, h)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)


def normalise(
    rgb: np.ndarray,
    mean: tuple[float, ...] = IMAGENET_MEAN_255,
    std: tuple[float, ...] = IMAGENET_STD_255,
) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 ``(x - mean) * (1 / std)`` on the 0-255 scale."""
    x = rgb.astype(np.float32)
    x = (x - np.asarray(mean, np.float32)) * (1 / np.asarray(std, np.float32))
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def sliding_windows(height: int, width: int, crop: int, stride: int) -> list[tuple[int, ...]]:
    """mmseg's windows over an image, row-major: ``(y1, y2, x1, x2)``, the last ones shifted back
    to end at the border; a side shorter than `crop` gives one window covering it.
    """

    def starts(size: int) -> list[tuple[int, int]]:
        count = max(size - crop + stride - 1, 0) // stride + 1
        spans = []
        for i in range(count):
            end = min(i * stride + crop, size)
            spans.append((max(end - crop, 0), end))
        return spans

    return [(y1, y2, x1, x2) for y1, y2 in starts(height) for x1, x2 in starts(width)]
