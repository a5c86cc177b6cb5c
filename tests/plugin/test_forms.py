"""The operators' forms, resolved with a MagicMock context over a real dataset's schema (and, where
the dataset's execution store matters, as the App's server resolves them)."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import MagicMock

import fiftyone as fo
import fiftyone.operators.types as types
import pytest
import yaml
from official_files import tiny_file

from plugin import OPERATORS, common, model_pickers
from plugin.auto_label import AutoLabel
from plugin.evaluate import EvaluateTags
from plugin.segment import SegmentGrounded
from plugin.segment_dense import SegmentDense
from plugin.tag_images import TAGS_FROM, TagImages
from plugin.tag_open_set import TagOpenSet
from tag2text_zoo import defaults, label_samples, load_tagger
from tag2text_zoo.assets import hub, official
from tag2text_zoo.assets.download import LOCAL_MODELS_ENV

REPO = Path(__file__).resolve().parents[2]


def _ctx(dataset, **params):
    ctx = MagicMock()
    ctx.params = params
    ctx.dataset = dataset
    ctx.target_view.return_value = dataset
    return ctx


def _props(operator, ctx) -> dict[str, types.Property]:
    return operator.resolve_input(ctx).type.properties


def _errors(operator, ctx) -> dict[str, str]:
    return {name: p.error_message for name, p in _props(operator, ctx).items() if p.invalid}


def _choices(prop: types.Property) -> dict[str, str]:
    return {c.value: c.label for c in prop.view.choices}


@pytest.fixture
def ds(make_dataset, tag2text_images):
    dets = fo.Detections(detections=[fo.Detection(label="x", bounding_box=[0, 0, 1, 1])])
    tags = fo.Classifications(classifications=[fo.Classification(label="cat")])
    return make_dataset(tag2text_images[:1], boxes=[dets], gt=[tags], note=["cloud,sky"])


@pytest.fixture
def offline(monkeypatch, plugins):
    monkeypatch.setattr(model_pickers, "online", lambda: False)
    monkeypatch.setattr(hub, "online", lambda: False)
    monkeypatch.setattr(official, "online", lambda: False)


@pytest.fixture
def local(plugins) -> Path:
    import os

    return Path(os.environ[LOCAL_MODELS_ENV])


def test_every_operator_is_listed_described_and_labels_its_choices(ds, offline):
    listed = yaml.safe_load((REPO / "fiftyone.yml").read_text())["operators"]
    assert listed == [op().config.name for op in OPERATORS]
    for op in OPERATORS:
        assert len(op().config.description) > 30, op
    choices = _choices(_props(TagImages(), _ctx(ds))["tags_from"])
    assert choices == TAGS_FROM and all(value != label for value, label in choices.items())


def test_tag_form_accepts_good_choices(ds, offline):
    ctx = _ctx(ds, tags_from="field", prompt_field="note", label_field="t2t")
    assert _errors(TagImages(), ctx) == {}
    assert _errors(TagImages(), _ctx(ds, tags_from="field", prompt_field="gt")) == {}


@pytest.mark.parametrize(
    ("prompt_field", "message"),
    [("nope", "no field 'nope' in this dataset"), ("boxes", "field 'boxes' cannot hold tags")],
)
def test_tag_form_field_errors(ds, offline, prompt_field, message):
    errors = _errors(TagImages(), _ctx(ds, tags_from="field", prompt_field=prompt_field))
    assert set(errors) == {"prompt_field"} and errors["prompt_field"].startswith(message)


def test_tags_field_picker_offers_only_fields_of_tags_newest_tagger_output_first(
    ds, offline, tag2text_dir
):
    ds.compute_metadata()  # metadata.mime_type and friends: subfields, never offered
    ds.add_sample_field("words", fo.ListField, subfield=fo.StringField)
    tagger = load_tagger(tag2text_dir, device="cpu")
    assert label_samples(ds, tagger, "t2t", num_workers=0).done == 1
    for operator in (SegmentGrounded(), SegmentDense()):
        picker = _props(operator, _ctx(ds))["prompt_field"]
        assert list(_choices(picker)) == ["t2t_tags", "gt", "note", "words"]
        assert picker.default == "t2t_tags"
    picker = _props(EvaluateTags(), _ctx(ds))
    assert list(_choices(picker["pred_field"])) == ["t2t_tags", "gt"]
    assert (picker["pred_field"].default, picker["gt_field"].default) == ("t2t_tags", "gt")


def test_tag_form_refuses_output_field_of_another_type(ds, offline):
    ds.add_sample_field("t2t_tags", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    errors = _errors(TagImages(), _ctx(ds, label_field="t2t"))
    assert errors == {"label_field": "'t2t_tags' already holds Detections; choose another name"}


def test_missing_tagger_says_what_to_do_and_offers_installed_ones(ds, local, monkeypatch):
    monkeypatch.setattr(model_pickers, "online", lambda: False)
    props = _props(TagImages(), _ctx(ds, model="ram-plus-swin-large-14m"))
    labels = _choices(props["model"])
    assert labels["tag2text-swin-14m"] == "tag2text-swin-14m (installed)"
    assert labels["ram-plus-swin-large-14m"] == "ram-plus-swin-large-14m (3.0 GB download)"
    assert props["model"].error_message == (
        "ram-plus-swin-large-14m is not on this machine and there is no network to download it "
        "(3.0 GB)"
    )
    how_to = props["model_how_to"].view.description
    assert how_to.startswith(
        "Put the model directory of ram-plus-swin-large-14m in "
        "$TAG2TEXT_ZOO_LOCAL_MODELS/ram-plus-swin-large-14m "
        f"(= {local / 'ram-plus-swin-large-14m'}) or in "
    )
    assert how_to.endswith("Installed tagging models: tag2text-swin-14m, ram-swin-large-14m.")
    monkeypatch.setattr(model_pickers, "online", lambda: True)
    props = _props(TagImages(), _ctx(ds, model="ram-plus-swin-large-14m"))
    assert not props["model"].invalid
    assert props["plan"].view.label == (
        "Will process 1 of 1 samples; first downloads ram-plus-swin-large-14m (3.0 GB)."
    )


def test_plan_counts_the_samples_to_process_and_skip(make_dataset, tag2text_images, offline):
    tags = fo.Classifications(classifications=[fo.Classification(label="cat")])
    ds = make_dataset(tag2text_images[:3], t2t_tags=[tags, None, None])
    plan = _props(TagImages(), _ctx(ds))["plan"].view.label
    assert plan == "Will process 2 of 3 samples and skip 1 that already have t2t_tags."
    plan = _props(TagImages(), _ctx(ds, skip_existing=False))["plan"].view.label
    assert plan == "Will process 3 of 3 samples."


def test_grounded_form(ds, offline, local, tmp_path):
    pair = local / "grounded-sam-tiny-vit-base"
    detector, sam = str(pair / "detector"), str(pair / "segmenter")
    props = _props(SegmentGrounded(), _ctx(ds))  # offline: the installed pair is preselected
    assert (props["detector"].default, props["segmenter"].default) == (detector, sam)
    assert (
        _choices(props["segmenter"])[sam] == "grounded-sam-tiny-vit-base/segmenter (local folder)"
    )
    assert _choices(props["segmenter"])["facebook/sam-vit-huge"] == (
        "facebook/sam-vit-huge (2.6 GB download)"
    )
    good = {"detector": detector, "segmenter": sam, "tags_from": "field", "prompt_field": "gt"}
    assert _errors(SegmentGrounded(), _ctx(ds, **good)) == {}
    bad = {**good, "segmenter": str(tmp_path / "none"), "prompt_field": "boxes"}
    errors = _errors(SegmentGrounded(), _ctx(ds, **bad))
    assert (
        errors["segmenter"] == f"{bad['segmenter']!r} is neither a folder nor a Hugging Face hub id"
    )
    how_to = _props(SegmentGrounded(), _ctx(ds, **bad))["segmenter_how_to"].view.description
    assert how_to == (
        "Choose an installed model (grounded-sam-tiny-vit-base/segmenter (local folder)) or give "
        "a local folder in transformers format, such as "
        f"$TAG2TEXT_ZOO_LOCAL_MODELS/grounded-sam-tiny-vit-base/segmenter (= {sam}), "
        "or an official checkpoint file."
    )
    assert errors["prompt_field"].startswith("field 'boxes' cannot hold tags")
    errors = _errors(SegmentGrounded(), _ctx(ds, **{**good, "detector": defaults.DETECTOR}))
    assert errors["detector"] == (
        "IDEA-Research/grounding-dino-tiny is not in the Hugging Face cache and there is no "
        "network to download it (0.7 GB)"
    )
    props = _props(SegmentGrounded(), _ctx(ds, **good, masks_to_disk=True))
    assert ds.name in props["mask_dir"].default
    errors = _errors(SegmentGrounded(), _ctx(ds, **good, output_field="gt"))
    assert errors == {"output_field": "'gt' already holds Classifications; choose another name"}


def test_grounded_form_takes_official_files_and_names(ds, offline, local, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TAG2TEXT_ZOO_HOME", str(home))
    tiny_file("sam", home / "sam-vit-b", "sam_vit_b_01ec64.pth")  # a downloaded catalogue file
    sam = tiny_file("sam", tmp_path, "my_sam.pth")
    good = {"segmenter": str(sam), "tags_from": "field", "prompt_field": "gt"}
    props = _props(SegmentGrounded(), _ctx(ds, **good))
    detectors, segmenters = _choices(props["detector"]), _choices(props["segmenter"])
    assert detectors["groundingdino-swint-ogc"] == "groundingdino-swint-ogc (0.7 GB download)"
    assert segmenters["sam-vit-b"] == "sam-vit-b (official checkpoint, downloaded)"
    assert segmenters["sam2.1-hiera-large"] == "sam2.1-hiera-large (0.9 GB download)"
    assert "sam-vit-h" not in detectors and "groundingdino-swint-ogc" not in segmenters
    assert _errors(SegmentGrounded(), _ctx(ds, **{**good, "segmenter": "sam-vit-b"})) == {}
    errors = _errors(SegmentGrounded(), _ctx(ds, **good, detector="groundingdino-swint-ogc"))
    assert errors == {  # offline, and neither downloaded nor in the local models folder
        "detector": "groundingdino-swint-ogc is not downloaded and there is no network: put its "
        f"files in {home / 'groundingdino-swint-ogc'} (0.7 GB)"
    }
    monkeypatch.setattr(official, "online", lambda: True)
    props = _props(SegmentGrounded(), _ctx(ds, **good, detector="groundingdino-swint-ogc"))
    assert not any(p.invalid for p in props.values())
    assert props["plan"].view.label.endswith("; first downloads groundingdino-swint-ogc (0.7 GB).")


def test_grounded_form_without_installed_models_explains(ds, offline, monkeypatch, tmp_path):
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(tmp_path))
    props = _props(SegmentGrounded(), _ctx(ds))
    assert props["segmenter"].default == "facebook/sam-vit-base"
    assert props["segmenter"].error_message.endswith("(0.4 GB)")
    assert props["segmenter_how_to"].view.description == (
        "Choose an installed model (none found) or give a local folder in transformers format, "
        "such as $TAG2TEXT_ZOO_LOCAL_MODELS/grounded-sam-tiny-vit-base/segmenter "
        f"(= {tmp_path / 'grounded-sam-tiny-vit-base' / 'segmenter'}), or an official "
        "checkpoint file."
    )


def test_dense_form(ds, offline, local, tmp_path):
    clip = str(local / "tagalign-clip-vit-b16" / "clip")
    props = _props(SegmentDense(), _ctx(ds))
    assert props["clip"].default == clip and props["prompt_field"].default == "gt"
    assert _errors(SegmentDense(), _ctx(ds, clip=clip)) == {}
    errors = _errors(
        SegmentDense(), _ctx(ds, clip=clip, projector=str(tmp_path / "x.pth"), output_field="gt")
    )
    assert errors == {
        "projector": f"no file {tmp_path / 'x.pth'}",
        "output_field": "'gt' already holds Classifications; choose another name",
    }


def test_open_set_form(ds, offline, local):
    props = _props(TagOpenSet(), _ctx(ds))
    assert list(_choices(props["model"])) == ["ram-swin-large-14m", "ram-plus-swin-large-14m"]
    assert props["model"].default == "ram-swin-large-14m"  # the installed one
    assert props["text_encoder"].default == str(local / "tagalign-clip-vit-b16" / "clip")
    errors = _errors(TagOpenSet(), _ctx(ds, model="tag2text-swin-14m"))
    assert errors["model"] == (
        "'tag2text-swin-14m' is not one of ram-swin-large-14m, ram-plus-swin-large-14m"
    )
    errors = _errors(TagOpenSet(), _ctx(ds, vocabulary="cat, dog, cat", text_encoder="nope/x"))
    assert errors["vocabulary"] == "each tag may appear only once"
    assert errors["text_encoder"].startswith("nope/x is not in the Hugging Face cache")


def test_model_families_are_those_the_loaders_accept():
    from transformers import CLIPConfig, CLIPTextConfig, GroundingDinoConfig

    from tag2text_zoo.engines.sam_family import FAMILIES

    assert model_pickers.DETECTOR_TYPES == (GroundingDinoConfig.model_type,)
    assert set(model_pickers.SEGMENTER_TYPES) == set(FAMILIES)
    assert model_pickers.CLIP_TYPES == (CLIPConfig.model_type,)
    assert model_pickers.TEXT_ENCODER_TYPES == (CLIPConfig.model_type, CLIPTextConfig.model_type)


def test_classes_are_typed_where_the_dataset_has_no_tags(make_dataset, tag2text_images, offline):
    ds = make_dataset(tag2text_images[:1])
    props = _props(SegmentDense(), _ctx(ds))
    assert props["tags_from"].default == "typed" and "classes" in props
    assert "prompt_field" not in props


def test_auto_label_form_checks_both_outputs(ds, offline):
    ds.add_sample_field("a_detections", fo.StringField)
    errors = _errors(AutoLabel(), _ctx(ds, label_field="a"))
    assert errors == {
        "label_field": "'a_detections' already holds StringField; choose another name"
    }


def test_evaluate_form(ds):
    assert _errors(EvaluateTags(), _ctx(ds, pred_field="gt", gt_field="gt")) == {}
    errors = _errors(EvaluateTags(), _ctx(ds, pred_field="boxes", gt_field="nope", eval_key="a b"))
    assert errors == {
        "pred_field": "field 'boxes' cannot hold tags: choose a Classifications field",
        "gt_field": "no field 'nope' in this dataset",
        "eval_key": "'a b' is not a valid field name",
    }


def test_large_views_recommend_delegation(ds, offline, monkeypatch):
    assert not common.execution_options(_ctx(ds)).default_choice_to_delegated
    monkeypatch.setattr(common, "LARGE_VIEW", 0)
    assert common.execution_options(_ctx(ds)).default_choice_to_delegated
    props = _props(TagImages(), _ctx(ds))
    assert isinstance(props["large"].view, types.Warning)
    assert "delegated" in props["large"].view.label
