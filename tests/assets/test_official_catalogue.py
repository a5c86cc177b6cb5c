"""The catalogue of official SAM / SAM 2 / Grounding DINO files: complete and documented."""

from __future__ import annotations

import pytest
from official_files import OFFICIAL

from tag2text_zoo.assets.official import OFFICIAL_CHECKPOINTS, trusted_official_sha256


@pytest.mark.parametrize("name", sorted(OFFICIAL_CHECKPOINTS))
def test_entries_are_complete_and_documented(name):
    spec = OFFICIAL_CHECKPOINTS[name]
    file = spec.files[0]
    assert spec.name == name and spec.config["checkpoint"]["file"] == file.filename
    assert spec.license == "Apache-2.0" and spec.source.startswith("https://github.com/")
    assert file.url.startswith("https://") and file.url.endswith(file.filename)
    assert len(file.sha256) == 64 and file.size > 100_000_000
    readme = (OFFICIAL / "README.md").read_text(encoding="utf-8")
    assert f"| `{name}` | {file.url} | {file.size:,} | `{file.sha256}` |" in readme
    assert (OFFICIAL / f"{name}.json").is_file()  # its key list, for the full-size map test
    assert file.sha256 in trusted_official_sha256()
    if spec.model_type == "grounding-dino":
        assert [f.filename for f in spec.files[1:]] == ["vocab.txt"]
