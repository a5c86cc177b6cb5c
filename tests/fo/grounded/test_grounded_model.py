"""GroundedModel / segment_samples on a real embedded database with tiny random GDINO + SAM."""

from __future__ import annotations

import shutil

import fiftyone as fo
import numpy as np
import pytest
import torch
from PIL import Image

from tag2text_zoo import (
    GroundedModel,
    GroundedModelConfig,
    load_grounded_segmenter,
    segment_samples,
    to_detections,
)
from tag2text_zoo.cli import main

TAGS = [["cat", "dog"], ["a red car", "tree"], [], ["sky", "cat"], ["dog"]]
SIZES = [(80, 60), (40, 50), (80, 60), (80, 60), (64, 64)]


@pytest.fixture(scope="module")
def segmenter(grounded_dirs):
    return load_grounded_segmenter(
        *grounded_dirs, device="cpu", box_threshold=0.0, text_threshold=0.0, batch_size=2
    )


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grounded-images")
    paths = []
    for i, (w, h) in enumerate(SIZES):
        pixels = np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)
        paths.append(folder / f"im{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


def _as_classifications(tags):
    return fo.Classifications(classifications=[fo.Classification(label=t) for t in tags])


def _assert_same(got: fo.Detections, want: fo.Detections):
    assert [d.label for d in got.detections] == [d.label for d in want.detections]
    for g, w in zip(got.detections, want.detections, strict=True):
        np.testing.assert_allclose(g.bounding_box, w.bounding_box, atol=1e-5)
        np.testing.assert_allclose([g.confidence, g.sam_iou], [w.confidence, w.sam_iou], atol=1e-5)
        assert g.get_mask().shape == w.mask.shape
        assert np.count_nonzero(g.get_mask() != w.mask) <= 1e-3 * w.mask.size


def _alone(segmenter, path, tags):
    (result,) = segmenter.segment([path], [tags])
    return to_detections(result, result.image_size)


def test_apply_model_batches_match_engine_per_image(segmenter, images, make_dataset):
    ds = make_dataset(images, hint=[_as_classifications(t) for t in TAGS])
    model = GroundedModel(segmenter, GroundedModelConfig(prompt_field="hint"))
    ds.apply_model(model, "grounded", batch_size=3, num_workers=0, progress=False)
    for sample, path, tags in zip(ds, images, TAGS, strict=True):
        _assert_same(sample.grounded, _alone(segmenter, path, tags))
        assert {d.label for d in sample.grounded.detections} <= set(tags)
    assert len(ds.first().grounded.detections) > 0
    assert ds.skip(2).first().grounded.detections == []  # empty tag set -> empty Detections
    assert model.failures == []


def test_list_field_and_string_field_prompts(segmenter, images, make_dataset):
    ds = make_dataset(images[:2], words=TAGS[:2], text=[",".join(t) for t in TAGS[:2]])
    assert segment_samples(ds, segmenter, "by_list", prompt_field="words", progress=False).done == 2
    assert segment_samples(ds, segmenter, "by_text", prompt_field="text", batch_size=1).done == 2
    for sample, path, tags in zip(ds, images[:2], TAGS[:2], strict=True):
        want = _alone(segmenter, path, tags)
        _assert_same(sample.by_list, want)
        _assert_same(sample.by_text, want)


def test_fixed_classes_and_resume(segmenter, images, make_dataset, monkeypatch):
    ds = make_dataset(images)
    ids = ds.values("id")
    seen = []
    report = segment_samples(
        ds.select(ids[:2]),
        segmenter,
        "fixed",
        classes=["tree", "car"],
        progress=lambda d, t: seen.append((d, t)),
    )
    assert report.done == 2 and seen == [(2, 2)]
    calls = []
    segment = segmenter.segment
    counted = lambda im, *a: calls.append(len(im)) or segment(im, *a)  # noqa: E731
    monkeypatch.setattr(segmenter, "segment", counted)
    report = segment_samples(ds, segmenter, "fixed", classes=["tree", "car"], batch_size=2)
    monkeypatch.undo()
    assert (report.done, report.skipped, report.failed) == (3, 2, 0)
    assert sum(calls) == 3  # only the samples still missing the field
    for sample, path in zip(ds, images, strict=True):
        _assert_same(sample.fixed, _alone(segmenter, path, ["tree", "car"]))
    assert segment_samples(ds, segmenter, "fixed", classes=["tree"]).done == 0


def test_mask_pngs_reload_to_the_same_masks(segmenter, images, make_dataset, tmp_path):
    ds = make_dataset(images[:2], hint=TAGS[:2])
    segment_samples(ds, segmenter, "in_db", prompt_field="hint")
    segment_samples(ds, segmenter, "on_disk", prompt_field="hint", mask_dir=str(tmp_path))
    written = sorted(tmp_path.rglob("*.png"))
    assert len(written) == sum(len(s.on_disk.detections) for s in ds) > 0
    for sample in ds:
        for db, disk in zip(sample.in_db.detections, sample.on_disk.detections, strict=True):
            assert disk.mask is None and disk.mask_path.startswith(str(tmp_path))
            np.testing.assert_array_equal(disk.get_mask() > 0, db.mask)


def test_semantic_segmentation_keeps_mask_targets_consistent(segmenter, images, make_dataset):
    ds = make_dataset(images[:2], hint=TAGS[:2])
    ds.mask_targets = {"sem": {1: "tree"}}
    ds.save()
    segment_samples(ds, segmenter, "dets", prompt_field="hint", semantic_field="sem")
    targets = ds.mask_targets["sem"]
    assert targets[1] == "tree" and sorted(targets) == list(range(len(targets)))
    labels = {d.label for s in ds for d in s.dets.detections}
    assert set(targets.values()) == labels | {"tree", "background"}
    for sample in ds:
        best = {}  # each labelled pixel holds the class of a detection covering it
        values = set(np.unique(sample.sem.mask)) - {0}
        for d in sample.dets.detections:
            best.setdefault(d.label, d)
        assert {targets[v] for v in values} <= set(best)
    ds.set_values("hint", [["bird"], ["cat"]])  # a second run only adds new classes
    segment_samples(ds, segmenter, "dets2", prompt_field="hint", semantic_field="sem")
    assert {k: v for k, v in ds.mask_targets["sem"].items() if k in targets} == targets


def test_tagger_in_the_same_pass(segmenter, tagger, tag2text_images, make_dataset):
    paths = tag2text_images[3:5]
    ds = make_dataset(paths)
    model = GroundedModel(segmenter, GroundedModelConfig(exif_transpose=False), tagger)
    ds.apply_model(model, "grounded", batch_size=2, num_workers=0)
    for sample, path, result in zip(ds, paths, tagger.predict(paths), strict=True):
        assert result.tags
        _assert_same(sample.grounded, _alone(segmenter, path, result.tags))


def test_bad_sources_refused_before_work(segmenter, images, make_dataset):
    ds = make_dataset(images[:1], boxes=[fo.Detections()])
    with pytest.raises(ValueError, match="prompt_field, classes or a tagger"):
        segment_samples(ds, segmenter, "g")
    with pytest.raises(ValueError, match="'boxes' is a Detections"):
        segment_samples(ds, segmenter, "g", prompt_field="boxes")
    assert not ds.has_field("g")


def test_cli_ground_directory_with_fixed_classes(segmenter, grounded_dirs, images, tmp_path):
    folder = tmp_path / "street"
    folder.mkdir()
    shutil.copy(images[0], folder)
    args = [
        "ground",
        str(folder),
        "--detector",
        str(grounded_dirs[0]),
        "--segmenter",
        str(grounded_dirs[1]),
        "--classes",
        "car, tree",
        "--label-field",
        "g",
        "--device",
        "cpu",
        "--box-threshold",
        "0",
        "--text-threshold",
        "0",
        "--semantic-field",
        "g_sem",
    ]
    try:
        assert main(args) == 0
        ds = fo.load_dataset("street")
        _assert_same(ds.first().g, _alone(segmenter, images[0], ["car", "tree"]))
        assert ds.mask_targets["g_sem"] == {0: "background", 1: "car", 2: "tree"}
        assert main(args) == 0 and len(ds) == 1  # resumes: nothing left
        with pytest.raises(SystemExit):  # one tag source is required
            main(args[:6])
    finally:
        if fo.dataset_exists("street"):
            fo.delete_dataset("street")


def test_predict_on_images_directly(segmenter, images, tmp_path):
    """Without a dataset: paths go straight to the model, fixed classes, bad files reported."""
    model = GroundedModel(segmenter, GroundedModelConfig(classes=["dog", "grass"]))
    missing = tmp_path / "missing.png"
    got = model.predict_all([images[0], missing])
    _assert_same(got[0], _alone(segmenter, images[0], ["dog", "grass"]))
    assert got[1] is None and model.failures[-1].filepath == str(missing)
    assert "missing.png: no such image file" in model.failures[-1].reason


def test_embeddings_come_from_the_tagger(segmenter, images, make_dataset, tagger):
    ds = make_dataset(images[:3])
    alone = GroundedModel(segmenter, GroundedModelConfig(classes=["dog"]))
    assert not alone.has_embeddings
    with pytest.raises(ValueError, match="must expose embeddings"):
        ds.compute_embeddings(alone)
    tagged = GroundedModel(segmenter, tagger=tagger)
    embeddings = ds.compute_embeddings(tagged, batch_size=2, num_workers=0, progress=False)
    expected = tagger.embed_tensors(torch.stack([tagger.preprocess(p) for p in images[:3]]))
    np.testing.assert_allclose(embeddings, expected.numpy(), atol=1e-5)
