"""Catalogue downloads: resumable HTTP on loopback, checksums, the hub path, offline errors."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tag2text_zoo import load_tagger
from tag2text_zoo.assets import download
from tag2text_zoo.assets.catalogue import CATALOGUE, ModelSpec, RemoteFile
from tag2text_zoo.assets.download import DownloadError, ensure_model_dir


class _Server:
    """Serves files from a folder with Range support; can cut the first response short."""

    def __init__(self, root: Path, cut_first_after: int | None = None) -> None:
        self.root, self.cut = root, cut_first_after
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                data = (server.root / self.path.lstrip("/")).read_bytes()
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut is not None:
                    body, server.cut = body[: server.cut], None
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


def _spec_for(fixture: Path, url: str) -> ModelSpec:
    config = json.loads((fixture / "config.json").read_text())
    files = tuple(
        RemoteFile(
            filename=name,
            url=f"{url}/{name}",
            size=(fixture / name).stat().st_size,
            sha256=hashlib.sha256((fixture / name).read_bytes()).hexdigest(),
        )
        for name in ("model.pth", "tag_list.txt", "vocab.txt")
    )
    return ModelSpec("tiny", "test model", "tag2text", files, config, "Apache-2.0", url)


@pytest.fixture
def server(tag2text_dir):
    s = _Server(tag2text_dir)
    yield s
    s.close()


def test_download_then_load(tmp_path, tag2text_dir, server, monkeypatch):
    spec = _spec_for(tag2text_dir, server.url)
    monkeypatch.setitem(CATALOGUE, "tiny", spec)
    tagger = load_tagger("tiny", device="cpu", models_dir=tmp_path)
    model_dir = tmp_path / "tiny"
    for f in spec.files:
        assert (model_dir / f.filename).read_bytes() == (tag2text_dir / f.filename).read_bytes()
    assert json.loads((model_dir / "config.json").read_text()) == spec.config
    assert tagger.can_caption
    # A second load downloads nothing.
    count = len(server.ranges)
    load_tagger("tiny", device="cpu", models_dir=tmp_path)
    assert len(server.ranges) == count


def test_interrupted_download_resumes(tmp_path, tag2text_dir):
    s = _Server(tag2text_dir, cut_first_after=1_000_000)
    try:
        spec = _spec_for(tag2text_dir, s.url)
        with pytest.raises(DownloadError, match="model.pth"):
            ensure_model_dir(spec, tmp_path)
        part = tmp_path / "tiny" / "model.pth.part"
        assert part.stat().st_size == 1_000_000
        ensure_model_dir(spec, tmp_path)
        assert "bytes=1000000-" in s.ranges
        assert (tmp_path / "tiny" / "model.pth").read_bytes() == (
            tag2text_dir / "model.pth"
        ).read_bytes()
    finally:
        s.close()


def test_checksum_mismatch_removes_the_file(tmp_path, tag2text_dir, server):
    spec = _spec_for(tag2text_dir, server.url)
    bad = RemoteFile("tag_list.txt", f"{server.url}/tag_list.txt", 29_062, "0" * 64)
    spec = ModelSpec(**{**spec.__dict__, "files": (bad,)})
    with pytest.raises(DownloadError, match="checksum"):
        ensure_model_dir(spec, tmp_path)
    assert not (tmp_path / "tiny" / "tag_list.txt").exists()


def test_offline_error_names_files_urls_and_folder(tmp_path):
    spec = CATALOGUE["tag2text-swin-14m"]
    with pytest.raises(DownloadError) as err:
        ensure_model_dir(spec, tmp_path)  # HF_HUB_OFFLINE=1 in tests; GitHub is unreachable
    message = str(err.value)
    for f in spec.files:
        assert f.filename in message and f.url in message and f.sha256 in message
    assert str(tmp_path / "tag2text-swin-14m") in message
    assert (tmp_path / "tag2text-swin-14m" / "config.json").is_file()


def test_hub_files_go_through_huggingface_hub(tmp_path, tag2text_dir, monkeypatch):
    calls = []

    def fake_hf_hub_download(repo_id, filename, local_dir):
        calls.append((repo_id, filename))
        target = Path(local_dir) / filename
        target.write_bytes((tag2text_dir / "vocab.txt").read_bytes())
        return str(target)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    vocab = CATALOGUE["tag2text-swin-14m"].files[2]
    download.fetch_file(vocab, tmp_path)
    assert calls == [(vocab.hf_repo, vocab.hf_filename)]
    assert (tmp_path / "vocab.txt").stat().st_size == vocab.size


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_catalogue_entries_are_complete(name, reference_dir):
    spec = CATALOGUE[name]
    assert spec.name == name and spec.license and spec.source.startswith("https://")
    names = {f.filename for f in spec.files}
    assert spec.config["checkpoint"]["file"] in names and spec.config["tag_list_file"] in names
    for f in spec.files:
        assert f.url.startswith("https://") and len(f.sha256) == 64 and f.size > 0
    # Files that tests/data/reference holds must match their pinned checksum.
    readme = (reference_dir / "README.md").read_text()
    for f in spec.files:
        if f.size < 10_000_000:
            assert f.sha256 in readme, f.filename


def test_offline_install_folder_is_used_without_downloading(tmp_path, tag2text_dir, monkeypatch):
    from tag2text_zoo.assets.download import LOCAL_MODELS_ENV, installed_model_dir

    empty_home = tmp_path / "home"
    assert installed_model_dir("tag2text-swin-14m", empty_home) is None
    local = tmp_path / "local"
    local.mkdir()
    (local / "tag2text-swin-14m").symlink_to(tag2text_dir, target_is_directory=True)
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    assert installed_model_dir("tag2text-swin-14m", empty_home) == local / "tag2text-swin-14m"
    tagger = load_tagger("tag2text-swin-14m", device="cpu", models_dir=empty_home)
    assert tagger.config.num_tags == 3429 and not empty_home.exists()  # nothing fetched


def test_processes_fetching_one_model_at_once_download_it_once(tmp_path, tag2text_dir, server):
    # Ray actors starting together on a node (or nodes sharing the folder) load the same model.
    spec = _spec_for(tag2text_dir, server.url)
    start = threading.Barrier(2)
    done = []

    def fetch():
        start.wait()
        done.append(ensure_model_dir(spec, tmp_path))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done == [tmp_path / "tiny"] * 2
    assert len(server.ranges) == len(spec.files)  # each file requested once
    for f in spec.files:
        assert (tmp_path / "tiny" / f.filename).read_bytes() == (
            tag2text_dir / f.filename
        ).read_bytes()
