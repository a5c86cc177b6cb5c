"""The repository as a FiftyOne remote zoo source, registered and used through FiftyOne's own code.

Registration runs FiftyOne's ``register_zoo_model_source`` on the project's GitHub URL; only the
download is replaced, by the zip GitHub would serve for this checkout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import fiftyone.zoo as foz
from data_paths import FIXTURES
from tiny_clip import ram_open_set_encoder

from tag2text_zoo import DenseModel, GroundedModel, TaggerModel, segment_samples
from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.zoo import dense, grounded
from tag2text_zoo.zoo.manifest import MANIFEST, SOURCE_URL, build_manifest

TAGALIGN = FIXTURES / "tagalign-tiny"


def test_manifest_matches_entries_and_is_the_only_one(repo_files):
    on_disk = json.loads(MANIFEST.read_text())
    assert on_disk == json.loads(json.dumps(build_manifest())), (
        "zoo/manifest.json drifted from the zoo entries; regenerate it with "
        "python -c 'from tag2text_zoo.zoo.manifest import write_manifest; write_manifest()'"
    )
    names = [*CATALOGUE, *grounded.ENTRIES, *dense.ENTRIES]
    assert [m["base_name"] for m in on_disk["models"]] == [f"{n}-torch" for n in names]
    assert all("/" not in m["base_filename"] for m in on_disk["models"])
    # FiftyOne registers every manifest.json of the repository: there must be one.
    assert [f for f in repo_files if Path(f).name == "manifest.json"] == ["zoo/manifest.json"]


def test_registered_source_is_the_thin_zoo_folder(zoo):
    assert sorted(p.name for p in zoo.dir.iterdir()) == ["__init__.py", "manifest.json"]
    assert SOURCE_URL in foz.list_zoo_model_sources()
    name = "tag2text-swin-14m-torch"
    assert name in foz.list_zoo_models(source=SOURCE_URL, tags="captioning")
    foz.ensure_zoo_model_requirements(name)  # the installed tag2text-zoo satisfies it


def test_zoo_tagger_is_the_installed_class_and_labels_samples(
    zoo, tag2text_dir, tag2text_images, want, make_dataset
):
    zoo.link("tag2text-swin-14m", tag2text_dir)
    name = "tag2text-swin-14m-torch"
    assert not foz.is_zoo_model_downloaded(name)
    model = foz.load_zoo_model(name, device="cpu", exif_transpose=False)
    marker = zoo.dir / "tag2text-swin-14m.config.json"
    assert foz.is_zoo_model_downloaded(name) and marker.is_file() and not marker.is_dir()
    assert isinstance(model, TaggerModel)  # not a copy of the class from the zoo folder

    ds = make_dataset(tag2text_images[:2])
    ds.apply_model(model, "t2t", batch_size=2, num_workers=0, progress=False)
    for sample, path in zip(ds, tag2text_images[:2]):
        assert sample.t2t_caption == want[path.name]["caption"]

    # A second load finds the model downloaded: the local directory is not consulted again.
    shutil.rmtree(zoo.local)
    again = foz.load_zoo_model(name, device="cpu", prompt_field="hint")
    assert again.tagger.tag_names == model.tagger.tag_names and again.config.prompt_field == "hint"


def test_zoo_ram_with_classes_is_open_set(zoo, tag2text_dir, make_dataset, tmp_path):
    ram_dir = tag2text_dir.parent / "ram-tiny"
    zoo.link("ram-swin-large-14m", ram_dir)
    names = ["kettle", "zebra", "violin"]
    encoder = ram_open_set_encoder(ram_dir, names, tmp_path / "text-encoder")
    model = foz.load_zoo_model(
        "ram-swin-large-14m-torch",
        classes=names,
        text_encoder=str(encoder),
        device="cpu",
        exif_transpose=False,
    )
    assert model.classes == names
    ds = make_dataset([ram_dir / "images" / "a1_rgb_640x480.jpg"])
    ds.apply_model(model, "open", num_workers=0, progress=False)
    assert [c.label for c in ds.first().open_tags.classifications] == ["kettle"]


def test_zoo_grounded_model_is_used_by_segment_samples(
    zoo, grounded_dirs, tag2text_images, make_dataset
):
    zoo.link("grounded-sam-tiny-vit-base", dict(zip(["detector", "segmenter"], grounded_dirs)))
    name = "grounded-sam-tiny-vit-base-torch"
    model = foz.load_zoo_model(name, device="cpu", box_threshold=0.0, text_threshold=0.0)
    assert isinstance(model, GroundedModel) and model.segmenter.box_threshold == 0.0
    assert model.segmenter.segmenter.config.vision_config.hidden_size == 16  # the tiny SAM

    ds = make_dataset(tag2text_images[:2])
    report = segment_samples(ds, model, "grounded", classes=["dog", "cat"], batch_size=2)
    assert (report.done, report.failed) == (2, 0)
    labels = {d.label for dets in ds.values("grounded") for d in dets.detections}
    assert labels and labels <= {"dog", "cat"}


def test_zoo_dense_model_loads_clip_and_projector(zoo):
    zoo.link("tagalign-clip-vit-b16", {"clip": TAGALIGN / "clip"})
    name = "tagalign-clip-vit-b16-torch"
    model = foz.load_zoo_model(name, device="cpu", prompt_field="t2t_tags", bg_thresh=0.3)
    assert isinstance(model, DenseModel) and model.config.prompt_field == "t2t_tags"
    assert model.segmenter.projector is None and model.segmenter.settings.bg_thresh == 0.3
    assert model.segmenter.clip.config.vision_config.hidden_size < 768  # the tiny CLIP
    trained = foz.load_zoo_model(name, device="cpu", projector=str(TAGALIGN / "tagalign.pth"))
    assert trained.segmenter.projector is not None


def test_model_options_form_through_fiftyone(zoo):
    """FiftyOne's "apply zoo model" operator calls these on the registered source's module."""
    tag2text = foz.get_zoo_model("tag2text-swin-14m-torch")
    form = tag2text.resolve_input(ctx=None).type.properties
    assert {"device", "dtype", "threshold", "caption", "prompt_field"} <= set(form)
    assert form["dtype"].type.values == ["float32", "bfloat16", "float16", "int8"]
    params = {"device": "auto", "dtype": "bfloat16", "threshold": None, "prompt_field": ""}
    tag2text.parse_parameters(None, params)
    assert params == {"dtype": "bfloat16"}

    ram = foz.get_zoo_model("ram-plus-swin-large-14m-torch")
    assert "classes" in ram.resolve_input(ctx=None).type.properties
    params = {"device": "cpu", "classes": "red panda, okapi,"}
    ram.parse_parameters(None, params)
    assert params == {"device": "cpu", "classes": ["red panda", "okapi"]}

    grounded_form = foz.get_zoo_model("grounded-sam-tiny-vit-base-torch").resolve_input(None)
    assert "box_threshold" in grounded_form.type.properties
    assert "int8" not in grounded_form.type.properties["dtype"].type.values  # taggers only
    dense_form = foz.get_zoo_model("tagalign-clip-vit-b16-torch").resolve_input(None)
    assert {"prompt_field", "projector", "settings", "bg_thresh"} <= set(dense_form.type.properties)
