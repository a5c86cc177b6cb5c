"""Bad image files (issue #14, case 1): each is named with its reason; the good ones still work."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tag2text_zoo.cli import main
from tag2text_zoo.engines.preprocess import MAX_PIXELS_ENV, ImageLoadError, load_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_bomb(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A 100-byte PNG whose header declares ``width x height`` grayscale pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )
    return path


def _bad_files(folder: Path, good: Path) -> dict[Path, str]:
    """Each kind of bad file, with the words its error must contain."""
    data = good.read_bytes()
    files = {
        write_bomb(folder / "bomb.png"): "decompression bomb",
        folder / "truncated.jpg": "not a readable image",
        folder / "page.jpg": "not a readable image",
        folder / "empty.png": "not a readable image",
        folder / "missing.jpg": "no such image file",
    }
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "page.jpg").write_bytes(b"<!DOCTYPE html><html><body>Not found</body></html>")
    (folder / "empty.png").write_bytes(b"")
    return files


def test_each_bad_file_is_an_image_load_error_naming_it(tmp_path, tag2text_images):
    for path, reason in _bad_files(tmp_path, tag2text_images[0]).items():
        with pytest.raises(ImageLoadError, match=reason) as err:
            load_image(path)
        assert str(path) in str(err.value)
    assert load_image(tag2text_images[0]).size == Image.open(tag2text_images[0]).size


def test_bomb_message_says_how_to_allow_large_images(tmp_path):
    with pytest.raises(ImageLoadError) as err:
        load_image(write_bomb(tmp_path / "bomb.png"))
    assert MAX_PIXELS_ENV in str(err.value) and "178,956,970 pixels" in str(err.value)


def test_tag_command_tags_good_images_beside_bad_ones(
    tmp_path, tag2text_dir, tag2text_images, tag2text_expected, capsys
):
    """The issue's run: `tag` with a bomb (and other bad files) among good images."""
    bad = _bad_files(tmp_path, tag2text_images[0])
    good = tag2text_images[:2]
    args = ["tag", str(good[0]), *map(str, bad), str(good[1]), "--model", str(tag2text_dir)]
    assert main([*args, "--json", "--no-exif", "--batch-size", "2"]) == 1  # good ones tagged
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad)
    for path, reason in bad.items():
        assert any(str(path) in line and reason in line for line in errors), path
    records = json.loads(out)
    assert [r["image"] for r in records] == [str(p) for p in good]
    for record, ref in zip(records, tag2text_expected["images"][:2], strict=True):
        assert [t["name"] for t in record["tags"]] == ref["tags"]
        assert record["caption"] == ref["caption"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_large_image_under_the_limit_still_loads(tmp_path):
    # 90 million pixels: over Pillow's warning threshold (89,478,485), under the limit.
    path = tmp_path / "large.png"
    Image.new("L", (10_000, 9_000), 77).save(path)
    img = load_image(path)
    assert img.size == (10_000, 9_000) and img.mode == "RGB"
    assert img.getpixel((9_999, 8_999)) == (77, 77, 77)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_limit_is_set_by_the_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    small, over = tmp_path / "small.png", tmp_path / "over.png"
    Image.new("RGB", (100, 100)).save(small)
    Image.new("RGB", (101, 100)).save(over)
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    assert load_image(small).size == (100, 100)
    with pytest.raises(ImageLoadError, match=r"over\.png: 101x100 is over the limit of 10,000"):
        load_image(over)
    # Raised beyond Pillow's own limit, the variable alone decides.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    big = tmp_path / "big.png"
    Image.new("RGB", (200, 200), (1, 2, 3)).save(big)
    monkeypatch.setenv(MAX_PIXELS_ENV, "50000")
    assert np.asarray(load_image(big))[0, 0].tolist() == [1, 2, 3]
    monkeypatch.setenv(MAX_PIXELS_ENV, "0")  # no limit
    Image.new("RGB", (400, 400)).save(big)
    assert load_image(big).size == (400, 400)


def test_a_malformed_limit_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MAX_PIXELS_ENV} must be a number of pixels"):
        load_image(np.zeros((2, 2), np.uint8))
