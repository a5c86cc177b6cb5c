"""The database going away in the middle of a run (issue #14). The test starts a mongod of its own
(own port and folder; the shared database is never touched) for a child process, and kills it
while the child is about to write a batch: restarted within the retries, the run goes on; left
down, the run stops with a clear error and the counts of what it did, and the same command run
again, once the database is back, finishes with nothing lost and nothing done twice."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from data_paths import FIXTURES
from faults_driver import finish, start
from fiftyone.core.service import DatabaseService


class Mongod:
    """A mongod of this test's own, on a free port, over a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [DatabaseService.find_mongod(), "--dbpath", str(self.folder)]
        command += ["--port", str(self.port), "--bind_ip", "127.0.0.1", "--nounixsocket"]
        command += ["--logpath", str(self.folder / "mongod.log"), "--logappend"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the test's mongod did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _wait_for(path: Path, child: subprocess.Popen) -> None:
    while not path.exists():
        assert child.poll() is None, (path.parent / "stderr").read_text()
        time.sleep(0.05)


@pytest.fixture
def mongod(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    server = Mongod(db)
    server.start()
    yield server
    server.kill()


def test_run_survives_a_restart_or_stops_clearly_and_resumes(mongod, tmp_path, tag2text_images):
    folder = tmp_path / "t2t-faults-db"
    folder.mkdir()
    for i, image in enumerate([tag2text_images[i] for i in (4, 3, 5, 4, 3, 5)]):
        shutil.copy(image, folder / f"{i}_{image.name}")
    env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_PRIVATE_DATABASE_PORT"}
    env["FIFTYONE_DATABASE_URI"] = (
        f"mongodb://127.0.0.1:{mongod.port}/?serverSelectionTimeoutMS=1500"
    )
    env["FIFTYONE_DATABASE_VALIDATION"] = "false"
    label = ["label", str(folder), "--model", str(FIXTURES / "ram-tiny"), "--batch-size", "2"]
    label += ["--device", "cpu", "--num-workers", "0"]
    runs = [
        {"argv": label, "fault": "pause-before-write", "batch": 2},
        {"argv": [*label, "--label-field", "again"], "fault": "pause-before-write", "batch": 2},
        {"argv": [*label, "--label-field", "again"], "fault": "pause-before-start"},
    ]
    log = tmp_path / "calls"
    child = start(tmp_path, runs, env, delays=[0.5, 1, 2], state=folder.name)

    _wait_for(Path(f"{log}.ready.0"), child)  # run 0: the database restarts during the retries
    mongod.kill()
    Path(f"{log}.go.0").touch()
    time.sleep(2)  # longer than pymongo's own wait: the run's retries carry it through
    mongod.start()

    _wait_for(Path(f"{log}.ready.1"), child)  # run 1: the database stays away
    mongod.kill()
    Path(f"{log}.go.1").touch()

    _wait_for(Path(f"{log}.ready.2"), child)  # run 2: the same command, the database back
    mongod.start()
    Path(f"{log}.go.2").touch()
    done = finish(tmp_path, child, timeout=300)

    out, err = done.proc.stdout, done.proc.stderr
    assert done.codes == [0, 1, 0], err
    assert "writing 't2t_tags': database unreachable" in err  # the outage was met, and survived
    assert f"{folder.name}: t2t_tags: 6 done, 0 skipped, 0 failed" in out
    assert f"{folder.name}: again_tags: 2 done, 0 skipped, 0 failed" in out
    stopped = [line for line in err.splitlines() if line.startswith("error: ")]
    assert stopped == [
        f"error: the database could not be reached (127.0.0.1:{mongod.port}: [Errno 111] "
        "Connection refused); stopped after 2 done, 0 skipped, 0 failed; run again to continue"
    ]
    assert "Traceback" not in err
    assert f"{folder.name}: again_tags: 4 done, 2 skipped, 0 failed" in out

    names = sorted(p.name for p in folder.iterdir())
    assert [name for name, _ in done.state] == names  # every image once: nothing duplicated
    assert all({"t2t_tags", "again_tags"} <= set(fields) for _, fields in done.state)
    first, stopped_run, resumed = done.calls
    assert sorted(first.values()) == [1] * 6
    assert sum(stopped_run.values()) == sum(resumed.values()) == 4
    assert set(stopped_run) | set(resumed) == set(first)  # nothing lost
    assert len(set(stopped_run) & set(resumed)) == 2  # only the batch that was not written


def test_a_field_declaration_lost_in_a_crash_is_declared_again_by_the_next_run(make_dataset):
    """A killed mongod can lose a write it acknowledged (not yet journaled): here the schema
    entry of a new field, while its values and this process's FiftyOne schema remain. The next
    run in the same process labels the rest and declares the field again (it used to stop with
    "Sample field 'again_tags' does not exist", seen once in CI)."""
    import fiftyone as fo

    from tag2text_zoo import label_samples, load_tagger

    images = sorted((FIXTURES / "ram-tiny" / "images").glob("*"))[:4]
    dataset = make_dataset(images)
    tagger = load_tagger(FIXTURES / "ram-tiny", device="cpu")
    label_samples(dataset[:2], tagger, "again", batch_size=2, num_workers=0)
    datasets = fo.core.odm.get_db_conn().datasets
    doc = datasets.find_one({"_id": dataset._doc.id})
    doc["sample_fields"] = [f for f in doc["sample_fields"] if f["name"] != "again_tags"]
    datasets.replace_one({"_id": doc["_id"]}, doc)  # what the crash lost
    assert dataset.has_field("again_tags")  # this process still believes in it

    report = label_samples(dataset, tagger, "again", batch_size=2, num_workers=0)
    assert (report.done, report.skipped, report.failed) == (2, 2, 0)
    stored = datasets.find_one({"_id": dataset._doc.id})["sample_fields"]
    assert "again_tags" in {f["name"] for f in stored}
    assert dataset.count("again_tags") == 4
