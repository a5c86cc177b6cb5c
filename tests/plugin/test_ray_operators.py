"""The operators hand their runs to Ray when the plugin's TAG2TEXT_ZOO_RAY_ADDRESS secret is
set, and a delegated run on Ray still reports its progress and its report."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fiftyone.operators.delegated import DelegatedOperationService

from plugin import common
from tag2text_zoo import RayBackend

pytest.importorskip("ray", reason="the Ray backend's extra: pip install -e '.[ray]'")


@pytest.mark.parametrize(("secret", "backend"), [(None, "local"), ("auto", RayBackend("auto"))])
def test_run_options_follow_the_ray_address_secret(secret, backend):
    ctx = SimpleNamespace(params={}, delegated=True, secret={common.RAY_ADDRESS: secret}.get)
    assert common.run_options(ctx, batch_size=4)["backend"] == backend


def test_delegated_tagging_on_ray_reports_progress(
    ray_cluster, run_operator, make_dataset, tag2text_images, want, monkeypatch
):
    monkeypatch.setenv(common.RAY_ADDRESS, ray_cluster)
    progress = []
    set_progress = DelegatedOperationService.set_progress

    def recorded(self, doc_id, value):
        progress.append(value.label)
        return set_progress(self, doc_id, value)

    monkeypatch.setattr(DelegatedOperationService, "set_progress", recorded)
    ds = make_dataset(tag2text_images[:3])
    params = {"model": "tag2text-swin-14m", "label_field": "t2t", "device": "cpu", "batch_size": 2}
    result = run_operator("tag_images", ds, params, delegated=True)
    assert result["summary"] == "- Tagging with tag2text-swin-14m: 3 done, 0 skipped, 0 failed"
    label = "Tagging with tag2text-swin-14m"
    batches = [p for p in progress if p.startswith(f"{label}: ")]
    assert len(batches) == 2 and batches[-1] == f"{label}: 3 / 3"  # after each batch
    for sample in ds:
        name = sample.filepath.rsplit("/", 1)[1]
        assert sample.t2t_caption == want[name]["caption"]
