"""Out of device memory (issue #14): the batch is halved and retried down to one image before a
sample fails. Injected on the CPU by an adapter that raises torch's OutOfMemoryError for
batches larger than a limit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from tag2text_zoo import TaggerModel, label_samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class MemoryLimited(TaggerModel):
    """Runs out of memory on batches of more than ``limit`` images; counts what it labelled."""

    def __init__(self, tagger, limit: int):
        super().__init__(tagger)
        self.limit, self.sizes, self.labelled = limit, [], Counter()

    def predict_items(self, items):
        self.sizes.append(len(items))
        if len(items) > self.limit:
            raise torch.OutOfMemoryError(f"tried to allocate room for {len(items)} images")
        self.labelled.update(item["id"] for item in items)
        return super().predict_items(items)


@pytest.fixture
def dataset(tag2text_images, make_dataset, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    paths = [tag2text_images[3], broken, *tag2text_images[4:6], tag2text_images[0]]
    return make_dataset(paths)


def test_batches_halve_until_they_fit_and_match_an_unlimited_run(cpu_tagger, dataset, want):
    model = MemoryLimited(cpu_tagger, limit=1)
    report = label_samples(dataset, model, "t2t", batch_size=4, num_workers=0)

    broken = dataset.exists("t2t_tags", False)
    assert (report.done, report.skipped, report.failed) == (4, 0, 1)
    assert [f.sample_id for f in report.failures] == broken.values("id")
    assert "not a readable image" in report.failures[0].reason
    # 3 readable of 4 -> [image, broken] + [image, image] -> 1 + 1; then the last batch of 1
    assert model.sizes == [3, 1, 2, 1, 1, 1]
    assert model.labelled == Counter(dataset.exists("t2t_tags").values("id"))  # each once
    for sample in dataset.exists("t2t_tags"):
        assert sample.t2t_caption == want[Path(sample.filepath).name]["caption"]


def test_out_of_memory_on_one_image_fails_that_sample_only_once(cpu_tagger, dataset):
    model = MemoryLimited(cpu_tagger, limit=0)
    report = label_samples(dataset, model, "t2t", batch_size=4, num_workers=0)

    assert (report.done, report.skipped, report.failed) == (0, 0, 5)
    assert Counter(f.sample_id for f in report.failures) == Counter(dataset.values("id"))
    alone = [f for f in report.failures if "out of memory on this image alone" in f.reason]
    assert len(alone) == 4 and all("tried to allocate" in f.reason for f in alone)
    assert not dataset.has_field("t2t_tags")
