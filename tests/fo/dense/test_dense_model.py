"""DenseModel through apply_model on a real embedded database."""

from __future__ import annotations

import fiftyone as fo
import numpy as np
import pytest
from data_paths import FIXTURES

from tag2text_zoo import (
    DenseModel,
    DenseModelConfig,
    load_dense_segmenter,
    record_mask_targets,
    segment_dense,
)

TINY = FIXTURES / "tagalign-tiny"
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SQUARE, STREET = TINY / "images/square_200x200.png", TINY / "images/street_500x375.png"
TAGS = [["cat", "sofa", "person"], ["sky", "road", "person", "car"]]  # "person" in both


@pytest.fixture(scope="module")
def segmenter():
    return load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", device="cpu")


def _classifications(tags):
    return fo.Classifications(classifications=[fo.Classification(label=t) for t in tags])


def _assert_decodes_to(sample_mask, targets, result):
    names = np.array(["background", *result.classes])
    np.testing.assert_array_equal(np.vectorize(targets.get)(sample_mask), names[result.labels])


def test_apply_model_matches_engine_with_one_target_map(segmenter, make_dataset, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    tags = [_classifications(TAGS[0]), None, _classifications(TAGS[1])]
    ds = make_dataset([SQUARE, broken, STREET], t2t_tags=tags)
    model = DenseModel(segmenter)
    # images load in a DataLoader worker process
    ds.apply_model(model, "seg", prompt_field="t2t_tags", batch_size=3, num_workers=1)
    targets = record_mask_targets(ds, "seg", model.mask_targets)
    assert ds.mask_targets["seg"] == targets == model.mask_targets
    assert len(set(targets.values())) == len(targets) == 1 + len(set(TAGS[0] + TAGS[1]))
    direct = segmenter.predict([SQUARE, STREET], TAGS)
    samples = list(ds)
    for sample, result in zip([samples[0], samples[2]], direct, strict=True):
        _assert_decodes_to(sample.seg.get_mask(), targets, result)
    person = next(v for v, n in targets.items() if n == "person")
    assert any((s.seg.get_mask() == person).any() for s in (samples[0], samples[2]))
    assert samples[1].seg is None
    assert [(f.sample_id, f.filepath) for f in model.failures] == [(samples[1].id, str(broken))]
    assert "broken.png" in model.failures[0].reason

    # a later run with fixed classes into the same field keeps every value's meaning
    before = dict(ds.mask_targets["seg"])
    fixed = DenseModel(segmenter, DenseModelConfig(classes=["sofa", "dog"]))
    view = ds.select(samples[0].id)
    segment_dense(view, fixed, "seg", batch_size=1, num_workers=0, skip_existing=False)
    after = ds.mask_targets["seg"]
    assert {v: n for v, n in after.items() if v in before} == before
    assert after[max(after)] == "dog"
    (alone,) = segmenter.predict([SQUARE], ["sofa", "dog"])
    _assert_decodes_to(ds[samples[0].id].seg.get_mask(), after, alone)


def test_prompt_field_of_wrong_type_refused(segmenter, make_dataset):
    ds = make_dataset([SQUARE], score=[3])
    model = DenseModel(segmenter)
    with pytest.raises(ValueError, match="prompt field 'score'"):
        segment_dense(ds, model, "seg", prompt_field="score")
    # The model also embeds images, which needs no class source, so FiftyOne's apply_model meets
    # the refusal at the first batch: raised with skip_failures=False, else logged per batch.
    with pytest.raises(ValueError, match="prompt_field or classes"):
        ds.apply_model(model, "seg", num_workers=0, skip_failures=False)
    ds.apply_model(model, "seg", num_workers=0)
    assert not ds.has_field("seg")  # nothing written


def test_predict_on_images_directly(segmenter, tmp_path):
    """Without a dataset: paths go straight to the model with fixed classes."""
    model = DenseModel(segmenter, DenseModelConfig(classes=["sofa", "dog"]))
    got = model.predict_all([SQUARE, tmp_path / "missing.png"])
    (alone,) = segmenter.predict([SQUARE], [["sofa", "dog"]])
    _assert_decodes_to(got[0].mask, model.mask_targets, alone)
    assert got[1] is None and "missing.png" in model.failures[-1].reason
