"""The official code in its own environment, as a subprocess the benchmarks talk to."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).resolve().parent / "official_runner.py"


@dataclass(frozen=True)
class OfficialBuild:
    """A scratch build of the official code (official_runner.py says how to make one)."""

    python: Path  # its virtual environment's interpreter (transformers 4.25.1, ...)
    src: Path  # the folder holding the official ``ram`` package
    bert: Path  # the bert-base-uncased tokenizer folder


class OfficialProcess:
    """The official model, loaded once in a subprocess; :meth:`run` times it on images."""

    def __init__(
        self, build: OfficialBuild, model_type: str, checkpoint: Path, threads: int, log: Path
    ) -> None:
        command = [
            str(build.python),
            str(RUNNER),
            "--src",
            str(build.src),
            "--bert",
            str(build.bert),
            "--model-type",
            model_type,
            "--checkpoint",
            str(checkpoint),
            "--threads",
            str(threads),
        ]
        self._log = log.open("w")
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self.ready = self._reply()

    def _reply(self) -> dict:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the official code stopped; see {self._log.name}")
        return json.loads(line)

    def run(self, mode: str, images: list[Path]) -> dict:
        """Per-image ``wall_s`` / ``cpu_s`` (batch 1), ``outputs`` and ``peak_rss_mb``."""
        assert self._proc.stdin is not None
        request = {"mode": mode, "images": [str(p) for p in images]}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._log.close()
