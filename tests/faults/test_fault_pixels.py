"""Pixel values out of range (issue #14, case 6): refused with the expected range, never clipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tag2text_zoo.engines.preprocess import ImageLoadError, load_image

PHOTO = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4  # values 0..236


def _pixels(source) -> list:
    return np.asarray(load_image(source, index=2)).tolist()


@pytest.mark.parametrize(
    "values, reported",
    [
        (PHOTO.astype(np.float64), "values from 0 to 236"),  # 0..255 floats: a white image before
        (PHOTO / 127.5 - 1.0, "values from -1 to 0.85"),
        (np.where(PHOTO > 100, np.nan, PHOTO / 255.0), "NaN or infinite"),
        (np.full((4, 5), np.inf, np.float32), "NaN or infinite"),
    ],
)
def test_float_pixels_outside_zero_one_are_refused(values, reported):
    with pytest.raises(ImageLoadError) as err:
        load_image(values, index=2)
    message = str(err.value)
    assert message.startswith("image #2 (ndarray): float pixels must be finite and within [0, 1]")
    assert reported in message


def test_float_pixels_within_zero_one_are_scaled_by_255():
    assert _pixels(PHOTO / 255.0) == PHOTO.tolist()
    assert _pixels(PHOTO.astype(np.float32) / np.float32(255.0)) == PHOTO.tolist()


def test_float_pil_images_follow_the_same_rule():
    gray = PHOTO[..., 0]
    assert _pixels(Image.fromarray(gray / np.float32(255.0))) == np.stack([gray] * 3, -1).tolist()
    with pytest.raises(ImageLoadError, match=r"within \[0, 1\], got values from 0 to 228"):
        load_image(Image.fromarray(gray.astype(np.float32)))


def test_mode_i_file_holding_8_bit_values_keeps_them(tmp_path):
    """The issue's case: a mode "I" image of 8-bit values was divided by 257 (a black image)."""
    gray = PHOTO[..., 0]
    path = tmp_path / "eight_bit_in_32.tif"
    Image.fromarray(gray).convert("I").save(path)
    with Image.open(path) as raw:
        assert raw.mode == "I"
    assert _pixels(path) == _pixels(gray)


def test_wider_integer_arrays_are_read_by_their_range():
    gray = PHOTO[..., 0]
    for dtype in (np.int32, np.int64, np.uint32, np.int16):
        assert _pixels(gray.astype(dtype)) == _pixels(gray), dtype
    sixteen = gray.astype(np.uint16) * 257  # 16-bit values in a 32-bit array: as uint16
    assert _pixels(sixteen.astype(np.int32)) == _pixels(sixteen) == _pixels(gray)


def test_uint16_is_always_sixteen_bit():
    # Declared 16-bit stays 16-bit even when its values are small (a dark image, kept dark).
    assert _pixels(np.full((2, 2), 200, np.uint16))[0][0] == [1, 1, 1]
    assert _pixels(np.full((2, 2), 65535, np.uint16))[0][0] == [255, 255, 255]


@pytest.mark.parametrize(
    "values, reported",
    [
        (np.array([[-1, 200]], np.int32), "values from -1 to 200"),
        (np.array([[0, 70000]], np.int64), "values from 0 to 70000"),
    ],
)
def test_integers_beyond_sixteen_bits_are_refused(values, reported):
    with pytest.raises(ImageLoadError) as err:
        load_image(values, index=2)
    assert "must hold 8-bit (0..255) or 16-bit (0..65535) values" in str(err.value)
    assert reported in str(err.value) and str(err.value).startswith("image #2")


def test_mode_i_file_beyond_sixteen_bits_is_refused_by_name(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.array([[0, 100_000]], np.int32)).save(path)
    with pytest.raises(ImageLoadError, match=r"depth\.tif: int32 pixels must hold"):
        load_image(path)


def test_other_pixel_types_are_refused():
    with pytest.raises(ImageLoadError, match="pixels of type bool"):
        load_image(np.ones((2, 2), bool))
    with pytest.raises(ImageLoadError, match="empty image"):
        load_image(np.zeros((0, 3, 3), np.uint8))
