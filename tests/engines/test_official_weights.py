"""The grounded segmenter on official checkpoint files and catalogue names (tiny random weights in
the released formats; parity with the official packages is in tests/official)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from official_files import tiny_file
from PIL import Image

from tag2text_zoo.assets import download
from tag2text_zoo.assets.catalogue import BERT_VOCAB, RemoteFile
from tag2text_zoo.assets.download import LOCAL_MODELS_ENV, DownloadError
from tag2text_zoo.assets.official import OFFICIAL_CHECKPOINTS, official_checkpoint
from tag2text_zoo.engines.grounded import GroundedSegmenter, load_grounded_segmenter
from tag2text_zoo.engines.grounding_dino import load_grounding_dino
from tag2text_zoo.engines.sam_family import load_sam
from tag2text_zoo.models import CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAM_FILES = {"sam": "sam_vit_b_01ec64.pth", "sam-hq": "sam_hq_vit_h.pth", "sam2": "sam2.1.pt"}


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory, reference_dir) -> Path:
    folder = tmp_path_factory.mktemp("gdino")
    shutil.copy(reference_dir / "bert-base-uncased-vocab.txt", folder / "vocab.txt")
    return tiny_file("grounding-dino", folder, "groundingdino_swint_ogc.pth")


def _image(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize("family", sorted(SAM_FILES))
def test_official_files_ground_and_segment(tmp_path, detector_file, family):
    segmenter_file = tiny_file(family, tmp_path, SAM_FILES[family])
    # The tiny SAM 2 has hiera_tiny's stages, so its layout says 1024 pixels; it works at 64.
    layout = {"image_size": 64} if family == "sam2" else {}
    segmenter = GroundedSegmenter(
        *load_grounding_dino(detector_file),
        *load_sam(segmenter_file, **layout),
        device="cpu",
        box_threshold=0.0,
        text_threshold=0.0,
    )
    assert segmenter.segmenter.config.model_type == family.replace("-", "_")
    size = segmenter.sam.processor.image_processor.size
    assert (size["height"] if family == "sam2" else size["longest_edge"]) == 64
    images = [_image(0, (80, 60)), _image(1, (40, 50))]
    results = segmenter.segment(images, [["cat", "dog"], ["a red car"]])
    for image, result in zip(images, results, strict=True):
        assert result.labels and result.masks.shape == (
            len(result.labels),
            image.height,
            image.width,
        )
        assert np.isfinite(result.iou_predictions).all()
    assert segmenter_file.with_suffix(".safetensors").is_file()  # converted once, kept beside it
    assert detector_file.with_suffix(".safetensors").is_file()


def test_detector_reads_the_vocabulary_beside_its_file(detector_file):
    _, processor = load_grounding_dino(detector_file)
    assert processor.tokenizer.convert_tokens_to_ids("cat") == 4937  # bert-base-uncased
    assert processor.image_processor.size == {"shortest_edge": 800, "longest_edge": 1333}


def test_detector_vocabulary_is_downloaded_once_or_named(tmp_path, detector_file, monkeypatch):
    alone = tmp_path / "alone"
    alone.mkdir()
    path = shutil.copy(detector_file, alone / detector_file.name)
    monkeypatch.setattr(download, "_hub_download", _offline)
    with pytest.raises(DownloadError, match=f"vocab.txt.*{BERT_VOCAB.url}.*next to {path}"):
        load_grounding_dino(path, models_dir=tmp_path / "models")
    source = Path(__file__).parents[1] / "data" / "reference" / "bert-base-uncased-vocab.txt"
    monkeypatch.setattr(download, "_hub_download", lambda f, d: shutil.copy(source, d / f.filename))
    load_grounding_dino(path, models_dir=tmp_path / "models")
    assert (tmp_path / "models" / "bert-base-uncased" / "vocab.txt").is_file()


def _offline(file: RemoteFile, *args) -> None:
    raise OSError(f"offline: {file.url}")


def test_catalogue_name_downloads_and_converts_once(tmp_path, monkeypatch):
    served = tiny_file("sam2", tmp_path / "served", "sam2.1_hiera_tiny.pt")
    spec = OFFICIAL_CHECKPOINTS["sam2.1-hiera-tiny"]
    tiny = RemoteFile(served.name, spec.files[0].url, served.stat().st_size, _sha256(served))
    monkeypatch.setitem(OFFICIAL_CHECKPOINTS, spec.name, dataclasses.replace(spec, files=(tiny,)))
    fetched = []

    def fake_http(url: str, dest: Path, size: int) -> None:
        fetched.append(url)
        shutil.copy(served, dest)

    monkeypatch.setattr(download, "_http_download", fake_http)
    model, processor = load_sam("sam2.1-hiera-tiny", models_dir=tmp_path / "models", image_size=64)
    folder = tmp_path / "models" / "sam2.1-hiera-tiny"
    assert fetched == [spec.files[0].url] and (folder / "sam2.1_hiera_tiny.safetensors").is_file()
    load_sam("sam2.1-hiera-tiny", models_dir=tmp_path / "models", image_size=64)
    assert len(fetched) == 1  # nothing downloaded again
    assert model.config.model_type == "sam2" and processor.target_size == 64


def _sha256(path: Path) -> str:
    from tag2text_zoo.models.converted_copy import sha256_of

    return sha256_of(path)


def test_offline_catalogue_error_names_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "_http_download", _offline)
    with pytest.raises(DownloadError) as err:
        load_grounded_segmenter("groundingdino-swint-ogc", "sam-vit-h", models_dir=tmp_path)
    message = str(err.value)
    spec = OFFICIAL_CHECKPOINTS["groundingdino-swint-ogc"]
    for file in spec.files:  # the checkpoint and the BERT vocabulary
        assert file.filename in message and file.url in message and file.sha256 in message
    assert str(tmp_path / "groundingdino-swint-ogc") in message


def test_offline_install_folder_is_used(tmp_path, monkeypatch):
    local = tmp_path / "local" / "sam-vit-b"
    tiny_file("sam", local, "sam_vit_b_01ec64.pth")
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(tmp_path / "local"))
    monkeypatch.setattr(download, "_http_download", _offline)
    assert official_checkpoint("sam-vit-b") == local / "sam_vit_b_01ec64.pth"
    model, _ = load_sam("sam-vit-b", models_dir=tmp_path / "home")
    assert model.config.model_type == "sam" and not (tmp_path / "home").exists()


def test_detector_and_segmenter_swapped_are_named(tmp_path, detector_file):
    with pytest.raises(CheckpointError, match="is a Grounding DINO checkpoint; expected SAM"):
        load_sam(detector_file)
    with pytest.raises(CheckpointError, match="is a SAM checkpoint; expected Grounding DINO"):
        load_grounding_dino(tiny_file("sam", tmp_path))


def test_hub_ids_and_folders_still_go_to_transformers(grounded_dirs):
    assert official_checkpoint("facebook/sam-vit-base") is None
    assert official_checkpoint(grounded_dirs[1]) is None
    model, _ = load_sam(grounded_dirs[1])
    assert model.config.model_type == "sam"
    assert torch.is_tensor(model.vision_encoder.pos_embed)
    with pytest.raises(ValueError, match="for official SAM 2 files only"):
        load_sam(grounded_dirs[1], image_size=64)
