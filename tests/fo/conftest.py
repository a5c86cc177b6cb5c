"""FiftyOne test helpers: one CPU tagger matching the reference (no EXIF), fresh datasets."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def tagger(tag2text_dir):
    from tag2text_zoo import load_tagger

    # The golden fixture was made without EXIF orientation (the reference ignores it).
    return load_tagger(tag2text_dir, device="cpu", exif_transpose=False)


@pytest.fixture
def make_dataset():
    import fiftyone as fo

    made = []

    def make(paths, **fields_per_sample):
        ds = fo.Dataset(f"t2t-test-{uuid.uuid4().hex[:8]}")
        samples = []
        for i, path in enumerate(paths):
            extra = {k: v[i] for k, v in fields_per_sample.items() if v[i] is not None}
            samples.append(fo.Sample(filepath=str(path), **extra))
        ds.add_samples(samples, progress=False)
        made.append(ds)
        return ds

    yield make
    for ds in made:
        if not ds.deleted:
            ds.delete()


@pytest.fixture(scope="session")
def want(tag2text_expected) -> dict[str, dict]:
    """The reference's results per image file name."""
    return {im["file"].split("/")[-1]: im for im in tag2text_expected["images"]}
