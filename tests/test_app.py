"""AppTest runs of every page against the shipped model (uploads stay in memory)."""

import json

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, dicom_bytes, head_phantom

APP = str(ROOT / "streamlit_app.py")
pytestmark = pytest.mark.skipif(not (ROOT / "models" / "hemo-hybrid.keras").exists(), reason="no shipped model")


def png_slice() -> bytes:
    image = np.clip(head_phantom(256, blob=(120, 140)) / 4 + 60, 0, 255).astype(np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


@pytest.fixture()
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    return at


def test_analyse_png_dicom_and_a_bad_file(app):
    uploader = app.file_uploader[0]
    uploader.upload("slice.png", png_slice(), "image/png")
    uploader.upload("scan.dcm", dicom_bytes((head_phantom(256) + 1024).astype(np.int16)), "application/dicom")
    uploader.upload("broken.png", b"this is not an image", "image/png")
    app.run()
    assert not app.exception
    shown = texts(app)
    assert "broken.png" in shown and "not a readable PNG, JPEG or DICOM image" in shown
    verdicts = [m.value for m in app.markdown if "probability" in m.value and "threshold" in m.value]
    assert len(verdicts) == 2
    for verdict in verdicts:
        assert ("indicative of haemorrhage" in verdict) or ("likely normal" in verdict)
        probability = float(verdict.split("probability ")[1].split(" ")[0])
        assert 0.0 <= probability <= 1.0
    assert len(app.get("plotly_chart")) >= 2  # attention heatmaps
    assert len(app.image) >= 4  # thumbnails, slices and Grad-CAM overlays
    frame = app.dataframe[0].value
    assert list(frame["file"]) == ["slice.png", "scan.dcm", "broken.png"]
    assert "Doe" not in shown and "SECRET" not in shown
    assert "not a medical device" in texts(app) + "\n".join(w.value for w in app.warning)


def test_series_gets_study_verdict_and_chart(app):
    for z in (20.0, 0.0, 10.0):
        app.file_uploader[0].upload(f"s{int(z)}.dcm", dicom_bytes((head_phantom(256) + 1024).astype(np.int16),
                                                                   position=(0, 0, z)), "application/dicom")
    app.run()
    assert not app.exception
    assert any("Study-level verdict" in m.value for m in app.markdown)
    assert len(app.get("plotly_chart")) == 4  # the series chart and three attention heatmaps


def test_same_file_twice_is_shown_twice(app):
    data = png_slice()
    app.file_uploader[0].upload("same.png", data, "image/png")
    app.file_uploader[0].upload("same.png", data, "image/png")
    app.run()
    assert not app.exception
    assert list(app.dataframe[0].value["file"]) == ["same.png", "same.png"]


def test_window_change_reruns_dicom(app):
    app.file_uploader[0].upload("scan.dcm", dicom_bytes((head_phantom(256) + 1024).astype(np.int16)), "application/dicom")
    app.run()
    before = [m.value for m in app.markdown if "probability" in m.value]
    app.sidebar.selectbox[0].select("bone")
    app.run()
    after = [m.value for m in app.markdown if "probability" in m.value]
    assert not app.exception and before and after and before != after


def test_dashboard_renders_all_charts_from_history(app, tmp_path):
    app.switch_page("hemo/app/dashboard.py")
    app.run()
    assert not app.exception
    charts = app.get("plotly_chart")
    assert len(charts) >= 5 + 2  # curves, gap, scatter, smoothed, lr + confusion, ROC
    assert any(m.label == "ROC AUC" for m in app.metric)
    history = {"accuracy": [0.6, 0.7, 0.8], "loss": [0.7, 0.6, 0.5], "val_accuracy": [0.55, 0.6, 0.62],
               "val_loss": [0.72, 0.68, 0.69]}
    app.file_uploader[0].upload("h.json", json.dumps(history).encode(), "application/json")
    app.run()
    assert not app.exception
    assert any("3 epochs" in c.value for c in app.caption)
    app.file_uploader[0].upload("bad.json", b"{not json", "application/json")
    app.run()
    assert not app.exception and any("Cannot read this history" in e.value for e in app.error)


def test_model_card_shows_metrics(app):
    app.switch_page("hemo/app/about.py")
    app.run()
    assert not app.exception
    table = app.table[0].value
    assert "ROC AUC (slice level)" in list(table["metric"])
    evaluation = json.loads((ROOT / "models" / "evaluation.json").read_text())
    assert f"{evaluation['auc']:.3f}" in " ".join(table["value"])


def test_no_model_explains_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("HEMO_MODEL", str(tmp_path / "missing.keras"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    assert any("python -m hemo train" in w.value for w in at.warning)


def test_two_sessions_get_their_own_results():
    first, second = (AppTest.from_file(APP, default_timeout=180) for _ in range(2))
    for at in (first, second):
        at.run()
    first.file_uploader[0].upload("first.png", png_slice(), "image/png")
    blank = np.zeros((256, 256), np.uint8)
    blank[40:220, 50:210] = 90
    second.file_uploader[0].upload("second.png", cv2.imencode(".png", blank)[1].tobytes(), "image/png")
    first.run()
    second.run()
    assert list(first.dataframe[0].value["file"]) == ["first.png"]
    assert list(second.dataframe[0].value["file"]) == ["second.png"]
    assert first.dataframe[0].value["probability"][0] != second.dataframe[0].value["probability"][0]
