"""Downloads catalogue models into model directories: resumable, checksummed, clear when offline."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from pathlib import Path

from filelock import FileLock

from .catalogue import ModelSpec, RemoteFile
from .model_dir import ModelDirectory

# Offline installs and tests: a folder of ready model directories named after catalogue entries.
LOCAL_MODELS_ENV = "TAG2TEXT_ZOO_LOCAL_MODELS"


class DownloadError(OSError):
    """Files could not be fetched; the message lists them and how to place them by hand."""


def default_models_dir() -> Path:
    home = os.environ.get("TAG2TEXT_ZOO_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "tag2text_zoo"


def local_model_dir(name: str) -> Path | None:
    """``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>`` if that variable is set and the folder exists."""
    root = os.environ.get(LOCAL_MODELS_ENV)
    return Path(root) / name if root and (Path(root) / name).is_dir() else None


def installed_model_dir(name: str, models_dir: str | Path | None = None) -> Path | None:
    """A model directory for catalogue model ``name`` already on this machine, or None.

    Looks in ``$TAG2TEXT_ZOO_LOCAL_MODELS`` first, then where :func:`ensure_model_dir` downloads.
    """
    root = Path(models_dir or default_models_dir()).expanduser()
    for candidate in (local_model_dir(name), root / name):
        if candidate is None:
            continue
        try:
            return ModelDirectory.open(candidate).path
        except (OSError, ValueError):
            continue
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _http_download(url: str, dest: Path, size: int, timeout: float = 60.0) -> None:
    """HTTP(S) download into ``dest``, resuming a previous ``.part`` file with a Range request.

    The ``.part`` file becomes ``dest`` only once it holds ``size`` bytes; a connection that ends
    early leaves it in place for the next run to continue.
    """
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if offset > size:  # not the file we expect: start over
        part.unlink()
        offset = 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if offset and response.status != 206:  # server ignored the Range: start over
            offset = 0
        with part.open("ab" if offset else "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    received = part.stat().st_size
    if received != size:
        raise DownloadError(f"{url}: connection ended at {received:,} of {size:,} bytes")
    os.replace(part, dest)


def _hub_download(file: RemoteFile, model_dir: Path) -> None:
    from huggingface_hub import hf_hub_download

    assert file.hf_repo and file.hf_filename
    fetched = Path(hf_hub_download(file.hf_repo, file.hf_filename, local_dir=model_dir))
    if fetched.name != file.filename:
        os.replace(fetched, model_dir / file.filename)


def _is_complete(file: RemoteFile, path: Path) -> bool:
    if path.is_file() and path.stat().st_size == file.size:
        return True
    # A converted safetensors copy stands in for an official checkpoint that was deleted.
    return path.suffix in (".pth", ".pt") and path.with_suffix(".safetensors").is_file()


def fetch_file(file: RemoteFile, model_dir: Path) -> None:
    """Downloads one file and verifies its size and sha256 (a mismatching file is removed)."""
    dest = model_dir / file.filename
    if file.hf_repo:
        _hub_download(file, model_dir)
    else:
        _http_download(file.url, dest, file.size)
    size = dest.stat().st_size
    if size != file.size or _sha256(dest) != file.sha256:
        dest.unlink()
        raise DownloadError(
            f"{file.url} gave a file of {size:,} bytes whose checksum is not the pinned one "
            f"(expected {file.size:,} bytes, sha256 {file.sha256}); it was removed"
        )


def _fetch_missing(spec: ModelSpec, model_dir: Path) -> list[tuple[RemoteFile, str]]:
    """Writes the config and fetches the incomplete files; the files that failed, and why."""
    config = model_dir / "config.json"
    if not config.is_file():
        config.write_text(json.dumps(spec.config, indent=2), encoding="utf-8")
    failures: list[tuple[RemoteFile, str]] = []
    for file in spec.files:
        if _is_complete(file, model_dir / file.filename):
            continue
        try:
            fetch_file(file, model_dir)
        except Exception as err:  # noqa: BLE001 - reported below with every failed file
            failures.append(
                (file, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            )
    return failures


def ensure_model_dir(spec: ModelSpec, models_dir: str | Path | None = None) -> Path:
    """Makes ``<models_dir>/<name>`` a complete model directory, downloading what is missing.

    Re-running after an interruption resumes: complete files are kept and partial downloads
    continue where they stopped.

    Raises:
        DownloadError: some files could not be fetched (offline, say); lists them, their URLs,
            and where to put them by hand.
    """
    model_dir = Path(models_dir or default_models_dir()).expanduser() / spec.name
    model_dir.mkdir(parents=True, exist_ok=True)
    # Processes sharing the folder (Ray actors of a node, nodes on a shared file system) fetch
    # one at a time: the first downloads, the others then find the files complete.
    with FileLock(model_dir.parent / f".{spec.name}.lock"):
        failures = _fetch_missing(spec, model_dir)
    if failures:
        lines = "\n".join(
            f"  - {f.filename} ({f.size:,} bytes, sha256 {f.sha256})\n      from {f.url}\n"
            f"      error: {why}"
            for f, why in failures
        )
        raise DownloadError(
            f"could not download {len(failures)} file(s) of '{spec.name}' (offline?):\n{lines}\n"
            f"Download them by hand into {model_dir}/ under the names shown, then run again; "
            "partial downloads resume."
        )
    return model_dir
