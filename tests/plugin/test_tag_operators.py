"""Tag and caption images / Evaluate tags, run on a real database, now and delegated."""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
import pytest

from tag2text_zoo.fo.evaluate import evaluate_tags

SMALL = [3, 4]  # small images without EXIF orientation (the reference ignores it)


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
def test_tag_images_writes_reference_tags_and_captions(
    run_operator, make_dataset, tag2text_images, want, delegated
):
    ds = make_dataset([tag2text_images[i] for i in SMALL])
    params = {"model": "tag2text-swin-14m", "label_field": "t2t", "batch_size": 2,
              "device": "cpu"}  # fmt: skip
    run_operator("tag_images", ds, params, delegated=delegated)
    ds.reload()
    for sample in ds:
        ref = want[Path(sample.filepath).name]
        assert sample.t2t_caption == ref["caption"]
        assert {c.label for c in sample.t2t_tags.classifications} == {
            t.strip() for t in ref["tags"]
        }


def test_tag_images_typed_tags_selected_samples_and_skip(
    run_operator, make_dataset, tag2text_images, tag2text_dir
):
    from tag2text_zoo import load_tagger

    ds = make_dataset([tag2text_images[i] for i in SMALL])
    first, second = ds.values("id")
    params = {"label_field": "cap", "tags_from": "typed", "specified_tags": "cloud,sky",
              "device": "cpu", "view_target": "SELECTED_SAMPLES"}  # fmt: skip
    run_operator("tag_images", ds, params, selected=[first])
    assert ds.exists("cap_caption").values("id") == [first]  # only the selection
    steered = ds[first].cap_caption
    tagger = load_tagger(tag2text_dir, device="cpu")
    assert steered == tagger.predict([ds[first].filepath], ["cloud,sky"])[0].caption

    sample = ds[first]
    sample.cap_caption = "kept"
    sample.save()
    run_operator("tag_images", ds, {**params, "view_target": "DATASET"})
    assert ds[first].cap_caption == "kept"  # skipped: it already had tags
    assert ds[second].cap_caption is not None
    run_operator("tag_images", ds, {**params, "view_target": "DATASET", "skip_existing": False})
    assert ds[first].cap_caption == steered


def _cls(*labels: str) -> fo.Classifications:
    return fo.Classifications(classifications=[fo.Classification(label=x) for x in labels])


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
def test_evaluate_tags_reports_and_stores_counts(run_operator, make_dataset, tag2text_images,
                                                 delegated):  # fmt: skip
    ds = make_dataset(tag2text_images[:2], gt=[_cls("dog"), _cls("cat")],
                      pred=[_cls("dog", "sky"), _cls("dog")])  # fmt: skip
    params = {"pred_field": "pred", "gt_field": "gt", "eval_key": "ev"}
    out = run_operator("evaluate_tags", ds, params, delegated=delegated)
    direct = evaluate_tags(ds, "pred", "gt")
    assert out == {"mAP": direct.mAP, "report": direct.report()}
    assert "mAP 0.500" in out["report"]  # dog and cat: one positive among two tied scores
    assert ds.values("ev_tp") == [1, 0] and ds.values("ev_fp") == [1, 1]
