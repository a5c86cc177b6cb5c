"""segment_dense on a FiftyOne dataset: consistent mask targets, heatmaps, resume; and mIoU."""

from __future__ import annotations

import json

import fiftyone as fo
import numpy as np
import pytest
from data_paths import FIXTURES

from tag2text_zoo import (
    evaluate_dense_segmentations,
    heatmap_field,
    load_dense_segmenter,
    segment_dense,
)

TINY = FIXTURES / "tagalign-tiny"
pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEMS = ["square_200x200", "street_500x375", "indoor_300x448"]  # tag sets differ, "person" twice


@pytest.fixture(scope="module")
def segmenter():
    return load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", device="cpu")


@pytest.fixture(scope="module")
def segmented(segmenter):
    classes = json.loads((TINY / "classes.json").read_text())
    dataset = fo.Dataset()
    for stem in STEMS:
        tags = fo.Classifications(
            classifications=[fo.Classification(label=c) for c in classes[f"{stem}.png"]]
        )
        dataset.add_sample(fo.Sample(filepath=str(TINY / f"images/{stem}.png"), tags_pred=tags))
    report = segment_dense(
        dataset, segmenter, "seg", prompt_field="tags_pred", heatmaps=["person"], batch_size=2
    )
    assert (report.done, report.skipped, report.failed) == (3, 0, 0)
    targets = dataset.mask_targets["seg"]
    direct = segmenter.predict(
        [TINY / f"images/{s}.png" for s in STEMS], [classes[f"{s}.png"] for s in STEMS]
    )
    yield dataset, targets, direct
    dataset.delete()


def test_masks_decode_to_engine_labels_with_one_target_map(segmented):
    dataset, targets, direct = segmented
    assert dataset.mask_targets["seg"] == targets
    assert targets[0] == "background" and len(set(targets.values())) == len(targets)
    for sample, result in zip(dataset, direct):
        names = np.array(["background", *result.classes])
        decoded = np.vectorize(targets.get)(sample["seg"].get_mask())
        np.testing.assert_array_equal(decoded, names[result.labels])


def test_heatmaps_only_for_requested_classes(segmented):
    dataset, _, direct = segmented
    field = heatmap_field("seg", "person")
    assert dataset.first()[field] is None  # the square image has no "person"
    for sample, result in list(zip(dataset, direct))[1:]:
        k = result.classes.index("person")
        np.testing.assert_allclose(sample[field].map, result.scores[k])
    assert not any(f.startswith("seg_heatmap_") and f != field for f in dataset.get_field_schema())


def test_miou_through_fiftyone_with_class_mapping(segmented):
    dataset, targets, _ = segmented
    # ground truth in its own vocabulary and ids: "human" for "person", ids shuffled
    gt_names = {name: ("human" if name == "person" else name) for name in targets.values()}
    gt_targets = {
        i: n for i, n in enumerate(["background", *sorted(set(gt_names.values()) - {"background"})])
    }
    gt_ids = {n: i for i, n in gt_targets.items()}
    human = gt_ids["human"]
    for sample in dataset:
        pred = sample["seg"].get_mask()
        gt = np.vectorize(lambda v: gt_ids[gt_names[targets[v]]])(pred).astype(np.uint8)
        if sample.filepath.endswith("street_500x375.png"):
            # make "human" half-wrong: a checkerboard of its pixels is background in truth
            gt[(gt == human) & (np.indices(gt.shape).sum(0) % 2 == 0)] = 0
        sample["truth"] = fo.Segmentation(mask=gt)
        sample.save()
    dataset.mask_targets = {**dataset.mask_targets, "truth": gt_targets}
    dataset.save()

    matched = evaluate_dense_segmentations(dataset, "seg", "truth", mapping={"person": "human"})
    person = next(i for i, n in targets.items() if n == "person")
    truth = [s["truth"].get_mask() == human for s in dataset]
    pred = [s["seg"].get_mask() == person for s in dataset]
    inter = sum((t & p).sum() for t, p in zip(truth, pred))
    union = sum((t | p).sum() for t, p in zip(truth, pred))
    assert 0 < inter < union
    assert matched.iou["human"] == pytest.approx(inter / union)
    assert all(v == 1.0 for k, v in matched.iou.items() if k not in ("human", "background"))
    assert matched.miou == pytest.approx(np.mean(list(matched.iou.values())))

    unmapped = evaluate_dense_segmentations(dataset, "seg", "truth")
    assert unmapped.iou["human"] == 0.0 and unmapped.miou < matched.miou


class _Stop(KeyboardInterrupt):
    """Stands for Ctrl-C between two batches."""


def test_stopped_run_keeps_a_valid_target_map_and_resumes(segmenter, make_dataset, tmp_path):
    classes = json.loads((TINY / "classes.json").read_text())
    paths = [TINY / f"images/{stem}.png" for stem in STEMS]
    ds = make_dataset(paths, hint=[",".join(classes[p.name]) for p in paths])

    def stop_after_first_batch(done, total):
        if done < total:
            raise _Stop

    with pytest.raises(_Stop):
        segment_dense(
            ds,
            segmenter,
            "seg",
            prompt_field="hint",
            batch_size=2,
            num_workers=0,
            progress=stop_after_first_batch,
            mask_dir=str(tmp_path),
        )
    written = ds.exists("seg")
    assert len(written) == 2
    targets = ds.mask_targets["seg"]
    assert all(set(np.unique(s.seg.get_mask())) <= set(targets) for s in written)

    report = segment_dense(ds, segmenter, "seg", prompt_field="hint", mask_dir=str(tmp_path))
    assert (report.done, report.skipped) == (1, 2)
    final = ds.mask_targets["seg"]
    assert {v: n for v, n in final.items() if v in targets} == targets
    for sample, result in zip(ds, segmenter.predict(paths, [classes[p.name] for p in paths])):
        assert sample.seg.mask is None and sample.seg.mask_path.startswith(str(tmp_path))
        names = np.array(["background", *result.classes])
        decoded = np.vectorize(final.get)(sample.seg.get_mask())
        np.testing.assert_array_equal(decoded, names[result.labels])
