"""Tags and captions on video frames: apply_model on a video dataset, and the runners on a frames
view (whose labels FiftyOne copies to the video). FiftyOne decodes and samples with ffmpeg.
"""

from __future__ import annotations

import shutil
import subprocess

import eta.core.video as etav
import fiftyone as fo
import pytest

from tag2text_zoo import TaggerModel, label_samples

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="FiftyOne reads videos with ffmpeg/ffprobe, not installed (apt-get install ffmpeg)",
)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """Four 64x48 frames of ffmpeg's moving test pattern (2 fps, 2 s)."""
    path = tmp_path_factory.mktemp("video") / "pattern.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=2", "-t", "2"]
        + ["-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


def test_apply_model_on_a_video_writes_frame_fields(tagger, video, make_dataset, one_torch_thread):
    ds = make_dataset([video])
    ds.apply_model(TaggerModel(tagger), "t2t", batch_size=2, progress=False)
    assert {"t2t_tags", "t2t_caption"} <= set(ds.get_frame_field_schema())
    with etav.FFmpegVideoReader(str(video)) as reader:
        frames = list(reader)
    expected = tagger.predict(frames)
    sample = ds.first()
    assert len(sample.frames) == len(frames) == 4
    for number, result in enumerate(expected, start=1):
        frame = sample.frames[number]
        assert frame.t2t_caption == result.caption
        assert [c.label for c in frame.t2t_tags.classifications] == list(
            dict.fromkeys(t.strip() for t in result.tags)
        )


def test_frames_view_labels_reach_the_video(tagger, video, make_dataset, tmp_path):
    ds = make_dataset([video])
    frames = ds.to_frames(sample_frames=True, output_dir=str(tmp_path / "frames"))
    assert frames.media_type == "image" and len(frames) == 4
    report = label_samples(frames, tagger, "f", batch_size=3, progress=False)
    assert (report.done, report.failed) == (4, 0)
    captions = [ds.first().frames[n].f_caption for n in range(1, 5)]
    assert all(captions) and captions == frames.values("f_caption")
    holds = {
        f: ds.get_field(f"frames.{f}").info["tag2text_zoo"]["holds"]
        for f in ("f_tags", "f_caption")
    }
    assert holds == {"f_tags": "tags", "f_caption": "caption"}  # marked on the video's frames
    again = label_samples(ds.to_frames(sample_frames=True), tagger, "f", progress=False)
    assert (again.done, again.skipped) == (0, 4)  # resumable on frames too

    with pytest.raises(ValueError, match="holds video samples.*to_frames"):
        label_samples(ds, tagger, "f")
    assert isinstance(ds.first().frames[1].f_tags, fo.Classifications)
