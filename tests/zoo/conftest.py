"""The repository registered as a FiftyOne remote zoo source, through FiftyOne's own code.

Only the download is replaced: by the zip GitHub would serve for this checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import eta.core.web as etaw
import fiftyone as fo
import fiftyone.zoo as foz
import pytest

from tag2text_zoo.assets.download import LOCAL_MODELS_ENV
from tag2text_zoo.zoo.manifest import SOURCE_NAME, SOURCE_URL

REPO = Path(__file__).resolve().parents[2]
ZIPBALL_URL = "https://api.github.com/repos/tag2text-zoo/tag2text-zoo/zipball"


def _repo_files() -> list[str]:
    """What a push of this checkout holds: tracked files and new ones git does not ignore."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


@pytest.fixture(scope="session")
def repo_files() -> list[str]:
    return _repo_files()


@pytest.fixture(scope="session")
def github_zipball(tmp_path_factory, repo_files) -> Path:
    """The repository zip GitHub serves: every file under one top folder (tests/data, 124 MB of
    fixtures, is left out; it holds no manifest.json, checked in the manifest test)."""
    path = tmp_path_factory.mktemp("github") / "zipball.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in repo_files:
            if not name.startswith("tests/data/"):
                archive.write(REPO / name, f"tag2text-zoo-tag2text-zoo-0123abc/{name}")
    return path


@pytest.fixture
def zoo(tmp_path, monkeypatch, github_zipball):
    """The source registered in a fresh model zoo dir; ``zoo.link(name, folders)`` installs an
    offline model (``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>``)."""
    zoo_dir, local = tmp_path / "zoo", tmp_path / "local"
    local.mkdir()
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(zoo_dir))
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    fetched = []

    def write(session, path, url):
        fetched.append(url)
        shutil.copy(github_zipball, path)

    monkeypatch.setattr(etaw.WebSession, "write", write)
    foz.register_zoo_model_source(SOURCE_URL)
    assert fetched == [ZIPBALL_URL]
    return SimpleNamespace(dir=zoo_dir / SOURCE_NAME, local=local, link=lambda *a: _link(local, *a))


def _link(local: Path, name: str, folders: dict[str, Path] | Path) -> None:
    """Offline model folders: ``<local>/<name>`` -> a folder, or parts inside it."""
    if isinstance(folders, Path):
        (local / name).symlink_to(folders, target_is_directory=True)
        return
    (local / name).mkdir()
    for part, folder in folders.items():
        (local / name / part).symlink_to(folder, target_is_directory=True)
