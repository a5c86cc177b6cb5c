"""Every code block of the README runs, in order, on tiny models (tests/readme_runner.py).

The world a reader has is rebuilt offline: catalogue names resolve to the golden fixtures through
``$TAG2TEXT_ZOO_LOCAL_MODELS``; the Hugging Face hub ids the README names are tiny random models
in a Hugging Face cache of the test's own; the images the README names exist; a database of its
own. A few values a reader would change are swapped (``device="cuda"`` for the CPU, placeholder
folders for real ones, a 10,000-step training for 2 steps): :data:`SUBSTITUTIONS`.

Directives, as HTML comments right before a block (GitHub does not show them):
- ``<!-- test: skip REASON -->``: the block is not run (a synopsis, the install command).
- ``<!-- test: setup`` + Python lines + ``-->``: run first, in the same namespace (the givens a
  block assumes, such as a ground-truth field).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from data_paths import FIXTURES, REFERENCE
from official_files import tiny_file
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUNNER = Path(__file__).with_name("readme_runner.py")
BLOCK = re.compile(
    r"(?P<before>(?:<!--.*?-->\s*)?)```(?P<lang>python|bash)\n(?P<code>.*?)```", re.S
)
SUBSTITUTIONS = [
    ('device="cuda"', 'device="cpu"'),
    ("--device cuda", "--device cpu"),
    ("--steps 10000", "--steps 2"),
    ("--batch-size 64", "--batch-size 2"),
]
# Folders the README uses as placeholders -> names under the test's working folder.
PLACEHOLDER_DIRS = {
    "/path/to/images": "images",
    "/path/to/checkpoints": "checkpoints",
    "/data/masks": "masks",
}
# Images the README names, made from fixture images.
IMAGES = ["a.jpg", "b.jpg", "b.png", "photo.jpg", "zoo.jpg"]
MAX_SKIPPED = 3


def readme_blocks() -> list[dict]:
    """``{line, lang, code, setup, skip}`` for every fenced Python or shell block."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in BLOCK.finditer(text):
        before = match["before"].strip()
        skip = re.fullmatch(r"<!-- test: skip (.+?) -->", before, re.S)
        setup = re.fullmatch(r"<!-- test: setup\n(.*?)-->", before, re.S)
        if before and not (skip or setup):
            raise AssertionError(f"unknown directive before a README block: {before[:80]}")
        blocks.append(
            {
                "line": text[: match.start("code")].count("\n"),
                "lang": match["lang"],
                "code": match["code"],
                "setup": setup[1] if setup else None,
                "skip": skip[1] if skip else None,
            }
        )
    return blocks


def _hub_cache(root: Path, gdino: Path, sam: Path) -> Path:
    """A Hugging Face cache in which the README's hub ids are tiny random models."""
    from tiny_grounded import save_tiny_sam2, save_tiny_sam_hq
    from transformers import CLIPConfig, CLIPModel

    clip = root / "clip"
    config = json.loads((FIXTURES / "tagalign-tiny" / "clip" / "config.json").read_text())
    for part in (config, config["text_config"], config["vision_config"]):
        part["projection_dim"] = 512  # RAM's label-embedding width, for open-set vocabularies
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    CLIPModel(CLIPConfig(**config)).save_pretrained(clip)
    for name in ["vocab.json", "merges.txt", "tokenizer_config.json"]:
        shutil.copy(FIXTURES / "tagalign-tiny" / "clip" / name, clip / name)
    models = {
        "IDEA-Research/grounding-dino-tiny": gdino,
        "IDEA-Research/grounding-dino-base": gdino,
        "facebook/sam-vit-base": sam,
        "facebook/sam-vit-large": sam,
        "facebook/sam-vit-huge": sam,
        "syscv-community/sam-hq-vit-base": save_tiny_sam_hq(root / "sam-hq"),
        "facebook/sam2.1-hiera-tiny": save_tiny_sam2(root / "sam2"),
        "openai/clip-vit-base-patch16": clip,
    }
    cache = root / "hub"
    commit = "0" * 40
    for repo, folder in models.items():
        entry = cache / f"models--{repo.replace('/', '--')}"
        shutil.copytree(folder, entry / "snapshots" / commit)
        (entry / "refs").mkdir()
        (entry / "refs" / "main").write_text(commit)
    return cache


def _official_files(checkpoints: Path, local: Path) -> None:
    """Tiny random checkpoints in the released formats: the files the README names in
    ``/path/to/checkpoints``, and the catalogue names it uses (as offline installs)."""
    vocab = REFERENCE / "bert-base-uncased-vocab.txt"
    for folder in (checkpoints, local / "groundingdino-swint-ogc"):
        tiny_file("grounding-dino", folder, "groundingdino_swint_ogc.pth")
        shutil.copy(vocab, folder / "vocab.txt")
    tiny_file("sam-hq", checkpoints, "sam_hq_vit_h.pth")
    tiny_file("sam2", checkpoints, "sam2.1_hiera_large.pt")
    tiny_file("sam", local / "sam-vit-h", "sam_vit_h_4b8939.pth")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_database(tmp_path):
    """A mongod of the test's own: the README's dataset names cannot meet anyone else's."""
    import fiftyone.constants as foc

    mongod = Path(foc.__file__).parent / "db" / "bin" / "mongod"
    if not mongod.is_file():
        pytest.skip(f"no bundled mongod at {mongod}")
    db, port = tmp_path / "db", _free_port()
    db.mkdir()
    options = ["--port", str(port), "--bind_ip", "127.0.0.1", "--fork"]
    command = [str(mongod), "--dbpath", str(db), *options, "--logpath", str(db / "mongod.log")]
    subprocess.run(command, check=True, capture_output=True)
    yield f"mongodb://127.0.0.1:{port}"
    subprocess.run([str(mongod), "--dbpath", str(db), "--shutdown"], capture_output=True)


def test_every_block_is_run_or_skipped_with_a_reason():
    blocks = readme_blocks()
    skipped = [b for b in blocks if b["skip"]]
    assert len(blocks) > 10 and len(skipped) <= MAX_SKIPPED, [b["line"] for b in skipped]


def test_readme_blocks_run(tmp_path, grounded_dirs, tag2text_dir, private_database):
    work = tmp_path / "work"
    work.mkdir()
    sources = sorted((FIXTURES / "tag2text-tiny" / "images").iterdir())
    for i, name in enumerate(IMAGES):
        Image.open(sources[i % 3]).convert("RGB").save(work / name)
    (work / "images").mkdir()
    for source in sources[:3]:
        Image.open(source).convert("RGB").save(work / "images" / f"{source.stem}.jpg")

    local = tmp_path / "local-models"
    local.mkdir()
    for name, fixture in [
        ("tag2text-swin-14m", "tag2text-tiny"),
        ("ram-swin-large-14m", "ram-tiny"),
        ("ram-plus-swin-large-14m", "ram-plus-tiny"),
    ]:
        (local / name).symlink_to(FIXTURES / fixture, target_is_directory=True)
    _official_files(work / "checkpoints", local)

    substitutions = SUBSTITUTIONS + [(k, str(work / v)) for k, v in PLACEHOLDER_DIRS.items()]
    blocks = []
    for block in readme_blocks():
        if block["skip"]:
            continue
        for old, new in substitutions:
            block["code"] = block["code"].replace(old, new)
            block["setup"] = block["setup"] and block["setup"].replace(old, new)
        blocks.append(block)
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))

    env = {
        **os.environ,
        "TAG2TEXT_ZOO_LOCAL_MODELS": str(local),
        "TAG2TEXT_ZOO_HOME": str(tmp_path / "home"),
        "HF_HUB_CACHE": str(_hub_cache(tmp_path / "hf", *grounded_dirs)),
        "HF_HUB_OFFLINE": "1",
        "FIFTYONE_DATABASE_URI": private_database,
        "FIFTYONE_MODEL_ZOO_DIR": str(tmp_path / "zoo"),
        "FIFTYONE_DATASET_ZOO_DIR": str(tmp_path / "dataset-zoo"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, str(RUNNER), str(tmp_path / "blocks.json")]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    print(*(line for line in done.stdout.splitlines() if " ran in " in line), sep="\n")  # -rP
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-8000:]
    assert "all blocks ran" in done.stdout
