"""examples/tag_and_caption.py runs end to end on the tiny fixture model."""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts import load_script


def test_example_tags_and_captions_a_folder(tag2text_dir, tag2text_images, want, tmp_path, capsys):
    for image in tag2text_images[3:5]:
        shutil.copy(image, tmp_path)
    example = load_script("examples/tag_and_caption.py")
    ds = example.main([str(tmp_path), "--model", str(tag2text_dir), "--device", "cpu"])
    try:
        out = capsys.readouterr().out
        assert len(ds) == 2 and ds.exists("t2t_caption").count() == 2
        for sample in ds:  # no EXIF in these two, so the reference's captions apply
            caption = want[Path(sample.filepath).name]["caption"]
            assert sample.t2t_caption == caption and f"caption: {caption}" in out
    finally:
        ds.delete()
