"""Tag and caption images / Evaluate tags, run on a real database, now and delegated."""

from __future__ import annotations

import shutil
from pathlib import Path

import fiftyone as fo
import pytest

from tag2text_zoo import evaluate_tags

SMALL = [3, 4]  # small images without EXIF orientation (the reference ignores it)


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
def test_tag_images_writes_reference_tags_and_captions(
    run_operator, make_dataset, tag2text_images, want, delegated
):
    ds = make_dataset([tag2text_images[i] for i in SMALL])
    params = {"model": "tag2text-swin-14m", "label_field": "t2t", "batch_size": 2, "device": "cpu"}
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
    params = {
        "label_field": "cap",
        "tags_from": "typed",
        "specified_tags": "cloud,sky",
        "device": "cpu",
        "view_target": "SELECTED_SAMPLES",
    }
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


def test_failed_sample_is_reported_in_the_app_and_when_delegated(
    run_in_app, run_operator, make_dataset, tag2text_images, want, tmp_path
):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    ds = make_dataset([tag2text_images[4], broken])
    bad_id = ds[str(broken)].id
    params = {"model": "tag2text-swin-14m", "label_field": "t2t", "device": "cpu"}

    messages = run_in_app("tag_images", ds, params)
    operators = [m["operator_uri"] for m in messages]
    assert operators[-2:] == ["show_output", "reload_dataset"]
    progress = [m["params"] for m in messages if m["operator_uri"] == "set_progress"]
    assert progress[-1] == {"progress": 1.0, "label": "Tagging with tag2text-swin-14m: 2 / 2"}
    report = messages[-2]["params"]["results"]
    assert report["summary"] == "- Tagging with tag2text-swin-14m: 1 done, 0 skipped, 1 failed"
    assert f"`sample {bad_id}: {broken}: not a readable image" in report["failures"]
    good = ds[str(tag2text_images[4])]
    assert good.t2t_caption == want[tag2text_images[4].name]["caption"]

    # The failed samples are a saved view, named in the report.
    assert "The saved view **t2t failed**" in report["failures"]
    assert ds.load_saved_view("t2t failed").values("id") == [bad_id]

    # Delegated, the report is the operation's result; the good sample is not redone.
    result = run_operator("tag_images", ds, params, delegated=True)
    assert result["summary"] == "- Tagging with tag2text-swin-14m: 0 done, 1 skipped, 1 failed"
    assert bad_id in result["failures"] and "**t2t failed**" in result["failures"]

    # Repaired, the sample is labelled and the view of failures goes away.
    shutil.copy(tag2text_images[3], broken)
    result = run_operator("tag_images", ds, params, delegated=True)
    assert result == {
        "summary": "- Tagging with tag2text-swin-14m: 1 done, 1 skipped, 0 failed",
        "failures": "none",
    }
    assert not ds.has_saved_view("t2t failed")


def test_last_choices_are_the_next_forms_defaults_on_that_dataset(
    run_operator, resolve_form, make_dataset, tag2text_images
):
    ds, other = make_dataset(tag2text_images[4:5]), make_dataset(tag2text_images[4:5])
    form = resolve_form("tag_images", ds)
    assert (form["label_field"].default, form["tags_from"].default) == ("t2t", "model")
    params = {
        "label_field": "mine",
        "tags_from": "typed",
        "specified_tags": "cloud,sky",
        "threshold": 0.6,
        "batch_size": 3,
        "device": "cpu",
    }
    run_operator("tag_images", ds, params)
    form = resolve_form("tag_images", ds)
    defaults = {key: form[key].default for key in params}
    assert defaults == params
    assert resolve_form("tag_images", other)["label_field"].default == "t2t"  # per dataset
    assert "Will process 0 of 1 samples and skip 1" in form["plan"].view.label


def _cls(*labels: str) -> fo.Classifications:
    return fo.Classifications(classifications=[fo.Classification(label=x) for x in labels])


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
def test_evaluate_tags_reports_and_stores_counts(
    run_operator, make_dataset, tag2text_images, delegated
):
    ds = make_dataset(
        tag2text_images[:2], gt=[_cls("dog"), _cls("cat")], pred=[_cls("dog", "sky"), _cls("dog")]
    )
    params = {"pred_field": "pred", "gt_field": "gt", "eval_key": "ev"}
    out = run_operator("evaluate_tags", ds, params, delegated=delegated)
    direct = evaluate_tags(ds, "pred", "gt")
    assert out == {"mAP": direct.mAP(), "report": direct.format_report()}
    assert "mAP 0.500" in out["report"]  # dog and cat: one positive among two tied scores
    assert ds.values("ev_tp") == [1, 0] and ds.values("ev_fp") == [1, 1]
