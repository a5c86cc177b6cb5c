"""What a run did: samples done, skipped, and each failure with its sample, file and reason."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Failure:
    """A sample left unlabelled, and why.

    Attributes:
        sample_id: the sample's id (``"#i"`` for the i-th image given directly).
        filepath: its image file, when known.
        reason: what went wrong, naming the file or field.
    """

    sample_id: str
    filepath: str | None
    reason: str

    def __str__(self) -> str:
        """``sample <id> (<file>): <reason>``; the file is left out where the reason names it."""
        named = not self.filepath or self.filepath in self.reason
        return f"sample {self.sample_id}{'' if named else f' ({self.filepath})'}: {self.reason}"


@dataclass
class RunReport:
    """The outcome of a runner (:func:`label_samples`, :func:`segment_samples`,
    :func:`segment_dense`).

    Attributes:
        done: samples labelled by this run.
        skipped: samples that already had the output and were left alone.
        failures: samples that could not be labelled (left without output; a re-run retries them).
    """

    done: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        """``"3 done, 1 skipped, 1 failed"``."""
        return f"{self.done} done, {self.skipped} skipped, {self.failed} failed"


class RunStopped(RuntimeError):
    """A run stopped by its surroundings (the database unreachable, the disk full) before it
    finished. What it had written is kept and counted in :attr:`report`; the batch in flight was
    not written, so running it again continues where it stopped.

    Attributes:
        report: the samples done, skipped and failed before the stop.
    """

    def __init__(self, reason: str, report: RunReport) -> None:
        super().__init__(f"{reason}; stopped after {report.summary()}; run again to continue")
        self.report = report
