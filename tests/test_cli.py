"""``python -m tag2text_zoo tag`` end to end, as a user runs it: the entry point in fresh
interpreters where that is what is tested (``-m``, imports), the rest through ``main`` in this
process (a fresh interpreter costs 10-20 s of imports on a slow machine)."""

from __future__ import annotations

import json
import subprocess
import sys

from tiny_clip import ram_open_set_encoder

from tag2text_zoo.cli import _tagger_spec, _vocabulary, build_parser, main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tag2text_zoo", *args], capture_output=True, text=True, timeout=300
    )


def test_tag_json_matches_reference(tag2text_dir, tag2text_images, tag2text_expected, tmp_path):
    missing = tmp_path / "missing.jpg"
    proc = _run(
        "tag",
        *map(str, tag2text_images[:2]),
        str(missing),
        "--model",
        str(tag2text_dir),
        "--json",
        "--no-exif",
        "--batch-size",
        "2",
    )
    assert proc.returncode == 1  # one image failed; the others were still tagged
    assert f"{missing}: no such image file" in proc.stderr
    records = json.loads(proc.stdout)
    for record, ref in zip(records, tag2text_expected["images"][:2], strict=True):
        assert [t["name"] for t in record["tags"]] == ref["tags"]
        assert record["caption"] == ref["caption"] and record["tag_string"] == ref["tag_string"]


def test_tag_in_int8(tag2text_dir, tag2text_images, capsys):
    args = ["tag", *map(str, tag2text_images[:2]), "--model", str(tag2text_dir), "--no-exif"]
    assert main([*args, "--dtype", "int8", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 2 and all(r["tags"] and r["caption"] for r in records)


def test_tag_text_with_user_tags(tag2text_dir, tag2text_images, tag2text_expected, capsys):
    args = ["tag", str(tag2text_images[0]), "--model", str(tag2text_dir), "--no-exif"]
    assert main([*args, "--tags", "cloud,sky"]) == 0
    out = capsys.readouterr().out
    assert f"Image Caption: {tag2text_expected['images'][0]['user_caption']}" in out
    assert "Image Tags: smile (" in out


def test_help_and_usage_errors_load_neither_torch_nor_fiftyone():
    # They answer at once: importing both takes 15-20 s on a slow 2-core machine.
    code = """
import sys
from tag2text_zoo.cli import main
for argv in (["--help"], ["tag", "x.jpg", "--model", "m", "--batch-size", "0"]):
    try:
        main(argv)
    except SystemExit as exit:
        assert exit.code == (0 if argv == ["--help"] else 2), (argv, exit.code)
    else:
        raise AssertionError(argv)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "fiftyone", "timm"})
assert not heavy, heavy
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "must be at least 1, got 0" in proc.stderr


def test_tag_command_runs_without_fiftyone(tag2text_dir, tag2text_images, tag2text_expected):
    code = f"""
import sys
sys.modules["fiftyone"] = None  # any import of it now fails
from tag2text_zoo.cli import main
args = ["tag", {str(tag2text_images[0])!r}, "--model", {str(tag2text_dir)!r}, "--no-exif"]
sys.exit(main([*args, "--tags", "cloud,sky"]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"Image Caption: {tag2text_expected['images'][0]['user_caption']}" in proc.stdout


def test_unknown_model_is_a_clear_error(capsys):
    assert main(["tag", "x.jpg", "--model", "no-such-model"]) == 2
    assert "tag2text-swin-14m" in capsys.readouterr().err


def test_tag_with_an_open_set_vocabulary_file(tag2text_dir, tmp_path, capsys):
    ram_dir = tag2text_dir.parent / "ram-tiny"
    encoder = ram_open_set_encoder(ram_dir, ["kettle", "zebra", "violin"], tmp_path / "encoder")
    vocabulary = tmp_path / "vocabulary.txt"
    vocabulary.write_text("kettle\nzebra\n\n violin \n")
    image = ram_dir / "images" / "a1_rgb_640x480.jpg"
    args = ["tag", str(image), "--model", str(ram_dir), "--no-exif", "--json"]
    assert main([*args, "--vocabulary-file", str(vocabulary), "--text-encoder", str(encoder)]) == 0
    assert [t["name"] for t in json.loads(capsys.readouterr().out)[0]["tags"]] == ["kettle"]


def test_vocabulary_option_parses_and_tag2text_refuses_it(tag2text_dir, tag2text_images, capsys):
    args = build_parser().parse_args(["label", "ds", "--model", "m", "--vocabulary", "a b, c,"])
    assert _vocabulary(args) == ["a b", "c"]
    code = main(["tag", str(tag2text_images[0]), "--model", str(tag2text_dir), "--vocabulary", "c"])
    assert code == 2 and "open-set tagging needs a RAM or RAM++ model" in capsys.readouterr().err


def test_compile_flag_reaches_the_tagger(tag2text_dir):
    """``--compile`` asks for a compiled image encoder (test_fast_paths.py runs one)."""
    for command in ("tag", "label"):
        target = "x.jpg" if command == "tag" else "ds"
        args = build_parser().parse_args([command, target, "--model", str(tag2text_dir)])
        assert _tagger_spec(args).load()._compiled_encoder is None
        args = build_parser().parse_args([command, target, "--model", "m", "--compile"])
        assert _tagger_spec(args).kwargs["compile_encoder"] is True
    args = build_parser().parse_args(["tag", "x.jpg", "--model", str(tag2text_dir), "--compile"])
    assert _tagger_spec(args).load()._compiled_encoder is not None
