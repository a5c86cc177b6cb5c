"""evaluate_tags against values computed by hand (see the comments)."""

from __future__ import annotations

import fiftyone as fo
import pytest

from tag2text_zoo import evaluate_tags


def _cls(tags: dict[str, float | None]) -> fo.Classifications:
    return fo.Classifications(
        classifications=[fo.Classification(label=t, confidence=c) for t, c in tags.items()]
    )


def test_evaluate_tags_hand_computed(make_dataset, tag2text_images):
    gt = [{"dog": None, "cat": None}, {"dog": None}, {"cat": None, "sky": None}, {}]
    pred = [{"dog": 0.9, "sky": 0.6}, {"dog": 0.4, "cat": 0.8}, {"cat": 0.7}, {"dog": 0.95}]
    ds = make_dataset(
        [tag2text_images[0]] * 4, gt=[_cls(g) for g in gt], pred=[_cls(p) for p in pred]
    )
    ev = evaluate_tags(ds, "pred", "gt", eval_key="ev")
    # dog: ranked s4(-) s1(+) s2(+) -> AP = (1/2 + 2/3) / 2; TP 2 FP 1 FN 0
    # cat: s2(-) s3(+) then s1(+)/s4(-) tied at 0 -> AP = .5*.5 + .5*.5; TP 1 FP 1 FN 1
    # sky: s1(-) then all tied at 0 with one positive -> AP = 1/4; TP 0 FP 1 FN 1
    assert {t: (s.tp, s.fp, s.fn) for t, s in ev.tags.items()} == {
        "cat": (1, 1, 1),
        "dog": (2, 1, 0),
        "sky": (0, 1, 1),
    }
    assert ev.tags["dog"].ap == pytest.approx(7 / 12)
    assert ev.tags["cat"].ap == pytest.approx(0.5)
    assert ev.tags["sky"].ap == pytest.approx(0.25)
    assert ev.mAP == pytest.approx((7 / 12 + 0.5 + 0.25) / 3)
    assert ev.tags["dog"].precision == pytest.approx(2 / 3) and ev.tags["dog"].recall == 1.0
    assert (ev.tp, ev.fp, ev.fn) == (3, 3, 2)
    assert ds.values("ev_tp") == [1, 1, 1, 0]
    assert ds.values("ev_fp") == [1, 1, 0, 1]
    assert ds.values("ev_fn") == [1, 0, 1, 0]
    report = ev.report()
    assert "dog" in report and "mAP 0.444" in report


def test_evaluate_tags_refuses_non_classifications(make_dataset, tag2text_images):
    ds = make_dataset(tag2text_images[:1], gt=["dog"], pred=[_cls({"dog": 1.0})])
    with pytest.raises(ValueError, match="'gt' must be an fo.Classifications field"):
        evaluate_tags(ds, "pred", "gt")
