"""evaluate_tags: values computed by hand, a registered FiftyOne run, logits, the App's panel."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import fiftyone as fo
import numpy as np
import pytest

from tag2text_zoo import TagEvaluationResults, evaluate_tags


def _cls(tags: dict[str, float | None], logits=None) -> fo.Classifications:
    labels = [fo.Classification(label=t, confidence=c) for t, c in tags.items()]
    return fo.Classifications(classifications=labels, logits=logits)


@pytest.fixture
def hand_dataset(make_dataset, tag2text_images):
    gt = [{"dog": None, "cat": None}, {"dog": None}, {"cat": None, "sky": None}, {}]
    pred = [{"dog": 0.9, "sky": 0.6}, {"dog": 0.4, "cat": 0.8}, {"cat": 0.7}, {"dog": 0.95}]
    return make_dataset(
        [tag2text_images[0]] * 4, gt=[_cls(g) for g in gt], pred=[_cls(p) for p in pred]
    )


def test_evaluate_tags_hand_computed(hand_dataset):
    ds = hand_dataset
    ev = evaluate_tags(ds, "pred", "gt", eval_key="ev")
    # dog: ranked s4(-) s1(+) s2(+) -> AP = (1/2 + 2/3) / 2; TP 2 FP 1 FN 0
    # cat: s2(-) s3(+) then s1(+)/s4(-) tied at 0 -> AP = .5*.5 + .5*.5; TP 1 FP 1 FN 1
    # sky: s1(-) then all tied at 0 with one positive -> AP = 1/4; TP 0 FP 1 FN 1
    assert ev.ap == pytest.approx({"cat": 0.5, "dog": 7 / 12, "sky": 0.25})
    assert ev.mAP() == pytest.approx((7 / 12 + 0.5 + 0.25) / 3) and ev.scores == "confidence"
    report = ev.report()
    assert report["dog"]["precision"] == pytest.approx(2 / 3) and report["dog"]["recall"] == 1.0
    assert report["cat"]["precision"] == 0.5 and report["sky"]["support"] == 1
    assert ds.values("ev_tp") == [1, 1, 1, 0]
    assert ds.values("ev_fp") == [1, 1, 0, 1]
    assert ds.values("ev_fn") == [1, 0, 1, 0]
    first = ds.first()
    status = {c.label: c.ev for c in first.pred.classifications}
    assert status == {"dog": "tp", "sky": "fp"}
    assert {c.label: c.ev for c in first.gt.classifications} == {"dog": "tp", "cat": "fn"}
    assert first.pred.classifications[0].ev_id == first.gt.classifications[0].id
    text = ev.format_report()
    assert "dog" in text and "mAP 0.444" in text


def test_evaluation_is_a_registered_fiftyone_run(hand_dataset):
    ds = hand_dataset
    evaluate_tags(ds, "pred", "gt", eval_key="ev")
    assert ds.list_evaluations() == ["ev"]
    info = ds.get_evaluation_info("ev")
    assert (info.config.type, info.config.method) == ("detection", "tags")
    assert (info.config.pred_field, info.config.gt_field) == ("pred", "gt")

    ds.clear_cache()  # results come back from the database, not memory
    again = fo.load_dataset(ds.name).load_evaluation_results("ev")
    assert isinstance(again, TagEvaluationResults)
    assert again.ap == pytest.approx({"cat": 0.5, "dog": 7 / 12, "sky": 0.25})
    assert again.mAP() == pytest.approx((7 / 12 + 0.5 + 0.25) / 3)

    fps = ds.load_evaluation_view("ev").filter_labels("pred", fo.ViewField("ev") == "fp")
    assert fps.count("pred.classifications") == 3
    ds.rename_evaluation("ev", "ev2")
    assert ds.list_evaluations() == ["ev2"] and ds.values("ev2_fp") == [1, 1, 0, 1]
    ds.delete_evaluation("ev2")
    assert ds.list_evaluations() == [] and not ds.has_field("ev2_fp")
    assert not ds.first().pred.classifications[0].has_field("ev2")


def test_ap_ranks_by_stored_logits_whatever_the_threshold(make_dataset, tag2text_images):
    classes = ["dog", "cat", "sky"]
    gt = [_cls({"dog": None}), _cls({"cat": None}), _cls({"dog": None})]
    logits = [[2.0, -3.0, -1.0], [-1.0, 1.0, -2.0], [0.5, -2.0, -4.0]]  # s3's dog: below threshold
    kept = [{"dog": 0.88}, {"cat": 0.73}, {}]
    pred = [_cls(k, np.array(lg, np.float16)) for k, lg in zip(kept, logits)]
    ds = make_dataset([tag2text_images[0]] * 3, gt=gt, pred=pred)
    ds.classes = {"pred": classes}

    by_logits = evaluate_tags(ds, "pred", "gt")
    # dog by logits: s1 2.0 (+), s3 0.5 (+), s2 -1.0 (-) -> AP 1
    assert by_logits.scores == "logits" and by_logits.ap["dog"] == pytest.approx(1.0)
    by_confidence = evaluate_tags(ds, "pred", "gt", use_logits=False)
    # dog by confidence: s1 .88 (+), then s2 and s3 tied at 0 with one positive -> 1/2 + 2/3 / 2
    assert by_confidence.ap["dog"] == pytest.approx(0.5 + (2 / 3) / 2)

    ds.classes = {"pred": classes[:2]}
    with pytest.raises(ValueError, match="pred.logits has 3 values but"):
        evaluate_tags(ds, "pred", "gt")


def test_evaluate_tags_refuses_non_classifications(make_dataset, tag2text_images):
    ds = make_dataset(tag2text_images[:1], gt=["dog"], pred=[_cls({"dog": 1.0})])
    with pytest.raises(ValueError, match="'gt' must be an fo.Classifications field"):
        evaluate_tags(ds, "pred", "gt")


@pytest.mark.skipif(
    importlib.util.find_spec("plugins") is None, reason="FiftyOne's built-in panels not installed"
)
def test_the_apps_evaluation_panel_reads_the_run(hand_dataset):
    """What FiftyOne's Model Evaluation panel computes for the App, by its own Python code."""
    from plugins.panels.model_evaluation import EvaluationPanel

    ds = hand_dataset
    evaluate_tags(ds, "pred", "gt", eval_key="ev")
    shown = []
    state = {"view": {"key": "ev"}, "missing": "(none)"}
    ctx = SimpleNamespace(
        dataset=ds,
        params={"key": "ev"},
        panel=SimpleNamespace(get_state=lambda k, d=None: state.get(k, d)),
        ops=SimpleNamespace(set_view=shown.append),
    )
    panel = EvaluationPanel()
    data = panel.get_evaluation_data(ctx)
    metrics = data["metrics"]
    assert (metrics["tp"], metrics["fp"], metrics["fn"]) == (3, 3, 2)
    assert metrics["mAP"] == pytest.approx((7 / 12 + 0.5 + 0.25) / 3)
    assert data["per_class_metrics"]["dog"]["precision"] == pytest.approx(2 / 3)
    assert "(none)" in data["confusion_matrix"]["classes"]

    # Clicking the "dog" row, and the matrix cell of sky false positives, selects those samples.
    ctx.params = {"type": "class", "options": {"x": "dog"}}
    panel.load_view(ctx)
    ctx.params = {"type": "matrix", "options": {"x": "sky", "y": "(none)"}}
    panel.load_view(ctx)
    assert [len(v) for v in shown] == [3, 1]
    assert shown[1].first().pred.classifications[0].label == "sky"
