"""Tagger logits (``store_logits``) and image embeddings through FiftyOne and FiftyOne Brain."""

from __future__ import annotations

import shutil

import fiftyone.brain as fob
import numpy as np
import pytest
import torch

from tag2text_zoo import TaggerModel, evaluate_tags, label_samples, load_tagger
from tag2text_zoo.fo.tagging.labels import TagClasses


def test_store_logits_keeps_every_class_once_in_float16(tagger, tag2text_images, make_dataset):
    ds = make_dataset(tag2text_images[:2])
    model = TaggerModel(tagger)
    ds.apply_model(model, "t2t", batch_size=2, store_logits=True, num_workers=0, progress=False)
    assert not model.store_logits  # apply_model restores it

    names = [n.strip() for n in tagger.tag_names]
    assert len(model.classes) == len(set(names)) < len(names)  # Tag2Text repeats some words
    pixels = torch.stack([tagger.preprocess(p) for p in tag2text_images[:2]])
    engine = tagger.predict_tensors(pixels, caption=False)
    for sample, result in zip(ds.iter_samples(), engine):
        stored = sample.t2t_tags.logits
        assert stored.dtype == np.float16 and stored.shape == (len(model.classes),)
        # A name's logit is the highest of its indices' (as its confidence is).
        word = names[int(np.argmax(result.logits))]
        expect = max(result.logits[i] for i, n in enumerate(names) if n == word)
        assert stored[model.classes.index(word)] == pytest.approx(expect, abs=2e-2)
        for c in sample.t2t_tags.classifications:  # the kept tags' confidences are sigmoid(logit)
            logit = float(stored[model.classes.index(c.label)])
            assert c.confidence == pytest.approx(1 / (1 + np.exp(-logit)), abs=2e-3)


def test_label_samples_records_the_logits_classes_and_refuses_others(
    tag2text_images, tag2text_dir, make_dataset, reference_dir
):
    ds = make_dataset(tag2text_images[:2])
    tagger = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, threshold=0.99)
    report = label_samples(ds, tagger, "t2t", store_logits=True, progress=False)
    assert report.done == 2 and ds.classes["t2t_tags"] == TaggerModel(tagger).classes
    assert all(len(v) == len(ds.classes["t2t_tags"]) for v in ds.values("t2t_tags.logits"))

    # Threshold-free: AP comes from the logits although a 0.99 threshold kept almost nothing.
    assert sum(len(v.classifications) for v in ds.values("t2t_tags")) <= 1
    ds.set_values("gt", [_classifications(["dog"]), _classifications([])])
    ev = evaluate_tags(ds, "t2t_tags", "gt")
    logits = ds.values("t2t_tags.logits")
    dog = ds.classes["t2t_tags"].index("dog")
    ranked_right = float(logits[0][dog]) > float(logits[1][dog])
    assert ev.scores == "logits" and ev.ap["dog"] == (1.0 if ranked_right else 0.5)

    ram = load_tagger(tag2text_dir.parent / "ram-tiny", device="cpu")
    with pytest.raises(ValueError, match="holds logits over 3313 other classes"):
        label_samples(ds, ram, "t2t", store_logits=True, skip_existing=False)


def _classifications(labels):
    import fiftyone as fo

    return fo.Classifications(classifications=[fo.Classification(label=x) for x in labels])


def test_tag_classes_take_the_highest_logit_of_a_repeated_name():
    classes = TagClasses.of(["sky", " dog", "sky ", "cat"])
    assert classes.names == ["sky", "dog", "cat"]
    merged = classes.logits(np.array([1.0, -2.0, 3.0, 0.5], np.float32))
    assert merged.dtype == np.float16 and merged.tolist() == [3.0, -2.0, 0.5]


def test_embeddings_visualisation_and_image_similarity(
    tagger, tag2text_images, make_dataset, tmp_path, one_torch_thread
):
    copy = tmp_path / "copy.jpg"
    shutil.copy(tag2text_images[0], copy)
    ds = make_dataset([tag2text_images[0], *tag2text_images[1:4], copy])
    model = TaggerModel(tagger)
    assert model.has_embeddings

    embeddings = ds.compute_embeddings(model, batch_size=2, num_workers=0, progress=False)
    pixels = torch.stack([tagger.preprocess(p) for p in ds.values("filepath")])
    np.testing.assert_allclose(embeddings, tagger.embed_tensors(pixels).numpy(), atol=1e-5)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0)
    ds.compute_embeddings(model, embeddings_field="emb", batch_size=2, num_workers=1)
    np.testing.assert_allclose(np.stack(ds.values("emb")), embeddings, atol=1e-5)

    # umap-learn is not a dependency; PCA needs nothing beyond scikit-learn.
    viz = fob.compute_visualization(ds, embeddings="emb", method="pca", brain_key="viz")
    assert viz.points.shape == (5, 2) and ds.list_brain_runs() == ["viz"]
    fob.compute_similarity(ds, model=model, brain_key="sim", batch_size=2)
    first = ds.first()
    nearest = ds.sort_by_similarity(first.id, brain_key="sim", k=2).values("filepath")
    assert nearest == [first.filepath, str(copy)]  # the image, then its copy
