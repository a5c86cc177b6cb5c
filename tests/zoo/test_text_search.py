"""Text-to-image search with the TagAlign/CLIP zoo model: compute_similarity + sort_by_similarity.

The images are solid colours, so CLIP's preprocessing leaves them exact whatever the resize, and
the embeddings can be checked against independent code (transformers' CLIP image processor and
``get_image_features``; the dense engine's projector branch). The tiny CLIP's text projection is
then solved so that "a <colour> square" embeds exactly onto that colour's image: a query must rank
its own colour first, through FiftyOne Brain and the registered zoo model.
"""

from __future__ import annotations

import shutil

import fiftyone.brain as fob
import numpy as np
import pytest
import torch
from data_paths import FIXTURES
from PIL import Image
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

from tag2text_zoo import DenseModel, SearchEmbedder, load_dense_segmenter
from tag2text_zoo.engines.dense_windows import normalise

TAGALIGN = FIXTURES / "tagalign-tiny"
COLOURS = {"red": (220, 30, 40), "green": (40, 200, 60), "blue": (30, 50, 210)}
NAME = "tagalign-clip-vit-b16-torch"


def _images(folder):
    paths = {}
    for colour, rgb in COLOURS.items():
        paths[colour] = folder / f"{colour}.png"
        Image.new("RGB", (320, 240), rgb).save(paths[colour])
    return paths


def _independent_embeddings(segmenter) -> np.ndarray:
    """The same embeddings by other code: transformers' CLIP pipeline, or the dense engine's
    projector features averaged (TagAlign's training pooling) on ImageNet-normalised pixels."""
    images = [Image.new("RGB", (320, 240), rgb) for rgb in COLOURS.values()]
    if segmenter.projector is None:
        pixels = CLIPImageProcessor()(images=images, return_tensors="pt")["pixel_values"]
        out = segmenter.clip.get_image_features(pixel_values=pixels)
        embeds = out if isinstance(out, torch.Tensor) else out.pooler_output
    else:
        size = segmenter.clip.config.vision_config.image_size
        pixels = torch.stack(
            [normalise(np.full((size, size, 3), rgb, np.uint8)) for rgb in COLOURS.values()]
        )
        embeds = segmenter.crop_features(pixels)[0].mean((2, 3))
    return torch.nn.functional.normalize(embeds.detach().float(), dim=-1).numpy()


@torch.no_grad()
def _aligned_clip(folder, segmenter, targets: np.ndarray):
    """A copy of the tiny CLIP whose text projection puts each colour's query on its image."""
    shutil.copytree(TAGALIGN / "clip", folder)
    clip = CLIPModel.from_pretrained(folder)
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    texts = [f"a {colour} square" for colour in COLOURS]
    pooled = clip.text_model(**tokenizer(texts, padding=True, return_tensors="pt")).pooler_output
    solution = torch.linalg.lstsq(pooled.double(), torch.from_numpy(targets).double()).solution
    clip.text_projection.weight.copy_(solution.T.float())
    clip.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("projector", [None, TAGALIGN / "tagalign.pth"], ids=["clip", "tagalign"])
def test_sort_by_text_through_the_zoo_model(
    projector, zoo, make_dataset, tmp_path, one_torch_thread
):
    paths = _images(tmp_path)
    segmenter = load_dense_segmenter(TAGALIGN / "clip", projector, device="cpu")
    search = SearchEmbedder.from_dense(segmenter)
    assert search.aligned == (projector is not None)
    pixels = torch.stack([search.transform(Image.open(paths[c])) for c in COLOURS])
    embeddings = search.embed_images(pixels)
    np.testing.assert_allclose(embeddings, _independent_embeddings(segmenter), atol=1e-4)

    zoo.link(
        "tagalign-clip-vit-b16", {"clip": _aligned_clip(tmp_path / "clip", segmenter, embeddings)}
    )
    ds = make_dataset(list(paths.values()))
    kwargs = {"device": "cpu", **({"projector": str(projector)} if projector else {})}
    fob.compute_similarity(ds, model=NAME, model_kwargs=kwargs, brain_key="search", batch_size=2)
    for colour, path in paths.items():
        ranked = ds.sort_by_similarity(f"a {colour} square", brain_key="search", k=3)
        assert ranked.values("filepath")[0] == str(path), colour

    # Reloaded, as the App does: the model comes back by its zoo name.
    ds.clear_cache()
    results = ds.load_brain_results("search")
    assert results.config.supports_prompts and results.config.model == NAME
    assert isinstance(results.get_model(), DenseModel)
    ranked = ds.sort_by_similarity("a blue square", brain_key="search", k=1)
    assert ranked.values("filepath") == [str(paths["blue"])]


def test_dense_model_embeddings_and_visualisation(make_dataset, tmp_path, one_torch_thread):
    paths = _images(tmp_path)
    segmenter = load_dense_segmenter(TAGALIGN / "clip", device="cpu")
    model = DenseModel(segmenter)  # no class source: embedding needs none
    ds = make_dataset(list(paths.values()))
    embeddings = ds.compute_embeddings(model, batch_size=2, num_workers=1, progress=False)
    np.testing.assert_allclose(embeddings, _independent_embeddings(segmenter), atol=1e-4)
    prompts = model.embed_prompts(["a red square", "a cat"])
    assert prompts.shape == (2, embeddings.shape[1])
    np.testing.assert_allclose(prompts[0], model.embed_prompt("a red square"), atol=1e-6)
    viz = fob.compute_visualization(ds, model=model, method="pca", brain_key="viz", batch_size=2)
    assert viz.points.shape == (3, 2)
    with pytest.raises(ValueError, match="needs a prompt_field or classes"):
        ds.apply_model(model, "seg", skip_failures=False)
