"""The package as a FiftyOne remote zoo source, copied under the model zoo dir as FiftyOne does."""

from __future__ import annotations

import json
import shutil

import fiftyone as fo
import fiftyone.zoo as foz
from data_paths import FIXTURES

from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.assets.download import LOCAL_MODELS_ENV
from tag2text_zoo.zoo import dense, grounded, parse_parameters, resolve_input
from tag2text_zoo.zoo.manifest import MANIFEST, SOURCE_NAME, build_manifest

PACKAGE = MANIFEST.parent
TAGALIGN = FIXTURES / "tagalign-tiny"


def test_manifest_matches_catalogue():
    on_disk = json.loads(MANIFEST.read_text())
    assert on_disk == json.loads(json.dumps(build_manifest())), (
        "manifest.json drifted from the zoo entries; regenerate it with "
        "python -c 'from tag2text_zoo.zoo.manifest import write_manifest; write_manifest()'"
    )
    names = [*CATALOGUE, *grounded.ENTRIES, *dense.ENTRIES]
    assert [m["base_name"] for m in on_disk["models"]] == [f"{n}-torch" for n in names]
    assert all("/" not in m["base_filename"] for m in on_disk["models"])


def test_zoo_lists_downloads_once_and_loads(tmp_path, tag2text_dir, monkeypatch):
    zoo_dir, local = tmp_path / "zoo", tmp_path / "local"
    # What register_zoo_model_source does: copy the folder holding manifest.json to <zoo>/<name>.
    shutil.copytree(PACKAGE, zoo_dir / SOURCE_NAME, ignore=shutil.ignore_patterns("__pycache__"))
    local.mkdir()
    (local / "tag2text-swin-14m").symlink_to(tag2text_dir, target_is_directory=True)
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(zoo_dir))

    name = "tag2text-swin-14m-torch"
    assert name in foz.list_zoo_models(tags="captioning")
    assert not foz.is_zoo_model_downloaded(name)
    model = foz.load_zoo_model(name, device="cpu", prompt_field="hint")
    marker = zoo_dir / SOURCE_NAME / "tag2text-swin-14m.config.json"
    assert foz.is_zoo_model_downloaded(name) and marker.is_file() and not marker.is_dir()
    assert foz.find_zoo_model(name) == str(marker)
    assert type(model).__name__ == "TaggerModel" and model.config.prompt_field == "hint"
    assert (
        model.tagger.config.num_tags
        == json.loads((tag2text_dir / "config.json").read_text())["num_tags"]
    )

    # A second load finds the model downloaded: the local directory is not consulted again.
    monkeypatch.delenv(LOCAL_MODELS_ENV)
    again = foz.load_zoo_model(name, device="cpu")
    assert again.tagger.tag_names == model.tagger.tag_names


def test_operator_form_and_parameters():
    prop = resolve_input("tag2text-swin-14m-torch", ctx=None)
    fields = set(prop.type.properties)
    assert {"device", "dtype", "threshold", "caption", "prompt_field"} <= fields
    params = {"device": "auto", "dtype": "bfloat16", "threshold": None, "prompt_field": ""}
    parse_parameters("tag2text-swin-14m-torch", None, params)
    assert params == {"dtype": "bfloat16"}


def test_grounded_pair_from_the_zoo(tmp_path, grounded_dirs, monkeypatch):
    zoo_dir, local = tmp_path / "zoo", tmp_path / "local"
    shutil.copytree(PACKAGE, zoo_dir / SOURCE_NAME, ignore=shutil.ignore_patterns("__pycache__"))
    pair = local / "grounded-sam-tiny-vit-base"
    pair.mkdir(parents=True)
    for part, folder in zip(["detector", "segmenter"], grounded_dirs, strict=True):
        (pair / part).symlink_to(folder, target_is_directory=True)
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(zoo_dir))

    name = "grounded-sam-tiny-vit-base-torch"
    assert name in foz.list_zoo_models(tags="grounded")
    model = foz.load_zoo_model(name, device="cpu", prompt_field="t2t_tags", box_threshold=0.3)
    assert foz.is_zoo_model_downloaded(name)
    assert type(model).__name__ == "GroundedModel" and model.config.prompt_field == "t2t_tags"
    assert model.segmenter.box_threshold == 0.3
    assert model.segmenter.segmenter.config.vision_config.hidden_size == 16  # the tiny SAM
    assert "box_threshold" in resolve_input(name, ctx=None).type.properties


def test_zoo_lists_and_loads_the_linked_clip(tmp_path, monkeypatch):
    zoo_dir, local = tmp_path / "zoo", tmp_path / "local"
    shutil.copytree(PACKAGE, zoo_dir / SOURCE_NAME, ignore=shutil.ignore_patterns("__pycache__"))
    (local / "tagalign-clip-vit-b16").mkdir(parents=True)
    (local / "tagalign-clip-vit-b16" / "clip").symlink_to(
        TAGALIGN / "clip", target_is_directory=True
    )
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(zoo_dir))

    name = "tagalign-clip-vit-b16-torch"
    assert name in foz.list_zoo_models(tags="dense")
    model = foz.load_zoo_model(name, device="cpu", prompt_field="t2t_tags", bg_thresh=0.3)
    marker = zoo_dir / SOURCE_NAME / "tagalign-clip-vit-b16.config.json"
    assert foz.is_zoo_model_downloaded(name) and marker.is_file() and not marker.is_dir()
    assert type(model).__name__ == "DenseModel" and model.config.prompt_field == "t2t_tags"
    assert model.segmenter.projector is None and model.segmenter.settings.bg_thresh == 0.3
    assert model.segmenter.clip.config.vision_config.hidden_size < 768  # the tiny CLIP

    monkeypatch.delenv(LOCAL_MODELS_ENV)
    trained = foz.load_zoo_model(name, device="cpu", projector=str(TAGALIGN / "tagalign.pth"))
    assert trained.segmenter.projector is not None
    form = resolve_input(name, ctx=None).type.properties
    assert {"device", "dtype", "prompt_field", "projector", "settings", "bg_thresh"} <= set(form)
