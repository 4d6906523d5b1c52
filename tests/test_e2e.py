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


def launch(p):
    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"])
    return browser, browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)


def slice_input(page):
    """The slices uploader's input, found by its label: the folder uploader's input (webkitdirectory) refuses
    files, and which of the two comes first in the DOM while the page is still rendering is not fixed."""
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="CT slices")
    uploader.wait_for(timeout=120_000)
    return uploader.locator("input[type=file]")


def series_files() -> list[dict]:
    """The real GE head series when the shared data is here (README pictures of real CT), else phantoms."""
    folder = ROOT.parent / "shared" / "data" / "dicom" / "ge-head-ct"
    if folder.is_dir():
        return [{"name": f"ge-{i:02d}.dcm", "mimeType": "application/dicom", "buffer": path.read_bytes()}
                for i, path in enumerate(sorted(folder.glob("*.dcm")))]
    return [{"name": f"p{z}.dcm", "mimeType": "application/dicom",
             "buffer": dicom_bytes((head_phantom(256, (90 + 6 * z, 120)) + 1024).astype(np.int16),
                                   position=(0, 0, 4.0 * z))}
            for z in range(8)]


def attention_range(page) -> set:
    return set(page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .filter(p => p.layout && p.layout.coloraxis && p.layout.coloraxis.cmin !== undefined)
        .map(p => p.layout.coloraxis.cmin + ':' + p.layout.coloraxis.cmax)"""))


def test_series_viewer_reports_and_dashboard(server, shots, tmp_path):
    import io
    import zipfile

    import pydicom
    import pypdf

    files = series_files()
    with playwright.sync_playwright() as p:
        browser, page = launch(p)
        page.goto(server, timeout=120_000)
        slice_input(page).set_input_files(files)
        page.get_by_text("Study verdict").first.wait_for(timeout=240_000)
        page.get_by_text("Key slices:").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)  # the curve and the attention map
        assert not page.get_by_text("ge-00.dcm").first.is_visible()  # file names stay hidden unless asked for
        first_range = attention_range(page)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "analyse.png"), full_page=True)

        page.get_by_role("button", name="slice").first.click()  # a key slice, one click away
        page.wait_for_timeout(1500)
        summary = page.locator("[data-testid=stExpander] summary").first
        assert "slice 2" not in summary.inner_text()
        box = page.locator(".js-plotly-plot .scatterlayer .point").nth(1).bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # a click on the curve...
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stExpander] summary')]"
                               ".some(s => s.innerText.trim().endsWith('slice 2'))", timeout=60_000)  # ...opens it
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "viewer.png"), full_page=True)

        with page.expect_download() as pdf:
            page.get_by_text("Study report (PDF)").click()
        text = "\n".join(x.extract_text() for x in pypdf.PdfReader(pdf.value.path()).pages)
        assert "hemo study report - Study 1" in text and "not a medical device" in text and "ge-0" not in text
        with page.expect_download() as dicom:
            page.get_by_text("Results for PACS").click()
        with zipfile.ZipFile(dicom.value.path()) as zipped:
            datasets = [pydicom.dcmread(io.BytesIO(zipped.read(n))) for n in zipped.namelist()]
        assert {d.SOPClassUID.name for d in datasets} == {"Secondary Capture Image Storage", "Comprehensive SR Storage"}
        assert all(not d.get("PatientName") for d in datasets)

        page.goto(server, timeout=120_000)  # a second, different upload: the attention scale does not move
        png = cv2.imencode(".png", np.clip(head_phantom(256, blob=(110, 150)) / 4 + 60, 0, 255).astype(np.uint8))[1]
        slice_input(page).set_input_files(
            [{"name": "slice.png", "mimeType": "image/png", "buffer": png.tobytes()}])
        page.get_by_text("Grad-CAM of the EfficientNet stage").first.wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert attention_range(page) == first_range == {"-0.1:0.1"}

        page.get_by_role("link", name="Training dashboard").click()
        page.get_by_text("Smoothed accuracy").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").nth(2).wait_for(timeout=60_000)  # curves, scatter, smoothed (gap, lr if any)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
        browser.close()
    for name in ("analyse.png", "viewer.png", "dashboard.png"):
        assert (shots / name).stat().st_size > 10_000


def test_annotation_view(server, shots):
    """A CT-ICH slice dropped with its bleed mask: the outline and the overlap numbers."""
    brain = ROOT.parent / "shared" / "data" / "ct-ich" / "Patients_CT" / "049" / "brain"
    if not brain.is_dir():
        pytest.skip("the shared CT-ICH data is not here")
    mask = max(sorted(brain.glob("*_HGE_Seg.jpg")), key=lambda m: int((cv2.imread(str(m), 0) > 127).sum()))
    image = brain / mask.name.replace("_HGE_Seg", "")
    with playwright.sync_playwright() as p:
        browser, page = launch(p)
        page.goto(server, timeout=120_000)
        slice_input(page).set_input_files([
            {"name": image.name, "mimeType": "image/jpeg", "buffer": image.read_bytes()},
            {"name": mask.name, "mimeType": "image/jpeg", "buffer": mask.read_bytes()}])
        page.get_by_text("Against the annotation:").first.wait_for(timeout=180_000)  # Grad-CAM; bleed map too
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "annotation.png"), full_page=True)
        browser.close()


def test_each_folder_of_an_uploaded_folder_is_a_study(server, tmp_path):
    """The browser sends each file's path within the folder it was picked from (what AppTest cannot show): two
    patients' folders of images are two studies, and the LICENSE beside them is left out, not an error."""
    for patient in ("049", "050"):
        (tmp_path / "export" / patient).mkdir(parents=True)
        for number in range(2):
            image = np.clip(head_phantom(256, blob=(100 + 20 * number, 140)) / 4 + 60, 0, 255).astype(np.uint8)
            cv2.imwrite(str(tmp_path / "export" / patient / f"{number}.png"), image)
    (tmp_path / "export" / "LICENSE").write_text("a licence, not a slice")
    with playwright.sync_playwright() as p:
        browser, page = launch(p)
        page.goto(server, timeout=120_000)
        folder = page.get_by_test_id("stFileUploader").filter(has_text="series folder").locator("input[type=file]")
        folder.wait_for(state="attached", timeout=120_000)
        folder.set_input_files(str(tmp_path / "export"))
        page.get_by_text("Study 2: 2 slices").wait_for(timeout=180_000)
        assert page.get_by_text("Study 1: 2 slices").count() == 1 and page.get_by_text("Study 3").count() == 0
        assert page.get_by_test_id("stAlert").filter(has_text="not a readable").count() == 0
        page.get_by_role("link", name="Study 1", exact=True).click()  # the overview's "Go to:" line
        page.wait_for_url("**#study1", timeout=10_000)
        assert page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTop") > 0  # this tab
        browser.close()
