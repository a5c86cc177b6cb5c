"""The operators' forms, resolved with a MagicMock context over a real dataset's schema."""

from __future__ import annotations

from unittest.mock import MagicMock

import fiftyone as fo
import fiftyone.operators.types as types
import pytest
from official_files import tiny_file

from plugin import common
from plugin.auto_label import AutoLabel
from plugin.evaluate import EvaluateTags
from plugin.segment import SegmentGrounded
from plugin.tag_images import TagImages
from tag2text_zoo.assets import official


def _ctx(dataset, **params):
    ctx = MagicMock()
    ctx.params = params
    ctx.dataset = dataset
    ctx.target_view.return_value = dataset
    return ctx


def _errors(operator, ctx) -> dict[str, str]:
    props = operator.resolve_input(ctx).type.properties
    return {name: p.error_message for name, p in props.items() if p.invalid}


@pytest.fixture
def ds(make_dataset, tag2text_images):
    dets = fo.Detections(detections=[fo.Detection(label="x", bounding_box=[0, 0, 1, 1])])
    tags = fo.Classifications(classifications=[fo.Classification(label="cat")])
    return make_dataset(tag2text_images[:1], boxes=[dets], gt=[tags], note=["cloud,sky"])


@pytest.fixture
def offline(monkeypatch, plugins):
    monkeypatch.setattr(common, "online", lambda: False)


def test_tag_form_accepts_good_choices(ds, offline):
    ctx = _ctx(ds, tags_from="field", prompt_field="note", label_field="t2t")
    assert _errors(TagImages(), ctx) == {}
    ctx = _ctx(ds, tags_from="field", prompt_field="gt")
    assert _errors(TagImages(), ctx) == {}


@pytest.mark.parametrize(
    ("params", "key", "message"),
    [
        ({"tags_from": "field", "prompt_field": "nope"}, "prompt_field", "no field 'nope'"),
        ({"tags_from": "field", "prompt_field": "boxes"}, "prompt_field", "not a Classifications"),
    ],
)
def test_tag_form_field_errors(ds, offline, params, key, message):
    errors = _errors(TagImages(), _ctx(ds, **params))
    assert set(errors) == {key} and message in errors[key]


def test_tag_form_refuses_output_field_of_another_type(ds, offline):
    ds.add_sample_field("t2t_tags", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    errors = _errors(TagImages(), _ctx(ds, label_field="t2t"))
    assert errors == {"label_field": "'t2t_tags' already holds Detections; choose another name"}


def test_model_not_downloaded(ds, plugins, monkeypatch):
    monkeypatch.delenv("TAG2TEXT_ZOO_LOCAL_MODELS")
    monkeypatch.setattr(common, "online", lambda: False)
    errors = _errors(TagImages(), _ctx(ds, model="tag2text-swin-14m"))
    assert "not downloaded and there is no network" in errors["model"]
    monkeypatch.setattr(common, "online", lambda: True)
    props = TagImages().resolve_input(_ctx(ds, model="tag2text-swin-14m")).type.properties
    assert not props["model"].invalid and "downloaded on first use" in props["download"].view.label


def test_grounded_form(ds, offline, grounded_dirs, tmp_path):
    detector, sam = map(str, grounded_dirs)
    good = {"detector": detector, "segmenter": sam, "tags_from": "field", "prompt_field": "gt"}
    assert _errors(SegmentGrounded(), _ctx(ds, **good)) == {}
    bad = {**good, "segmenter": str(tmp_path / "none"), "prompt_field": "boxes"}
    errors = _errors(SegmentGrounded(), _ctx(ds, **bad))
    assert (
        errors["segmenter"] == f"{bad['segmenter']!r} is neither a folder nor a Hugging Face hub id"
    )
    assert "not a Classifications" in errors["prompt_field"]
    errors = _errors(SegmentGrounded(), _ctx(ds, **{**good, "detector": "org/not-cached"}))
    assert errors == {
        "detector": "org/not-cached is not in the Hugging Face cache and there is no network "
        "to download it"
    }
    props = SegmentGrounded().resolve_input(_ctx(ds, **good, masks_to_disk=True)).type.properties
    assert ds.name in props["mask_dir"].default
    errors = _errors(SegmentGrounded(), _ctx(ds, **good, output_field="gt"))
    assert errors == {"output_field": "'gt' already holds Classifications; choose another name"}


def test_grounded_form_takes_official_files_and_names(ds, offline, tmp_path, monkeypatch):
    sam = tiny_file("sam", tmp_path, "sam_vit_b_01ec64.pth")
    monkeypatch.setenv("TAG2TEXT_ZOO_HOME", str(tmp_path / "home"))
    good = {"segmenter": str(sam), "tags_from": "field", "prompt_field": "gt"}
    errors = _errors(SegmentGrounded(), _ctx(ds, **good, detector="groundingdino-swint-ogc"))
    assert errors == {
        "detector": "groundingdino-swint-ogc is not downloaded and there is no network: put its "
        f"files in {tmp_path / 'home' / 'groundingdino-swint-ogc'}"
    }
    monkeypatch.setattr(official, "online", lambda: True)
    assert _errors(SegmentGrounded(), _ctx(ds, **good, detector="groundingdino-swint-ogc")) == {}
    assert "groundingdino-swint-ogc" in common.DETECTORS and "sam-vit-h" in common.SEGMENTERS


def test_auto_label_form_checks_both_outputs(ds, offline, grounded_dirs):
    detector, sam = map(str, grounded_dirs)
    ds.add_sample_field("a_detections", fo.StringField)
    errors = _errors(AutoLabel(), _ctx(ds, detector=detector, segmenter=sam, label_field="a"))
    assert errors == {
        "label_field": "'a_detections' already holds StringField; choose another name"
    }


def test_evaluate_form(ds):
    assert _errors(EvaluateTags(), _ctx(ds, pred_field="gt", gt_field="gt")) == {}
    errors = _errors(EvaluateTags(), _ctx(ds, pred_field="boxes", gt_field="nope", eval_key="a b"))
    assert errors == {
        "pred_field": "field 'boxes' is not a Classifications field",
        "gt_field": "no field 'nope' in this dataset",
        "eval_key": "'a b' is not a valid field name",
    }


def test_large_views_recommend_delegation(ds, offline, monkeypatch):
    assert not common.execution_options(_ctx(ds)).default_choice_to_delegated
    monkeypatch.setattr(common, "LARGE_VIEW", 0)
    assert common.execution_options(_ctx(ds)).default_choice_to_delegated
    props = TagImages().resolve_input(_ctx(ds)).type.properties
    assert isinstance(props["large"].view, types.Warning)
    assert "delegated" in props["large"].view.label
