"""One public API: what the README uses comes from ``tag2text_zoo`` itself, and the shells (CLI,
App operators) use nothing below it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tag2text_zoo

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
SHELLS = [ROOT / "tag2text_zoo" / "cli.py", *sorted((ROOT / "plugin").glob("*.py"))]


def _imports(source: str) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every ``from ... import`` in the code."""
    return [
        (node.module or "", [a.name for a in node.names])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    ]


def test_readme_imports_every_name_from_the_package_itself():
    used = [
        (module, names)
        for block in PYTHON_BLOCKS
        for module, names in _imports(block)
        if module.startswith("tag2text_zoo")
    ]
    assert used, "the README shows no Python API"
    assert {module for module, _ in used} == {"tag2text_zoo"}
    for _, names in used:
        for name in names:
            assert hasattr(tag2text_zoo, name), name
            assert name in tag2text_zoo.__all__, name
    for capability in ["load_tagger", "load_grounded_segmenter", "load_dense_segmenter"]:
        assert any(capability in names for _, names in used)


@pytest.mark.parametrize("path", SHELLS, ids=lambda p: p.name)
def test_cli_and_operators_use_no_engine_or_model_module(path):
    source = path.read_text(encoding="utf-8")
    for module, _ in _imports(source):
        assert not re.match(r"(tag2text_zoo)?\.?(engines|models)\b", module), (path, module)
    if "(foo.Operator)" in source:
        assert len(source.splitlines()) < 120, f"operator file {path.name} is over 120 lines"


def test_engines_run_without_fiftyone(tag2text_dir, tag2text_images, want):
    # GPU workers and Ray actors may lack FiftyOne: the package and its engines must not need it.
    code = f"""
import sys
sys.modules["fiftyone"] = None  # any import of it now fails
import tag2text_zoo
tagger = tag2text_zoo.load_tagger({str(tag2text_dir)!r}, device="cpu")
print(",".join(tagger.predict([{str(tag2text_images[0])!r}])[0].tags))
assert not any(m.startswith("fiftyone") and sys.modules[m] for m in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ",".join(want[tag2text_images[0].name]["tags"])
