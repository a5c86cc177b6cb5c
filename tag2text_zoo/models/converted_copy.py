"""Converted copies of checkpoint files (e.g. ``model.pth`` -> ``model.safetensors``), tied to
their source by content.

A copy's safetensors metadata records the sha256 of the source it was made from and, as a fast
path, the source's size, mtime and ctime at that moment. The copy is used only while the source is
unchanged: when the size or a time differs the source is hashed again; the same digest re-stamps
the copy, another one means the copy is stale and is rebuilt. A copy whose source is gone stands
alone (the source may be deleted to save space). :func:`load_converted` is the one rule.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError, safe_open

logger = logging.getLogger(__name__)

T = TypeVar("T")

COPY_FORMAT = "tag2text-zoo/2"
# What a copy that cannot be read or does not fit raises: it is then rebuilt from the source.
UNUSABLE_COPY_ERRORS = (SafetensorError, OSError, RuntimeError, ValueError, KeyError)
_STAT_KEYS = ("source_size", "source_mtime_ns", "source_ctime_ns")
_OWN_KEYS = ("format", "source", "source_sha256", *_STAT_KEYS)


def sha256_of(path: Path, chunk: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stat_of(source: Path) -> dict[str, str]:
    st = source.stat()
    return dict(zip(_STAT_KEYS, map(str, (st.st_size, st.st_mtime_ns, st.st_ctime_ns))))


def copy_metadata(copy: Path) -> dict[str, str]:
    """The metadata stored in a safetensors file; empty when it cannot be read."""
    try:
        with safe_open(str(copy), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as err:
        logger.warning("ignoring unreadable converted copy %s (%s)", copy, err)
        return {}


def _write(save_copy: Callable[[Path, dict[str, str]], None], copy: Path, meta: dict) -> None:
    """Writes through a temporary file in the same folder, so a copy is whole or absent."""
    tmp = copy.with_name(f".{copy.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_copy(tmp, meta)
        os.replace(tmp, copy)
    except OSError as err:  # a read-only folder or a full disk: the source stays the source
        logger.warning("could not write converted copy %s (%s)", copy, err)
    finally:
        tmp.unlink(missing_ok=True)


def load_converted(
    source: Path,
    copy: Path,
    convert: Callable[[], T],
    load_copy: Callable[[Path], T],
    save_copy: Callable[[T, Path, dict[str, str]], None],
    write: bool = True,
) -> T:
    """``convert()`` of ``source``, or ``load_copy(copy)`` while the copy still matches the source.

    Args:
        source: the original file (e.g. an official ``.pth``).
        copy: where its converted safetensors copy is kept.
        convert: reads ``source`` and returns the converted value (its errors propagate).
        load_copy: reads the copy and returns the same value; raising one of
            ``UNUSABLE_COPY_ERRORS`` means the copy is unusable and is rebuilt.
        save_copy: ``save_copy(value, path, metadata)`` writes a copy at ``path`` holding
            ``metadata`` (e.g. ``safetensors.torch.save_file(tensors, path, metadata)``).
        write: write (or re-stamp) the copy; unwritable folders are skipped silently.

    Returns:
        The value from the copy when its recorded source fingerprint matches ``source`` (or
        ``source`` does not exist), else from ``convert()``.
    """
    source, copy = Path(source), Path(copy)
    if not source.exists() and copy.is_file():
        return load_copy(copy)  # the copy stands alone; its errors are the caller's to report
    digest = None
    stat = _stat_of(source) if source.exists() else {}
    meta = copy_metadata(copy) if copy.is_file() else {}
    if meta.get("format") == COPY_FORMAT and meta.get("source_sha256"):
        fresh = all(meta.get(k) == v for k, v in stat.items())
        if not fresh:
            digest = sha256_of(source)  # size or times changed: compare contents
        if fresh or digest == meta["source_sha256"]:
            try:
                value = load_copy(copy)
            except UNUSABLE_COPY_ERRORS as err:
                logger.warning("ignoring unusable converted copy %s (%s)", copy, err)
            else:
                if not fresh and write:  # same content, new times: re-stamp for the fast path
                    own = {k: meta[k] for k in _OWN_KEYS if k in meta}
                    _write(lambda p, m: save_copy(value, p, m), copy, {**own, **stat})
                return value
        else:
            logger.warning("%s changed since %s was made from it; converting again", source, copy)
    elif meta:
        logger.info("%s was not made by this version; converting %s again", copy, source)
    value = convert()
    if write:
        digest = digest or sha256_of(source)
        meta = {"format": COPY_FORMAT, "source": source.name, **stat, "source_sha256": digest}
        _write(lambda p, m: save_copy(value, p, m), copy, meta)
    return value
