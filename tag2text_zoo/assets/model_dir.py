"""Model directories: ``config.json``, the official checkpoint, tag list(s) and vocabulary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..models.checkpoint import cache_path_for
from ..models.config import ModelConfig


class MissingFilesError(FileNotFoundError):
    """A model directory lacks files; the message says which and how to place them."""


@dataclass(frozen=True)
class ModelDirectory:
    path: Path
    config: ModelConfig

    @classmethod
    def open(cls, path: str | Path) -> ModelDirectory:
        """Reads ``path/config.json`` and checks that every file it names is present."""
        path = Path(path).expanduser()
        config_file = path / "config.json"
        if not config_file.is_file():
            raise MissingFilesError(f"{path} is not a model directory: no config.json")
        model_dir = cls(path, ModelConfig.from_file(config_file))
        missing = [p for p in model_dir.required_files() if not p.is_file()]
        if missing:
            names = ", ".join(p.name for p in missing)
            raise MissingFilesError(f"model directory {path} lacks {names}")
        return model_dir

    def required_files(self) -> list[Path]:
        cfg = self.config
        files = [self.path / cfg.tag_list_file]
        files += [self.path / f for f in (cfg.tag_list_chinese_file, cfg.thresholds.file) if f]
        if cfg.has_captioner:
            files.append(self.path / cfg.tokenizer.vocab_file)
        if not cache_path_for(self.checkpoint).is_file():  # a converted copy stands alone
            files.append(self.checkpoint)
        return files

    @property
    def checkpoint(self) -> Path:
        return self.path / self.config.checkpoint_file

    @property
    def vocab(self) -> Path:
        return self.path / self.config.tokenizer.vocab_file

    def _lines(self, filename: str) -> list[str]:
        lines = (self.path / filename).read_text(encoding="utf-8").splitlines()
        if len(lines) != self.config.num_tags:
            raise ValueError(
                f"{self.path / filename} has {len(lines)} lines, config says {self.config.num_tags}"
            )
        return lines

    def tag_list(self) -> list[str]:
        """Tag names, one per class (line i = class i), exactly as in the file."""
        return self._lines(self.config.tag_list_file)

    def tag_list_chinese(self) -> list[str] | None:
        """Chinese tag names exactly as in the file (RAM's keep trailing spaces), or None."""
        name = self.config.tag_list_chinese_file
        return None if name is None else self._lines(name)

    def class_thresholds(self) -> list[float] | None:
        """Per-class thresholds from ``thresholds.file`` (one number per line), or None."""
        name = self.config.thresholds.file
        if name is None:
            return None
        values = []
        for number, line in enumerate(self._lines(name), 1):
            try:
                value = float(line.strip())
            except ValueError:
                value = math.nan
            if not 0.0 <= value <= 1.0:  # NaN fails too
                message = f"{self.path / name} line {number}: {line!r} is not a number in [0, 1]"
                raise ValueError(message)
            values.append(value)
        return values
