"""The App in headless Debian chromium, as a user meets it: tag a folder with a broken file and
see it named, find the failed samples, read why a missing model cannot run, pick the tags field
from a list of fields that hold tags, and run TagAlign segmentation with its progress moving."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest
from local_models import install_local_models

from tag2text_zoo import defaults

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Also copies the screenshots there, e.g. T2T_SCREENSHOTS=docs/screenshots; the images and models
# then live under a fixed, tidy folder, as the screenshots show their paths.
SCREENSHOTS = os.environ.get("T2T_SCREENSHOTS")
DEMO = Path(tempfile.gettempdir()) / "tag2text-demo"

# Records every progress label the page shows ("...: 3 / 6"), however briefly.
RECORD_PROGRESS = r"""() => {
    window.__progress = [];
    new MutationObserver(() => {
        for (const line of document.body.innerText.split("\n")) {
            if (/: \d+ \/ \d+$/.test(line) && !window.__progress.includes(line)) {
                window.__progress.push(line);
            }
        }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / name)
    return path


class App:
    """The page, with the few gestures the test repeats."""

    def __init__(self, page, expect, timeout_error) -> None:
        self.page, self.expect, self.timeout_error = page, expect, timeout_error
        self.prompt = page.locator("[data-cy='operators-prompt-modal']")

    def open_operator(self, label: str, shows: str) -> None:
        """Opens an operator's form from the operator browser (the backquote key)."""
        choice = self.page.get_by_text(label, exact=True)
        for _ in range(10):  # keys are ignored until the App's handlers are registered
            self.page.keyboard.press("Backquote")
            self.page.keyboard.type(label)
            try:
                choice.wait_for(timeout=3_000)
                break
            except self.timeout_error:
                self.page.keyboard.press("Escape")
        choice.click()
        self.prompt.get_by_text(shows).first.wait_for(timeout=60_000)

    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def execute(self) -> None:
        execute = self.button("Execute")
        self.expect(execute).to_be_enabled(timeout=30_000)  # the form re-validated
        execute.click()

    def seen_progress(self) -> list[tuple[int, int]]:
        labels = self.page.evaluate("() => window.__progress")
        return [tuple(map(int, re.search(r"(\d+) / (\d+)$", x).groups())) for x in labels]


def _photos(folder: Path, images: list[Path]) -> list[Path]:
    photos = folder / "photos"
    photos.mkdir(parents=True)
    for image in images:
        shutil.copy(image, photos)
    (photos / "broken.jpg").write_bytes(b"not an image")
    return sorted(photos.iterdir())


def test_the_app_as_a_user_meets_it(
    plugins, monkeypatch, make_dataset, tag2text_images, grounded_dirs, tmp_path
):
    if not CHROMIUM.is_file():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    import fiftyone as fo

    from tag2text_zoo.assets.download import LOCAL_MODELS_ENV

    folder = DEMO if SCREENSHOTS else tmp_path / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    paths = _photos(folder, tag2text_images[:5])
    broken = folder / "photos" / "broken.jpg"
    local = install_local_models(folder / "models", grounded_dirs)
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))  # all read by the App's server process
    monkeypatch.setenv("TAG2TEXT_ZOO_HOME", str(folder / "home"))
    monkeypatch.setenv("FIFTYONE_PLUGINS_DIR", str(plugins))
    cat = fo.Classifications(classifications=[fo.Classification(label="cat")])
    ds = make_dataset(
        paths,
        ground_truth=[cat, cat, None, None, None, None],
        keywords=[["sun"], None, None, None, None, None],
        rating=[3, 4, None, None, None, None],
    )
    ds.app_config.color_scheme = fo.ColorScheme(color_by="value")
    ds.save()
    port = _free_port()
    session = fo.launch_app(ds, remote=True, address="127.0.0.1", port=port)
    try:
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/datasets/{ds.name}", timeout=120_000)
            # The sidebar's section titles are drawn by CSS; a field name is real text.
            page.get_by_text("filepath", exact=True).wait_for(timeout=120_000)
            dismiss = page.get_by_text("Dismiss", exact=True)  # the Enterprise advert, if shown
            if dismiss.is_visible():
                dismiss.click()
            app = App(page, playwright_api.expect, playwright_api.TimeoutError)

            # 1. Tag and caption: the form says what it will do; the report names the broken file.
            app.open_operator("Tag and caption images", "Will process 6 of 6 samples.")
            app.prompt.get_by_text("tag2text-swin-14m (installed)").wait_for()
            batch_size = app.prompt.locator(f"input[value='{defaults.TAGGER_BATCH_SIZE}']")
            batch_size.fill("2")
            _shot(page, tmp_path, "operator_form.png")
            app.execute()
            page.get_by_text("5 done, 0 skipped, 1 failed", exact=False).wait_for(timeout=90_000)
            page.get_by_text(f"sample {ds[str(broken)].id}: {broken}", exact=False).wait_for()
            page.get_by_text("t2t failed", exact=True).wait_for()
            _shot(page, tmp_path, "operator_report.png")
            app.button("Done").click()
            page.get_by_text("t2t_caption", exact=True).wait_for(timeout=30_000)  # reloaded
            _shot(page, tmp_path, "operator_results.png")

            # ... and the saved view of the failed samples shows just that one.
            page.get_by_text("Unsaved view", exact=True).click()
            page.get_by_text("t2t failed", exact=True).click()
            page.get_by_text("1 sample", exact=True).wait_for(timeout=30_000)
            _shot(page, tmp_path, "failed_view.png")
            session.clear_view()
            page.get_by_text("6 samples", exact=True).wait_for(timeout=30_000)

            # 2. A model that is not installed, offline: the form says why and what to do.
            app.open_operator("Tag and caption images", "Tagging model")
            app.prompt.get_by_role("combobox").filter(has_text="(installed)").first.click()
            page.get_by_role("option", name="ram-plus-swin-large-14m (3.0 GB download)").click()
            app.prompt.get_by_text(
                "ram-plus-swin-large-14m is not on this machine and there is no network"
            ).wait_for(timeout=30_000)
            app.prompt.get_by_text(f"{LOCAL_MODELS_ENV}/ram-plus-swin-large-14m").wait_for()
            app.expect(app.button("Execute")).to_be_disabled()
            _shot(page, tmp_path, "missing_model.png")
            app.button("Cancel").click()

            # 3. TagAlign: only fields of tags offered, the tagger's output preselected.
            app.open_operator("TagAlign segmentation", "Classes to find")
            picker = app.prompt.get_by_role("combobox").filter(has_text="t2t_tags")
            picker.click()
            app.expect(page.get_by_role("option")).to_have_count(3)  # the list is open
            options = page.get_by_role("option").all_inner_texts()
            assert [o.splitlines()[0] for o in options] == ["t2t_tags", "ground_truth", "keywords"]
            _shot(page, tmp_path, "tags_field_picker.png")
            page.get_by_role("option").first.click()
            # offline, the installed CLIP is preselected
            app.prompt.locator(
                "input[value='tagalign-clip-vit-b16/clip (local folder)']"
            ).wait_for()
            app.prompt.locator("input[value='4']").fill("1")  # batch size: progress per image
            page.evaluate(RECORD_PROGRESS)
            app.execute()
            page.get_by_text("5 done, 0 skipped, 1 failed", exact=False).wait_for(timeout=120_000)
            progress = app.seen_progress()
            # moving: several counts, rising (the last may give way to the report unseen)
            assert len(progress) >= 2 and progress == sorted(progress), progress
            assert {total for _, total in progress} == {6}, progress
            app.button("Done").click()
            for field in ("tagalign", "ground_truth"):  # show the masks beside the tags
                page.locator(f"[data-cy='checkbox-{field}']").click()
            app.expect(page.locator("[data-cy='checkbox-tagalign'] input")).to_be_checked()
            page.mouse.click(400, 220)  # the first sample, in the sample view
            page.get_by_text("metadata.width", exact=True).first.wait_for(timeout=30_000)
            time.sleep(2)  # the masks are drawn on a canvas
            _shot(page, tmp_path, "tagalign_results.png")
            browser.close()
    finally:
        session.close()
    ds.reload()  # the App's server wrote the mask targets
    assert len(ds.exists("t2t_tags")) == len(ds.exists("tagalign")) == 5
    assert set(ds.mask_targets["tagalign"].values()) > {"background"}
    width, height = ds[str(paths[0])].metadata.width, ds[str(paths[0])].metadata.height
    assert (width, height) == (640, 480)  # filled in by the runs
