"""Runs the README's code blocks in order, as a reader would in one session (``python
tests/readme_runner.py BLOCKS.json``; started by tests/test_readme.py, which prepares the world).

Python blocks share one namespace, like cells of a notebook; shell lines run in a shell, except
``python -m tag2text_zoo`` commands, which call the CLI's ``main`` in this process. Each
block's traceback points at its README line. GitHub downloads of this repository (FiftyOne's
``register_zoo_model_source``) are served from the working tree, since there is no network.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = ("tag2text-zoo", "tag2text-zoo")
# What a zoo source needs of the repository; the test data is left out to keep the copy small.
NOT_COPIED = ("tests/", "docs/", "benchmarks/")


def _serve_repository_downloads() -> None:
    """FiftyOne downloads a GitHub repository as a zip of one folder: copy the working tree."""
    from fiftyone.utils.github import GitHubRepository

    def download(self, outdir):
        if (self.user, self.repo) != REPOSITORY:
            raise RuntimeError(f"no network: cannot download {self.user}/{self.repo}")
        listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
        files = subprocess.run(listed, cwd=ROOT, capture_output=True, text=True, check=True)
        files = files.stdout.split()
        target = Path(outdir) / f"{self.user}-{self.repo}-main"
        for name in files:
            if not name.startswith(NOT_COPIED) and (ROOT / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)

    GitHubRepository.download = download


def _shell(code: str, line: int) -> None:
    """Each command (backslash continuations joined) must succeed."""
    for command in code.replace("\\\n", " ").splitlines():
        command = command.strip()
        if not command or command.startswith("#"):
            continue
        words = _cli_words(command)
        if words is not None:
            status = _run_cli(words)
        else:
            command = command.replace("python ", f"{sys.executable} ", 1)
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
            status = done.returncode
            if status:
                print(done.stdout, done.stderr, sep="\n", flush=True)
        if status:
            raise SystemExit(f"README.md:{line}: `{command}` exited {status}")


def _cli_words(command: str) -> list[str] | None:
    """The arguments of a plain ``python -m tag2text_zoo ...`` command (no pipes, redirections or
    variables), else None."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)  # '#' starts a comment, as in the shell
    if words[:3] != ["python", "-m", "tag2text_zoo"] or "$" in command:
        return None
    if any(word and set(word) <= set(lexer.punctuation_chars) for word in words):
        return None
    return words[3:]


def _run_cli(argv: list[str]) -> int:
    """``python -m tag2text_zoo ARGV`` in this process: the same ``main`` that ``__main__`` runs,
    without a fresh interpreter's 10-20 s of imports on a slow machine (tests/test_cli.py runs
    the real ``-m`` entry point)."""
    from tag2text_zoo.cli import main

    try:
        return main(argv) or 0
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1


def _no_failed_samples(namespace: dict, line: int) -> None:
    """Every image the test provides is readable: a run report or model listing failures is a
    bug that a block which merely runs would hide."""
    for name, value in namespace.items():
        failures = getattr(value, "failures", None)
        if isinstance(failures, list) and failures:
            raise SystemExit(f"README.md:{line}: `{name}` lists failed samples: {failures[:3]}")


def main(blocks_file: str) -> None:
    blocks = json.loads(Path(blocks_file).read_text())
    _serve_repository_downloads()
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:
        start = time.perf_counter()
        try:
            if block["setup"]:
                exec(
                    compile(block["setup"], f"README.md:{block['line']} (setup)", "exec"), namespace
                )
            if block["lang"] == "python":
                exec(compile(block["code"], f"README.md:{block['line']}", "exec"), namespace)
            else:
                _shell(block["code"], block["line"])
            _no_failed_samples(namespace, block["line"])
        except SystemExit:
            raise
        except BaseException:
            traceback.print_exc()
            raise SystemExit(f"README.md:{block['line']}: the block above failed") from None
        took = time.perf_counter() - start
        print(f"README.md:{block['line']} ({block['lang']}) ran in {took:.1f} s", flush=True)
    print("all blocks ran", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1])
