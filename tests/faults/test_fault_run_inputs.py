"""Runs given bad inputs (issue #14, run level): a decompression bomb among good images, output
fields of another type, bad numbers, devices and dtypes. Good samples are labelled, bad ones named
with their reason on stderr, counts are true, and what cannot work is refused before any work or
any dataset is made."""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
import pytest
from data_paths import FIXTURES
from test_fault_images import write_bomb

from tag2text_zoo import (
    ModelSpec,
    label_samples,
    load_dense_segmenter,
    segment_dense,
)
from tag2text_zoo.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = ["--device", "cpu", "--num-workers", "0"]


def _label(target, model_dir, *extra: str) -> list[str]:
    return ["label", str(target), "--model", str(model_dir), "--no-exif", *CPU, *extra]


def _ground(target, grounded_dirs, *extra: str) -> list[str]:
    detector, segmenter = map(str, grounded_dirs)
    return ["ground", str(target), "--detector", detector, "--segmenter", segmenter, *extra]


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def test_label_names_a_bomb_and_labels_its_batch_mates(
    image_folder, tag2text_dir, tag2text_images, want, capsys
):
    folder = image_folder([tag2text_images[4], tag2text_images[3]])
    write_bomb(folder / "bomb.png")
    assert main(_label(folder, tag2text_dir, "--batch-size", "3")) == 1
    out, err = capsys.readouterr()
    assert f"{folder.name}: t2t_tags: 2 done, 0 skipped, 1 failed" in out
    (error,) = _errors(err)
    assert f"{folder / 'bomb.png'}: declares more than the limit" in error
    assert "decompression bomb" in error and "Traceback" not in err
    dataset = fo.load_dataset(folder.name)
    assert dataset.exists("t2t_tags").count() == 2
    for sample in dataset.exists("t2t_tags"):
        assert sample.t2t_caption == want[Path(sample.filepath).name]["caption"]


def test_ground_names_a_bomb_labels_the_rest_and_exits_1(
    image_folder, grounded_dirs, tag2text_images, capsys
):
    folder = image_folder([tag2text_images[4]])
    write_bomb(folder / "bomb.png")
    thresholds = ["--box-threshold", "0", "--text-threshold", "0"]
    args = _ground(folder, grounded_dirs, "--classes", "dog", *thresholds, "--device", "cpu")
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert f"{folder.name}: grounded: 1 done, 0 skipped, 1 failed" in out
    (error,) = _errors(err)
    assert "bomb.png: declares more than the limit" in error
    good = fo.load_dataset(folder.name).exists("grounded")
    assert len(good) == 1 and len(good.first().grounded.detections) > 0


@pytest.mark.parametrize(
    ("field", "value", "held", "writes"),
    [
        ("t2t_tags", "dog, cat", "StringField", "Classifications"),
        ("t2t_caption", fo.Classification(label="dog"), "Classification", "StringField"),
    ],
)
def test_output_field_of_another_type_is_refused_before_work(
    field, value, held, writes, cpu_tagger, tag2text_images, make_dataset, monkeypatch, capsys
):
    dataset = make_dataset(tag2text_images[3:5], **{field: [value, None]})
    monkeypatch.setattr(cpu_tagger, "predict_tensors", _must_not_run)
    message = f"field {field!r} holds {held}, but this run writes {writes} there"
    with pytest.raises(ValueError, match=message):
        label_samples(dataset, cpu_tagger, "t2t")

    dataset.persistent = True  # the CLI opens it by name
    args = ["label", dataset.name, "--model", str(FIXTURES / "tag2text-tiny"), *CPU]
    assert main(args) == 2
    assert _errors(capsys.readouterr().err) == [
        f"error: {message}; choose another label field, or delete {field!r} first"
    ]
    assert dataset.first()[field] == value  # untouched; and no sample counts as done
    assert not dataset.has_field("t2t_tags" if field != "t2t_tags" else "t2t_caption")


def test_dense_and_grounded_output_fields_are_checked_too(
    cpu_tagger, grounded_dirs, tag2text_images, make_dataset, capsys
):
    dataset = make_dataset(tag2text_images[4:5], seg=["text"], other_heatmap_sky=["text"])
    dataset.persistent = True
    tiny = FIXTURES / "tagalign-tiny"
    segmenter = load_dense_segmenter(tiny / "clip", tiny / "tagalign.pth", device="cpu")
    with pytest.raises(ValueError, match="'seg' holds StringField, but this run writes Segm"):
        segment_dense(dataset, segmenter, "seg", classes=["sky"])
    with pytest.raises(ValueError, match="'other_heatmap_sky' holds StringField, but .* Heatmap"):
        segment_dense(dataset, segmenter, "other", classes=["sky"], heatmaps=True)
    args = _ground(dataset.name, grounded_dirs, "--classes", "sky", "--semantic-field", "seg")
    assert main([*args, "--device", "cpu"]) == 2
    assert "'seg' holds StringField, but this run writes Segmentation" in capsys.readouterr().err
    assert dataset.count_values("seg") == {"text": 1}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--batch-size", "-1"], "argument --batch-size: must be at least 1, got -1"),
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["--batch-size", "two"], "argument --batch-size: 'two' is not an integer"),
        (["--num-workers", "-2"], "argument --num-workers: must be at least 0, got -2"),
        (["--threshold", "1.5"], "argument --threshold: must be within [0, 1], got 1.5"),
        (["--dtype", "int4"], "argument --dtype: invalid choice: 'int4'"),
    ],
)
def test_bad_label_arguments_are_refused_before_a_dataset_is_made(
    extra, says, image_folder, tag2text_dir, tag2text_images, capsys
):
    folder = image_folder(tag2text_images[4:5])
    with pytest.raises(SystemExit) as stop:
        main(_label(folder, tag2text_dir, *extra))
    assert stop.value.code == 2 and says in capsys.readouterr().err
    assert not fo.dataset_exists(folder.name)


def test_bad_ground_arguments_and_devices_are_refused_before_a_dataset_is_made(
    image_folder, grounded_dirs, tag2text_dir, tag2text_images, capsys
):
    folder = image_folder(tag2text_images[4:5])
    for extra, says in [
        (["--box-threshold", "2"], "argument --box-threshold: must be within [0, 1], got 2"),
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(_ground(folder, grounded_dirs, "--classes", "dog", *extra))
        assert stop.value.code == 2 and says in capsys.readouterr().err
    tpu = "error: device 'tpu' is not supported; expected 'cpu', 'cuda' or 'cuda:N'"
    assert main(_ground(folder, grounded_dirs, "--classes", "dog", "--device", "tpu")) == 2
    assert capsys.readouterr().err.splitlines() == [tpu]
    label = ["label", str(folder), "--model", str(tag2text_dir), "--device", "tpu"]
    assert main(label) == 2
    assert capsys.readouterr().err.splitlines() == [tpu]
    assert not fo.dataset_exists(folder.name)


def test_runner_options_are_checked_before_the_model_is_loaded(tag2text_images, make_dataset):
    dataset = make_dataset(tag2text_images[4:5])
    nowhere = ModelSpec("tagger", {"name_or_dir": "/no/such/model"})
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 1, got 0"):
        label_samples(dataset, nowhere, batch_size=0)
    with pytest.raises(ValueError, match="num_workers must be an integer of at least 0"):
        label_samples(dataset, nowhere, num_workers=-1)


def test_tags_with_a_ram_model_name_no_option_the_cli_lacks(tag2text_images, capsys):
    args = ["tag", str(tag2text_images[4]), "--model", str(FIXTURES / "ram-tiny")]
    assert main([*args, "--tags", "cloud", "--device", "cpu"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "do not caption" in line and "Tag2Text" in line
    assert "caption=" not in line and "--caption" not in line


def _must_not_run(*args, **kwargs):
    raise AssertionError("the model ran although the run should have been refused")
