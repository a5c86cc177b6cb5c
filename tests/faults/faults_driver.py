"""Runs tag2text_zoo commands in a child process with one fault injected at a chosen point.

    python faults_driver.py PLAN.json

PLAN is ``{"log": <file>, "runs": [<run>, ...]}``; each run is ``{"argv": [...]}`` (the command
line of ``python -m tag2text_zoo``) or ``{"dense": {...}}`` (``segment_dense`` keyword arguments
plus ``dataset``, ``clip`` and ``projector``), with an optional ``"fault"`` and ``"batch"`` (N,
counted from 1 within the run):

- ``kill-after-predict``: SIGKILL once batch N is predicted, before its labels are written;
- ``kill-mid-write``: SIGKILL after the first field of batch N is written;
- ``kill-mid-import``: SIGKILL after half of a folder's images were added to its dataset;
- ``pause-before-write``: before batch N is written, create ``<log>.ready.<run>`` and wait for
  ``<log>.go.<run>`` (meanwhile the test stops the database);
- ``pause-before-start``: the same handshake before the run starts.

With ``"delays"``, the plan replaces the database retry delays (``database.DELAYS_S``); with
``"state": <dataset>``, the driver prints ``state=<JSON>`` at the end: each sample's file name and
its fields that hold a value, sorted by file name.

The sample ids of every batch given to the model are appended to ``log`` as a JSON line and
flushed before any fault fires, so a test counts model calls across killed processes. After each
run the driver prints ``rc=<exit code>`` (0 for a dense run that returned).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import fiftyone as fo
from fiftyone.core.dataset import Dataset

import tag2text_zoo.fo.base.run as run_loop
from tag2text_zoo import load_dense_segmenter, segment_dense
from tag2text_zoo.cli import main
from tag2text_zoo.fo.base import database


class Faults:
    """The patched steps: each call checks whether the current run's fault is due."""

    def __init__(self, log: str) -> None:
        self.log, self.run, self.fault, self.at, self.batch = log, 0, None, None, 0
        self.predict = run_loop.predict_batch
        self.set_values, self.add_samples = Dataset.set_values, Dataset.add_samples
        run_loop.predict_batch = self._predict
        Dataset.set_values, Dataset.add_samples = self._wrap_set_values(), self._wrap_add_samples()

    def start(self, index: int, fault: str | None, at: int | None) -> None:
        self.run, self.fault, self.at, self.batch = index, fault, at, 0

    def _due(self, fault: str) -> bool:
        return self.fault == fault and self.batch == self.at

    def _predict(self, model, items):
        self.batch += 1
        with open(self.log, "a") as f:
            ids = [it["id"] for it in items if it["error"] is None]
            f.write(json.dumps({"run": self.run, "ids": ids}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        out = self.predict(model, items)
        if self._due("kill-after-predict"):
            os.kill(os.getpid(), signal.SIGKILL)
        if self._due("pause-before-write"):
            self.handshake()
        return out

    def handshake(self) -> None:
        """Says this run is ready, and waits for the test's go."""
        Path(f"{self.log}.ready.{self.run}").touch()
        while not Path(f"{self.log}.go.{self.run}").exists():
            time.sleep(0.05)

    def _wrap_set_values(self):
        original, faults = self.set_values, self

        def set_values(dataset, *args, **kwargs):
            original(dataset, *args, **kwargs)
            if faults._due("kill-mid-write"):
                os.kill(os.getpid(), signal.SIGKILL)

        return set_values

    def _wrap_add_samples(self):
        original, faults = self.add_samples, self

        def add_samples(dataset, samples, *args, **kwargs):
            if faults.fault != "kill-mid-import":
                return original(dataset, samples, *args, **kwargs)
            samples = list(samples)
            original(dataset, samples[: len(samples) // 2], *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        return add_samples


def _dense(options: dict) -> int:
    options = dict(options)
    dataset = fo.load_dataset(options.pop("dataset"))
    model = load_dense_segmenter(options.pop("clip"), options.pop("projector"), device="cpu")
    segment_dense(dataset, model, **options)
    return 0


def _state(name: str) -> list[tuple[str, list[str]]]:
    dataset = fo.load_dataset(name)
    fields = list(dataset.get_field_schema())
    state = [
        (Path(sample.filepath).name, sorted(f for f in fields if sample[f] is not None))
        for sample in dataset
    ]
    return sorted(state)


def run_plan(plan: dict) -> None:
    if "delays" in plan:
        database.DELAYS_S = tuple(plan["delays"])
    faults = Faults(plan["log"])
    for index, run in enumerate(plan["runs"]):
        faults.start(index, run.get("fault"), run.get("batch"))
        if faults.fault == "pause-before-start":
            faults.handshake()
        rc = _dense(run["dense"]) if "dense" in run else main(run["argv"])
        print(f"rc={rc}", flush=True)
    if "state" in plan:
        print(f"state={json.dumps(_state(plan['state']))}", flush=True)


@dataclass
class Driven:
    """A finished child: its process result and the ids given to the model, per run."""

    proc: subprocess.CompletedProcess
    calls: list[Counter]

    @property
    def codes(self) -> list[int]:
        """The exit code of each run that finished (``rc=`` lines)."""
        return [int(line[3:]) for line in self.proc.stdout.splitlines() if line.startswith("rc=")]

    @property
    def state(self) -> list[list]:
        """The ``state=`` the plan asked for: ``[file name, [fields with a value]]`` per sample."""
        (line,) = [x for x in self.proc.stdout.splitlines() if x.startswith("state=")]
        return json.loads(line[len("state=") :])


def start(folder: Path, runs: list[dict], env: dict | None = None, **plan) -> subprocess.Popen:
    """Starts the driver on ``runs`` and other ``plan`` keys (see the module docstring); its log
    is ``folder/calls``."""
    path = folder / "plan.json"
    path.write_text(json.dumps({"log": str(folder / "calls"), "runs": runs, **plan}))
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen(
            [sys.executable, __file__, str(path)], stdout=out, stderr=err, env=env
        )


def finish(folder: Path, child: subprocess.Popen, timeout: float = 300) -> Driven:
    """Waits for a started driver; the model calls of each of its runs, from its log."""
    child.wait(timeout=timeout)
    out, err = (folder / "stdout").read_text(), (folder / "stderr").read_text()
    proc = subprocess.CompletedProcess(child.args, child.returncode, out, err)
    log = folder / "calls"
    calls: list[Counter] = []
    for line in log.read_text().splitlines() if log.exists() else []:
        entry = json.loads(line)
        calls.extend(Counter() for _ in range(entry["run"] + 1 - len(calls)))
        calls[entry["run"]].update(entry["ids"])
    log.unlink(missing_ok=True)
    return Driven(proc, calls)


def drive(folder: Path, runs: list[dict], env: dict | None = None) -> Driven:
    """Runs the driver on ``runs`` to its end (or its kill)."""
    return finish(folder, start(folder, runs, env))


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    run_plan(json.loads(Path(sys.argv[1]).read_text()))
