"""End to end in a real browser: Debian's chromium driven by Playwright against `streamlit run`.

Screenshots go to a temporary folder, or to $HEMO_SCREENSHOTS (the README's pictures are made so:
HEMO_SCREENSHOTS=assets python -m pytest tests/test_e2e.py).
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, dicom_bytes, head_phantom

CHROMIUM = Path("/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
    pytest.mark.skipif(not (ROOT / "models" / "hemo-hybrid.keras").exists(), reason="no shipped model"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture()
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("HEMO_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_drop_slices_then_open_dashboard(server, shots):
    png = cv2.imencode(".png", np.clip(head_phantom(256, blob=(110, 150)) / 4 + 60, 0, 255).astype(np.uint8))[1].tobytes()
    dicom = dicom_bytes((head_phantom(256) + 1024).astype(np.int16))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server, timeout=120_000)
        page.locator("input[type=file]").first.set_input_files([
            {"name": "scan.dcm", "mimeType": "application/dicom", "buffer": dicom},
            {"name": "slice.png", "mimeType": "image/png", "buffer": png},
        ])
        verdicts = page.get_by_text("(threshold")
        verdicts.nth(3).wait_for(timeout=180_000)
        assert verdicts.count() == 4  # two studies (a DICOM study, a loose PNG): a study and a slice verdict each
        assert page.get_by_text("scan.dcm").count() == 0  # file names stay hidden unless asked for
        page.get_by_text("Grad-CAM of the EfficientNet stage").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)  # both attention heatmaps
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "analyse.png"), full_page=True)
        page.get_by_role("link", name="Training dashboard").click()
        page.get_by_text("Train - validation accuracy").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").nth(4).wait_for(timeout=60_000)  # curves, gap, scatter, smoothed, lr
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
        browser.close()
    assert (shots / "analyse.png").stat().st_size > 10_000 and (shots / "dashboard.png").stat().st_size > 10_000
