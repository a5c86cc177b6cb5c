"""The App in headless Debian chromium: run "Tag and caption images" from the operator browser."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Also copies the screenshots there, e.g. T2T_SCREENSHOTS=docs/screenshots
SCREENSHOTS = os.environ.get("T2T_SCREENSHOTS")

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


def test_tag_and_caption_from_the_operator_browser(
    plugins, monkeypatch, make_dataset, tag2text_images, tmp_path
):
    if not CHROMIUM.is_file():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    sync_playwright, PlaywrightTimeout = playwright_api.sync_playwright, playwright_api.TimeoutError
    import fiftyone as fo

    monkeypatch.setenv("FIFTYONE_PLUGINS_DIR", str(plugins))  # read by the App's server process
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    ds = make_dataset([*tag2text_images[:3], broken])
    port = _free_port()
    session = fo.launch_app(ds, remote=True, address="127.0.0.1", port=port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/datasets/{ds.name}", timeout=120_000)
            # The sidebar's section titles are drawn by CSS; a field name is real text.
            page.get_by_text("filepath", exact=True).wait_for(timeout=120_000)
            dismiss = page.get_by_text("Dismiss", exact=True)  # the Enterprise advert, if shown
            if dismiss.is_visible():
                dismiss.click()
            choice = page.get_by_text("Tag and caption images", exact=True)
            for _ in range(10):  # keys are ignored until the App's handlers are registered
                page.keyboard.press("Backquote")
                page.keyboard.type("Tag and caption")
                try:
                    choice.wait_for(timeout=3_000)
                    break
                except PlaywrightTimeout:
                    page.keyboard.press("Escape")
            choice.click()
            field = page.locator("input[value='t2t']")
            field.wait_for(timeout=60_000)
            field.fill("browser")
            page.get_by_text("Skip samples that already have it").wait_for()
            execute = page.get_by_role("button", name="Execute", exact=True)
            playwright_api.expect(execute).to_be_enabled(timeout=30_000)  # form re-validated
            _shot(page, tmp_path, "operator_form.png")
            execute.click()

            deadline = time.monotonic() + 90
            while ds.exists("browser_caption").count() < len(ds) - 1:
                assert time.monotonic() < deadline, "the operator did not label every sample"
                time.sleep(1)
                ds.reload()
            # the run's report names the broken file
            page.get_by_text("3 done, 0 skipped, 1 failed", exact=False).wait_for(timeout=30_000)
            page.get_by_text(f"sample {ds[str(broken)].id}: {broken}", exact=False).wait_for()
            _shot(page, tmp_path, "operator_report.png")
            page.get_by_role("button", name="Done", exact=True).click()
            # reload_dataset makes the new fields appear in the App's sidebar
            page.get_by_text("browser_tags").wait_for(timeout=30_000)
            page.get_by_text("browser_caption").wait_for(timeout=30_000)
            assert _shot(page, tmp_path, "operator_results.png").stat().st_size > 0
            browser.close()
    finally:
        session.close()
    assert all(s.browser_tags.classifications for s in ds.exists("browser_tags"))
