"""Image loading and the reference's preprocessing (RGB, bilinear square resize, ImageNet norm)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = str | os.PathLike | Image.Image | np.ndarray

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


class ImageLoadError(ValueError):
    """An input that is not a usable image; the message names it."""


def _describe(source: object, index: int | None) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    kind = type(source).__name__
    return f"image #{index} ({kind})" if index is not None else kind


def _to_8bit_rgb(img: Image.Image) -> Image.Image:
    """Converts any Pillow mode to RGB; 16-bit and float images are rescaled, not clipped."""
    if img.mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img, dtype=np.float32) / 257.0  # 0..65535 -> 0..255
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        scale = 255.0 if arr.size and float(arr.max()) <= 1.0 else 1.0
        img = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L")
    # RGBA: alpha is dropped without compositing, exactly as the reference's convert('RGB').
    return img if img.mode == "RGB" else img.convert("RGB")


def _array_to_image(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"array of shape {arr.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    if arr.dtype == np.uint16:
        arr = np.rint(arr.astype(np.float32) / 257.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ValueError(f"array of dtype {arr.dtype}; expected uint8, uint16 or float in [0, 1]")
    return Image.fromarray(np.ascontiguousarray(arr))


def load_image(
    source: ImageInput, exif_transpose: bool = True, index: int | None = None
) -> Image.Image:
    """Opens a path, PIL image or numpy array as an 8-bit RGB PIL image.

    Args:
        source: file path, PIL image, or ``HxW[xC]`` array (uint8, uint16, or float in [0, 1]).
        exif_transpose: apply the EXIF orientation (the reference does not).
        index: position in a batch, used to name non-path inputs in errors.

    Raises:
        ImageLoadError: missing, unreadable, corrupt or unsupported input (the message names it).
    """
    name = _describe(source, index)
    try:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise ImageLoadError(f"{name}: no such image file")
            with Image.open(path) as opened:
                opened.load()
                img = ImageOps.exif_transpose(opened) if exif_transpose else opened.copy()
        elif isinstance(source, Image.Image):
            img = ImageOps.exif_transpose(source) if exif_transpose else source
        elif isinstance(source, np.ndarray):
            img = _array_to_image(source)
        else:
            raise ImageLoadError(f"{name}: expected a path, PIL image or numpy array")
        if img.width < 1 or img.height < 1:
            raise ImageLoadError(f"{name}: empty image")
        return _to_8bit_rgb(img)
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageLoadError(f"{name}: not a readable image ({err})") from err


def image_to_tensor(
    img: Image.Image, size: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """RGB PIL image -> ``[3, size, size]`` float32: bilinear resize (aspect not kept), normalize.

    Pillow's resize is the reference's (anti-aliased when shrinking), so results match exactly.
    """
    resized = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(resized, dtype=np.float32) / np.float32(255.0)
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
