"""End to end: `restorekit ui` on loopback, driven by Playwright in Debian's Chromium (no browser download)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"restorekit ui exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"restorekit ui did not answer on {url}")


@pytest.mark.slow
@pytest.mark.browser
def test_ui_in_chromium_restores_an_uploaded_photo(tmp_path, small_package, photo):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    from restorekit.io import write_image

    src = tmp_path / "astronaut.png"
    write_image(src, photo("astronaut", 192))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "restorekit", "ui", "--model", str(small_package), "--host", "127.0.0.1", "--port", str(port),
         "--device", "cpu"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(url, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1500})
                page.goto(url, wait_until="domcontentloaded")
                expect(page.get_by_text("Images to restore")).to_be_visible(timeout=60_000)
                page.locator('input[type="file"]').first.set_input_files(str(src))
                restore = page.get_by_role("button", name="Restore", exact=True)
                expect(restore).to_be_enabled(timeout=60_000)
                restore.click()
                expect(page.get_by_text("Restored", exact=True).first).to_be_visible(timeout=120_000)
                expect(page.get_by_text("Download PNG")).to_be_visible(timeout=30_000)
                # the restored image really loaded in the page, at the photo's size, beside the original
                sizes = page.eval_on_selector_all(
                    "img", "els => els.filter(e => e.complete).map(e => [e.naturalWidth, e.naturalHeight])"
                )
                assert sizes.count([192, 192]) >= 2, sizes
                page.get_by_text("Restored", exact=True).first.scroll_into_view_if_needed()
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / "serve_ui_chromium.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
