"""Image loading and the reference's preprocessing (RGB, bilinear square resize, ImageNet norm)."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

ImageInput = str | os.PathLike | Image.Image | np.ndarray

MAX_PIXELS_ENV = "TAG2TEXT_ZOO_MAX_IMAGE_PIXELS"
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error)


class ImageLoadError(ValueError):
    """An input that is not a usable image; the message names it."""


def _describe(source: object, index: int | None) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    kind = type(source).__name__
    return f"image #{index} ({kind})" if index is not None else kind


def max_image_pixels() -> int | None:
    """The most pixels (width x height) an image file may declare; None for no limit.

    ``$TAG2TEXT_ZOO_MAX_IMAGE_PIXELS`` when set (0: no limit), else Pillow's own refusal point:
    twice ``PIL.Image.MAX_IMAGE_PIXELS``, 178,956,970 pixels by default (about 13,000 x 13,000).
    """
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return None if Image.MAX_IMAGE_PIXELS is None else 2 * Image.MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(f"${MAX_PIXELS_ENV} must be a number of pixels (0: no limit): {value!r}")
    return limit or None


def _too_large(name: str, detail: str) -> ImageLoadError:
    return ImageLoadError(
        f"{name}: {detail}, refused as a possible decompression bomb; set ${MAX_PIXELS_ENV} to a "
        "larger number of pixels (0: no limit) to read it"
    )


def _open_file(path: Path, name: str, exif_transpose: bool, limit: int | None) -> Image.Image:
    """Decodes an image file, refusing those that declare more than ``limit`` pixels."""
    if not path.is_file():
        raise ImageLoadError(f"{name}: no such image file")
    if os.environ.get(MAX_PIXELS_ENV, "").strip():
        # The variable's limit decides alone: Pillow would refuse above twice its own.
        Image.MAX_IMAGE_PIXELS = limit
    try:
        opened = Image.open(path)
    except Image.DecompressionBombError as err:  # above Pillow's own limit, which is ours
        raise _too_large(name, f"declares more than the limit of {limit:,} pixels") from err
    with opened:
        width, height = opened.size
        if limit is not None and width * height > limit:
            raise _too_large(name, f"{width}x{height} is over the limit of {limit:,} pixels")
        opened.load()
        return ImageOps.exif_transpose(opened) if exif_transpose else opened.copy()


def _range_of(arr: np.ndarray) -> str:
    if not np.isfinite(arr).all():
        return "NaN or infinite values"
    return f"values from {arr.min():g} to {arr.max():g}"


def _sixteen_to_eight_bit(arr: np.ndarray) -> np.ndarray:
    return np.rint(arr.astype(np.float32) / 257.0).astype(np.uint8)  # 0..65535 -> 0..255


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Pixel values of any numeric type as 8-bit, by the rules in the README; never clipped.

    uint8 as is; uint16 (0..65535) divided by 257; floats must be finite and within [0, 1];
    other integer types (Pillow mode "I", int32, int64, ...) by the range their values use:
    within 0..255 taken as 8-bit, else within 0..65535 as 16-bit, otherwise refused.
    """
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "u" and size == 1:
        return arr
    if kind == "f":
        if not (np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
            raise ImageLoadError(
                f"{name}: float pixels must be finite and within [0, 1], got {_range_of(arr)}; "
                "scale them to [0, 1] first (e.g. divide 0..255 data by 255) or pass uint8"
            )
        return np.rint(arr.astype(np.float32) * 255.0).astype(np.uint8)
    if kind not in "iu":
        raise ImageLoadError(
            f"{name}: pixels of type {arr.dtype}; expected uint8, uint16, another integer type "
            "or float in [0, 1]"
        )
    if kind == "u" and size == 2:
        return _sixteen_to_eight_bit(arr)
    low, high = int(arr.min()), int(arr.max())
    if low >= 0 and high <= 255:
        return arr.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return _sixteen_to_eight_bit(arr)
    raise ImageLoadError(
        f"{name}: {arr.dtype} pixels must hold 8-bit (0..255) or 16-bit (0..65535) values, got "
        f"{_range_of(arr)}; convert the image to uint8 or uint16 first"
    )


def _to_8bit_rgb(img: Image.Image, name: str) -> Image.Image:
    """Converts any Pillow mode to RGB; 16-bit, 32-bit and float images follow :func:`_to_uint8`."""
    if img.mode.startswith("I") or img.mode == "F":
        img = Image.fromarray(_to_uint8(np.asarray(img), name), "L")
    # RGBA: alpha is dropped without compositing, exactly as the reference's convert('RGB').
    return img if img.mode == "RGB" else img.convert("RGB")


def _array_to_image(arr: np.ndarray, name: str) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageLoadError(
            f"{name}: array of shape {arr.shape}; expected HxW, HxWx1, HxWx3 or HxWx4"
        )
    if arr.size == 0:
        raise ImageLoadError(f"{name}: empty image")
    return Image.fromarray(np.ascontiguousarray(_to_uint8(arr, name)))


def load_image(
    source: ImageInput, exif_transpose: bool = True, index: int | None = None
) -> Image.Image:
    """Opens a path, PIL image or numpy array as an 8-bit RGB PIL image.

    Args:
        source: file path, PIL image, or ``HxW[xC]`` array (uint8, uint16, or float in [0, 1]).
        exif_transpose: apply the EXIF orientation (the reference does not).
        index: position in a batch, used to name non-path inputs in errors.

    Raises:
        ImageLoadError: missing, unreadable, corrupt, too large (:func:`max_image_pixels`) or
            unsupported input, or pixel values out of range (the message names it and says why).
    """
    name = _describe(source, index)
    limit = max_image_pixels()
    try:
        if isinstance(source, (str, os.PathLike)):
            img = _open_file(Path(source), name, exif_transpose, limit)
        elif isinstance(source, Image.Image):
            img = ImageOps.exif_transpose(source) if exif_transpose else source
        elif isinstance(source, np.ndarray):
            img = _array_to_image(source, name)
        else:
            raise ImageLoadError(f"{name}: expected a path, PIL image or numpy array")
        if img.width < 1 or img.height < 1:
            raise ImageLoadError(f"{name}: empty image")
        return _to_8bit_rgb(img, name)
    except ImageLoadError:
        raise
    except _DECODE_ERRORS as err:
        raise ImageLoadError(f"{name}: not a readable image ({err})") from err


def loading_threads() -> int:
    """Threads that load images beside the model: Pillow decodes and resizes without the GIL."""
    return min(8, os.cpu_count() or 1)


def resize_to_uint8(img: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image -> ``[3, size, size]`` uint8: the reference's bilinear resize (aspect not
    kept; Pillow's, anti-aliased when shrinking, so results match exactly).

    A quarter of the float32 tensor's bytes: loader workers hand these on, and the model's device
    normalises them (:func:`normalize`).
    """
    resized = np.asarray(img.resize((size, size), Image.BILINEAR))
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))


def normalize(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` -> float32 in the reference's ImageNet normalisation, on the
    tensor's device (the reference's float32 operations, in its order: bit-identical)."""

    def channels(values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=pixels.device).view(-1, 1, 1)

    return (pixels.float() / 255.0 - channels(mean)) / channels(std)


def image_to_tensor(
    img: Image.Image, size: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """RGB PIL image -> ``[3, size, size]`` float32: :func:`resize_to_uint8`, :func:`normalize`."""
    return normalize(resize_to_uint8(img, size), mean, std)
