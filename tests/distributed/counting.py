"""Test helper: a model spec whose workers log every image they read, as ``<pid> <path>``
lines in a file, optionally slowly (so that a test can kill a process mid-run)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tag2text_zoo import ModelSpec


@dataclass(frozen=True)
class CountingSpec(ModelSpec):
    """A ModelSpec that also counts model calls: each image a stage reads is logged."""

    log: str = ""
    delay: float = 0.0

    def load(self) -> Any:
        from tag2text_zoo.distributed import stages

        read = getattr(stages.load_image, "__wrapped__", stages.load_image)

        def logged(path, **kwargs):
            with open(self.log, "a") as log:
                log.write(f"{os.getpid()} {path}\n")
            time.sleep(self.delay)
            return read(path, **kwargs)

        logged.__wrapped__ = read
        stages.load_image = logged  # this worker process's stages only
        return super().load()


def calls(log: str | Path) -> list[tuple[int, str]]:
    """``(pid, path)`` of every logged image read, in order."""
    path = Path(log)
    if not path.exists():
        return []
    return [(int(pid), p) for pid, p in (ln.split(" ", 1) for ln in path.read_text().splitlines())]
