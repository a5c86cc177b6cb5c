"""`python -m tag2text_zoo ground` with official checkpoint files for the detector and segmenter."""

from __future__ import annotations

import shutil
import uuid

import fiftyone as fo
import numpy as np
from official_files import tiny_file
from PIL import Image

from tag2text_zoo import zoo
from tag2text_zoo.cli import main
from tag2text_zoo.zoo import grounded


def test_cli_grounds_with_official_files(tmp_path, reference_dir):
    weights = tmp_path / "weights"
    detector = tiny_file("grounding-dino", weights, "groundingdino_swint_ogc.pth")
    shutil.copy(reference_dir / "bert-base-uncased-vocab.txt", weights / "vocab.txt")
    segmenter = tiny_file("sam-hq", weights, "sam_hq_vit_h.pth")
    folder = tmp_path / "images"
    folder.mkdir()
    for i, size in enumerate([(80, 60), (40, 50)]):
        pixels = np.random.default_rng(i).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"im{i}.png")
    name = f"official-{uuid.uuid4().hex[:8]}"
    models = ["--detector", str(detector), "--segmenter", str(segmenter)]
    options = ["--device", "cpu", "--box-threshold", "0", "--text-threshold", "0"]
    args = ["ground", str(folder), "--dataset", name, *models, "--classes", "cat, dog", *options]
    try:
        assert main(args) == 0
        ds = fo.load_dataset(name)
        assert ds.count("grounded.detections") > 0
        for sample in ds:
            for det in sample.grounded.detections:
                assert det.label in {"cat", "dog"} and det.mask.ndim == 2
        assert sorted(p.name for p in weights.glob("*.safetensors")) == [
            "groundingdino_swint_ogc.safetensors",
            "sam_hq_vit_h.safetensors",
        ]
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def test_zoo_pair_takes_an_official_segmenter(tmp_path, grounded_dirs):
    name = "grounded-sam-tiny-vit-base"
    (tmp_path / name).mkdir()
    (tmp_path / name / "detector").symlink_to(grounded_dirs[0], target_is_directory=True)
    segmenter = tiny_file("sam-hq", tmp_path / "weights", "sam_hq_vit_h.pth")
    model = grounded.load(
        name, tmp_path / f"{name}.config.json", segmenter=str(segmenter), device="cpu"
    )
    assert model.segmenter.segmenter.config.model_type == "sam_hq"
    fields = zoo.resolve_input(f"{name}-torch", ctx=None).type.properties
    assert {"detector", "segmenter"} <= set(fields)
