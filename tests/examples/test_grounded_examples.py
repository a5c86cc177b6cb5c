"""examples/grounded_segmentation.py and examples/ground_one_image.py on tiny models."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image
from scripts import load_script


def _load(name: str):
    return load_script(f"examples/{name}.py")


def test_folder_tags_boxes_masks(tag2text_dir, tag2text_images, grounded_dirs, tmp_path):
    for image in tag2text_images[3:5]:
        shutil.copy(image, tmp_path)
    models = ["--detector", str(grounded_dirs[0]), "--segmenter", str(grounded_dirs[1])]
    argv = [str(tmp_path), "--tagger", str(tag2text_dir), *models, "--device", "cpu"]
    ds = _load("grounded_segmentation").main([*argv, "--box-threshold", "0"])
    try:
        assert ds.exists("t2t_tags").count() == 2 and ds.exists("grounded").count() == 2
        for sample in ds:
            tags = {c.label.lower() for c in sample.t2t_tags.classifications}
            labels = {d.label for d in sample.grounded.detections}
            assert labels and labels <= tags
            width, height = Image.open(sample.filepath).size
            assert sample.grounded_semantic.mask.shape == (height, width)
    finally:
        ds.delete()


def test_one_image_overlay(grounded_dirs, tmp_path, capsys):
    path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), np.uint8)).save(path)
    out = tmp_path / "overlay.png"
    result = _load("ground_one_image").main(
        [
            str(path),
            "--tags",
            "cat,dog",
            "--detector",
            str(grounded_dirs[0]),
            "--segmenter",
            str(grounded_dirs[1]),
            "--device",
            "cpu",
            "--box-threshold",
            "0",
            "--out",
            str(out),
        ]
    )
    assert result.labels and set(result.labels) <= {"cat", "dog"}
    picture = np.asarray(Image.open(out))
    assert picture.shape == (50, 70, 3)
    assert (picture != np.asarray(Image.open(path))).any()  # masks and boxes were drawn
    assert f"overlay: {out.resolve()}" in capsys.readouterr().out
