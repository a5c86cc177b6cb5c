"""The Ray backend's worker side without Ray: stages run on plain rows, without FiftyOne, and
their results come back as the engines' dataclasses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tag2text_zoo.distributed.stages import (
    GroundedResult,
    grounded_result,
    to_columns,
    to_rows,
)


def test_tag_stage_runs_without_fiftyone_and_fails_only_the_unreadable_row(
    tag2text_dir, tag2text_images, want, tmp_path
):
    # A Ray worker may lack FiftyOne: the stage module, its model spec and results must not need it.
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    paths = [str(tag2text_images[0]), str(broken), str(tag2text_images[1])]
    code = f"""
import sys
sys.modules["fiftyone"] = None  # any import of it now fails
import numpy as np
from tag2text_zoo import ModelSpec
from tag2text_zoo.distributed.backend import RayBackend
from tag2text_zoo.distributed.stages import TagStage, tag_result, to_columns, to_rows

spec = ModelSpec("tagger", {{"name_or_dir": {str(tag2text_dir)!r}, "exif_transpose": False}})
paths = {paths!r}
rows = [{{"id": str(i), "filepath": p, "prompt": None, "error": ""}} for i, p in enumerate(paths)]
out = to_rows(TagStage(spec)(to_columns(rows, "tags")))
for row in out:
    print(row["error"] or tag_result(row["tags"]).caption)
assert not any(m.startswith("fiftyone") and sys.modules[m] for m in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    first, error, last = out.stdout.strip().splitlines()
    assert first == want[tag2text_images[0].name]["caption"]
    assert error.startswith(f"{broken}: not a readable image")
    assert last == want[tag2text_images[1].name]["caption"]


def test_rows_survive_columns_whatever_the_prompt_column_became():
    rows = [
        {"id": "a", "filepath": "a.png", "prompt": ["dog", "cat"], "error": ""},
        {"id": "b", "filepath": "b.png", "prompt": None, "error": "b.png: no such image file"},
    ]
    batch = to_columns(rows, "result")
    assert list(batch["result"]) == [{}, {}]  # the output column holds dicts on every row
    assert to_rows(batch) == [{**row, "result": {}} for row in rows]
    # Ray Data turns a column of None only into NaNs
    nan_batch = {**batch, "prompt": np.array([np.nan, np.nan], np.float32)}
    assert [row["prompt"] for row in to_rows(nan_batch)] == [None, None]


def test_grounded_masks_travel_bit_packed_and_come_back_equal():
    masks = np.random.default_rng(0).random((3, 7, 5)) > 0.5
    result = GroundedResult(
        boxes=np.ones((3, 4), np.float32),
        labels=["a", "b", "c"],
        scores=np.array([0.9, 0.5, 0.1], np.float32),
        iou_predictions=np.zeros(3, np.float32),
        masks=masks,
    )
    packed = {
        **result.__dict__,
        "masks": np.packbits(masks),
        "mask_shape": masks.shape,
    }
    back = grounded_result(packed)
    assert back.masks.dtype == bool and np.array_equal(back.masks, masks)
    assert back.labels == result.labels and back.image_size == (5, 7)
