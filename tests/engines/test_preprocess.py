"""Image inputs: every mode becomes the right RGB image, and bad inputs are named in errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tag2text_zoo.engines.preprocess import ImageLoadError, image_to_tensor, load_image

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_fixture_pixels_are_bit_exact(tag2text_images, tag2text_npz):
    for i, path in enumerate(tag2text_images):
        tensor = image_to_tensor(load_image(path, exif_transpose=False), 384, MEAN, STD)
        np.testing.assert_array_equal(tensor.numpy(), tag2text_npz["pixel_values"][i])


def test_grayscale_and_rgba_follow_pillow_rules(tmp_path):
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L")
    gray.save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.mode == "RGB" and np.array_equal(np.asarray(img)[..., 1], np.asarray(gray))
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red: alpha dropped, not composited
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.asarray(load_image(tmp_path / "a.png"))[0, 0].tolist() == [200, 0, 0]


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (10, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = load_image(tmp_path / "c.jpg")
    r, g, b = np.asarray(img).reshape(-1, 3).mean(0)
    assert img.size == (10, 6) and r > 200 and g < 60 and b < 60  # CMYK (0,1,1,0) is red


def test_sixteen_bit_png_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 64], [257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as raw:
        assert raw.mode.startswith("I")
    out = np.asarray(load_image(tmp_path / "d.png"))[..., 0]
    assert out.tolist() == [[0, 64], [128, 255]]


def test_numpy_inputs():
    arr8 = np.full((5, 7, 3), 10, np.uint8)
    assert np.asarray(load_image(arr8)).tolist() == arr8.tolist()
    arr16 = np.full((5, 7), 257 * 100, np.uint16)
    assert np.asarray(load_image(arr16))[0, 0].tolist() == [100] * 3
    floats = np.full((2, 2, 4), 0.5, np.float32)
    assert np.asarray(load_image(floats))[0, 0].tolist() == [128] * 3
    with pytest.raises(ImageLoadError, match=r"image #3 .*shape"):
        load_image(np.zeros((2, 2, 5), np.uint8), index=3)


def test_one_pixel_image_resizes():
    tensor = image_to_tensor(load_image(np.full((1, 1, 3), 255, np.uint8)), 384, MEAN, STD)
    assert tensor.shape == (3, 384, 384)
    np.testing.assert_allclose(tensor[:, 0, 0].numpy(), (1 - np.array(MEAN)) / STD, rtol=1e-6)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.jpg", None, "no such image file"),
        ("notes.txt", b"hello, not an image", "not a readable image"),
        ("broken.jpg", "truncate", "not a readable image"),
    ],
)
def test_bad_files_are_named(tmp_path, tag2text_images, name, content, message):
    path = tmp_path / name
    if content == "truncate":
        data = tag2text_images[0].read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=message) as err:
        load_image(path)
    assert str(path) in str(err.value)
