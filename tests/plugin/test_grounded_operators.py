"""Grounded segmentation / Auto-label on a real database with tiny random GDINO and SAM."""

from __future__ import annotations

import os

import fiftyone as fo
import numpy as np
import pytest
from data_paths import FIXTURES

from tag2text_zoo import load_grounded_segmenter, segment_samples

SMALL = [3, 4]
# Random tiny models score near 0.5: thresholds of 0 keep every box.
THRESHOLDS = {"box_threshold": 0.0, "text_threshold": 0.0, "nms_iou": 0.5}


@pytest.fixture
def grounding_params(grounded_dirs):
    detector, sam = map(str, grounded_dirs)
    return {"detector": detector, "segmenter": sam, "device": "cpu", **THRESHOLDS}


def _same(got: fo.Detections, want: fo.Detections) -> None:
    assert [d.label for d in got.detections] == [d.label for d in want.detections]
    for g, w in zip(got.detections, want.detections, strict=True):
        np.testing.assert_allclose(g.bounding_box, w.bounding_box, atol=1e-5)
        assert np.count_nonzero(g.get_mask() != w.get_mask()) <= 1e-3 * w.get_mask().size


def _cls(*labels: str) -> fo.Classifications:
    return fo.Classifications(classifications=[fo.Classification(label=x) for x in labels])


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
def test_segment_grounded_from_tags_field_matches_api(
    run_operator, make_dataset, tag2text_images, grounded_dirs, grounding_params, delegated
):
    hints = [_cls("cat", "dog"), _cls("tree")]
    ds = make_dataset([tag2text_images[i] for i in SMALL], hint=hints)
    params = {
        **grounding_params,
        "tags_from": "field",
        "prompt_field": "hint",
        "output_field": "seg",
        "batch_size": 2,
    }
    run_operator("segment_grounded", ds, params, delegated=delegated)
    segmenter = load_grounded_segmenter(*grounded_dirs, device="cpu", **THRESHOLDS)
    assert segment_samples(ds, segmenter, "want", prompt_field="hint").done == 2
    for sample, hint in zip(ds, hints, strict=True):
        assert sample.seg.detections, "thresholds of 0 must keep boxes"
        assert {d.label for d in sample.seg.detections} <= {c.label for c in hint.classifications}
        _same(sample.seg, sample.want)


def test_segment_grounded_typed_classes_masks_on_disk(
    run_operator, make_dataset, tag2text_images, grounding_params, tmp_path
):
    ds = make_dataset([tag2text_images[i] for i in SMALL])
    params = {
        **grounding_params,
        "tags_from": "typed",
        "classes": "car, tree",
        "output_field": "seg",
        "masks_to_disk": True,
        "mask_dir": str(tmp_path),
    }
    run_operator("segment_grounded", ds, params)
    dets = [d for s in ds for d in s.seg.detections]
    assert dets and {d.label for d in dets} <= {"car", "tree"}
    assert all(d.mask is None and d.mask_path.startswith(str(tmp_path)) for d in dets)
    assert all(os.path.isfile(d.mask_path) and d.get_mask().ndim == 2 for d in dets)


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
def test_auto_label_writes_tags_caption_and_detections(
    run_operator, make_dataset, tag2text_images, want, grounding_params, delegated
):
    ds = make_dataset([tag2text_images[i] for i in SMALL])
    params = {
        **grounding_params,
        "model": "tag2text-swin-14m",
        "label_field": "auto",
        "batch_size": 2,
    }
    run_operator("auto_label", ds, params, delegated=delegated)
    ds.reload()
    for sample in ds:
        ref = want[sample.filepath.split("/")[-1]]
        assert sample.auto_caption == ref["caption"]
        tags = {c.label for c in sample.auto_tags.classifications}
        assert tags == {t.strip() for t in ref["tags"]}
        labels = {d.label for d in sample.auto_detections.detections}
        assert labels and labels <= tags  # grounded phrases come from the sample's own tags


def test_auto_label_progress_covers_both_steps(
    run_in_app, make_dataset, tag2text_images, grounding_params
):
    ds = make_dataset([tag2text_images[i] for i in SMALL])
    params = {**grounding_params, "label_field": "auto", "batch_size": 1}
    messages = run_in_app("auto_label", ds, params)
    progress = [m["params"] for m in messages if m["operator_uri"] == "set_progress"]
    assert progress == [
        {"progress": 0.25, "label": "Step 1 of 2, tagging with tag2text-swin-14m: 1 / 2"},
        {"progress": 0.5, "label": "Step 1 of 2, tagging with tag2text-swin-14m: 2 / 2"},
        {"progress": 0.75, "label": "Step 2 of 2, segmenting: 1 / 2"},
        {"progress": 1.0, "label": "Step 2 of 2, segmenting: 2 / 2"},
    ]


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
@pytest.mark.parametrize("operator", ["segment_grounded", "segment_dense", "auto_label"])
def test_every_operator_names_its_failed_samples(
    run_in_app,
    run_operator,
    make_dataset,
    tag2text_images,
    grounding_params,
    tmp_path,
    operator,
    delegated,
):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    ds = make_dataset([tag2text_images[4], broken], hint=[_cls("cat"), _cls("dog")])
    params = {
        **grounding_params,
        "tags_from": "field",
        "prompt_field": "hint",
        "clip": str(FIXTURES / "tagalign-tiny" / "clip"),
        "output_field": "out",
        "label_field": "out",
    }
    if delegated:
        report = run_operator(operator, ds, params, delegated=True)
    else:
        report = run_in_app(operator, ds, params)[-2]["params"]["results"]
    bad = ds[str(broken)].id
    lines = report["summary"].splitlines()
    assert lines and all(line.endswith(": 1 done, 0 skipped, 1 failed") for line in lines)
    assert f"`sample {bad}: {broken}: not a readable image" in report["failures"]
    assert ds.load_saved_view("out failed").values("id") == [bad]
