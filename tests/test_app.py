"""AppTest runs of every page against the shipped model (uploads stay in memory)."""

import json

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, dicom_bytes, head_phantom
from hemo.model import read_info
from hemo.study import min_series

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


def slice_verdicts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith((":red[", ":green[")) and "threshold" in m.value]


def test_analyse_png_dicom_and_a_bad_file(app):
    uploader = app.file_uploader[0]
    uploader.upload("slice.png", png_slice(), "image/png")
    uploader.upload("scan.dcm", dicom_bytes((head_phantom(256) + 1024).astype(np.int16)), "application/dicom")
    uploader.upload("broken.png", b"this is not an image", "image/png")
    app.run()
    assert not app.exception
    shown = texts(app)
    assert "not a readable PNG, JPEG or DICOM image" in shown
    verdicts = slice_verdicts(app)
    assert len(verdicts) == 2
    for verdict in verdicts:
        assert ("indicative of haemorrhage" in verdict) or ("likely normal" in verdict)
        probability = float(verdict.split("probability ")[1].split(" ")[0])
        assert 0.0 <= probability <= 1.0
    assert len(app.get("plotly_chart")) >= 2  # attention heatmaps
    assert len(app.image) >= 4  # slices and Grad-CAM overlays
    slices = app.dataframe[-1].value  # the slice table, last (the two studies' overview comes first)
    assert "file" not in slices.columns and len(slices) == 3
    from hemo.app.resources import model_path
    from hemo.options import version

    assert set(slices["model"]) == {version(model_path())}  # what scored them, in the download too
    assert "Doe" not in shown and "SECRET" not in shown
    for name in ("slice.png", "scan.dcm", "broken.png"):  # file names may be patient names: hidden by default
        assert name not in shown
    assert "not a medical device" in texts(app) + "\n".join(w.value for w in app.warning)
    assert sum("noise in brain tissue (HU): 0.0" in c.value for c in app.caption) == 1  # the DICOM's, measured
    app.sidebar.toggle[0].set_value(True).run()
    assert list(app.dataframe[-1].value["file"]) == ["slice.png", "scan.dcm", "broken.png"]
    assert "broken.png" in texts(app)


def test_series_gets_study_verdict_and_chart(app):
    for z in (20.0, 0.0, 10.0):
        app.file_uploader[0].upload(f"s{int(z)}.dcm", dicom_bytes((head_phantom(256) + 1024).astype(np.int16),
                                                                   position=(0, 0, z)), "application/dicom")
    app.run()
    assert not app.exception
    assert sum("Study verdict" in m.value for m in app.markdown) == 1
    measured = json.loads((ROOT / "models" / "evaluation.json").read_text())
    trust = [c.value for c in app.caption if c.value.startswith("How far to trust it")]
    assert bool(trust) == (measured["study_method"] == "highest slice")  # never the numbers of another rule
    assert len(app.get("plotly_chart")) == 3  # three slices: each opened with its attention heatmap
    labels = [button.label for button in app.get("download_button")]  # the study's PDF and DICOM, and the two CSVs
    assert labels[2:] == ["Download results (CSV)", "Download study verdicts (CSV)"] and len(labels) == 4


def test_a_long_series_shows_each_slice_read_with_its_neighbours_when_the_model_reads_so(app):
    context = read_info(ROOT / "models" / "hemo-hybrid.keras").context
    if not context:
        pytest.skip("the shipped model reads every slice alone")
    count = min_series(read_info(ROOT / "models" / "hemo-hybrid.keras"))
    for z in range(count):
        app.file_uploader[0].upload(f"s{z}.dcm", dicom_bytes((head_phantom(256) + 1024).astype(np.int16),
                                                             position=(0, 0, float(z))), "application/dicom")
    app.run()
    assert not app.exception
    shown = texts(app)
    assert "Purple: each slice read with its neighbours" in shown
    assert "With its neighbours: probability" in shown and f"(threshold {context['threshold']:.3f})" in shown
    table = app.dataframe[-1].value  # the table, and the CSV made from it, carry both readings of each slice
    assert table["probability_with_neighbours"].between(0, 1).all() and len(table) == count
    assert (table["threshold_with_neighbours"] == round(context["threshold"], 4)).all()


def study_heads(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader if s.value.startswith("Study")]


def test_images_dropped_on_their_own_are_separate_cases_until_the_user_says_they_are_one_series(app):
    from hemo.app.analyse import SERIES

    for number in range(3):  # a teacher's examples: nothing in a PNG says whose it is
        app.file_uploader[0].upload(f"{number}.png", png_slice(), "image/png")
    app.run()
    assert not app.exception
    assert study_heads(app) == ["Study 1: 1 slice", "Study 2: 1 slice", "Study 3: 1 slice"]
    assert sum("Study verdict (its only slice, at the slice operating point)" in m.value for m in app.markdown) == 3
    measured = json.loads((ROOT / "models" / "evaluation.json").read_text())
    said = f"cleared {measured['specificity']:.0%} of the normal ones (model card)."
    trust = [c.value for c in app.caption if c.value.startswith("How far to trust a slice's verdict")]
    assert len(trust) == 1 and f"on {measured['n']:,} slices" in trust[0] and trust[0].endswith(said)  # said once
    app.radio(key="loose").set_value(SERIES).run()
    assert study_heads(app) == ["Study 1: 3 slices"]
    trust = [c.value for c in app.caption if c.value.startswith("How far to trust a slice's verdict")]
    assert len(trust) == 1 and "Judged by its highest slice, an upload of several slices is flagged" in trust[0]


def test_several_studies_are_summed_up_above_them_highest_probability_first(app):
    for number, blob in enumerate([(120, 140), None, (128, 40)]):  # the shipped model: 0.0006, 0.0008, 0.0042
        image = np.clip(head_phantom(256, blob=blob) / 4 + 60, 0, 255).astype(np.uint8)
        app.file_uploader[0].upload(f"{number}.png", cv2.imencode(".png", image)[1].tobytes(), "image/png")
    app.run()
    assert not app.exception
    overview = app.dataframe[0].value  # above the studies; the slice table comes last
    assert overview["study"].tolist() == ["Study 3", "Study 2", "Study 1"], overview
    assert overview["probability"].is_monotonic_decreasing
    flagged = int((overview["verdict"] == "indicative of haemorrhage").sum())
    assert f"3 studies: {flagged} indicative of haemorrhage, {3 - flagged} likely normal" in [
        s.value for s in app.subheader]
    assert "file" not in overview and "model" not in overview  # file names identify; the model is said once
    assert "Report of all 3 studies (PDF, a page each)" in [button.label for button in app.get("download_button")]
    # twenty examples are a long page: each study one click away, in the table's order
    assert "Go to: [Study 3](#study3) · [Study 2](#study2) · [Study 1](#study1)" in [m.value for m in app.markdown]
    assert [s.proto.anchor for s in app.subheader if s.value.startswith("Study")] == ["study1", "study2", "study3"]
    assert ((overview["probability"] >= overview["threshold"]) == (overview["verdict"] == "indicative of "
                                                                  "haemorrhage")).all()


def test_one_study_needs_no_overview(app):
    app.file_uploader[0].upload("0.png", png_slice(), "image/png")
    app.run()
    assert len(app.dataframe) == 1 and not any(s.value.endswith("likely normal") for s in app.subheader)


def test_each_folder_of_an_uploaded_folder_of_images_is_a_study_of_its_own(app):
    for patient in ("049", "050"):  # the browser sends each file's path within the folder
        for number in range(2):
            app.file_uploader[1].upload(f"Patients_CT/{patient}/brain/{number}.png", png_slice(), "image/png")
    app.run()
    assert not app.exception
    assert study_heads(app) == ["Study 1: 2 slices", "Study 2: 2 slices"]
    assert not app.main.radio  # nothing was dropped on its own: no question asked


def test_a_note_every_slice_shares_is_said_once_per_study(app):
    from hemo.app.analyse import SERIES

    for number in range(3):
        app.file_uploader[0].upload(f"{number}.png", png_slice(), "image/png")
    app.run()
    app.radio(key="loose").set_value(SERIES).run()
    assert not app.exception
    notes = [i.value for i in app.info if "8-bit image" in i.value]
    assert notes == ["Every slice of this study: 8-bit image: taken as already in a brain window (the model was "
                     "trained on such exports)."]


def test_series_viewer_moves_through_slices_without_recomputing(app, monkeypatch):
    from hemo.analysis import Analyzer
    from hemo.app import resources

    files = min_series(read_info(ROOT / "models" / "hemo-hybrid.keras"))  # long enough for its study rule
    for z in range(files):
        app.file_uploader[0].upload(f"v{z}.dcm", dicom_bytes((head_phantom(256, (90 + 8 * z, 120)) + 1024)
                                                             .astype(np.int16), position=(0, 0, 5.0 * z)),
                                    "application/dicom")
    app.run()
    assert not app.exception
    measured = json.loads((ROOT / "models" / "evaluation.json").read_text())
    trust = [c.value for c in app.caption if c.value.startswith("How far to trust it")]
    assert len(trust) == 1 and trust[0].startswith(
        f"How far to trust it: on {measured['studies']} patients kept out of the training that scored them, this rule "
        f"found {measured['study_sensitivity']:.0%} of the studies with haemorrhage and cleared "
        f"{measured['study_specificity']:.0%} of the normal ones (model card).")
    others = [run["study_specificity"] for run in measured.get("replicates", [])]
    if others:  # the shipped run is one draw: how far other runs of its recipe moved is said beside it
        assert "Trained again on the same patients" in trust[0] and f"cleared {min(others):.0%}" in trust[0]
    slider = app.slider(key="viewer-study1")
    calls, positional = [], []
    original, cached = Analyzer.explain, resources.analyse
    monkeypatch.setattr(Analyzer, "explain", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    monkeypatch.setattr(resources, "analyse", lambda *a, **k: positional.append(len(a)) or cached(*a, **k))
    captions = []
    for number in (1, 4, 6):
        slider.set_value(number).run()
        assert not app.exception
        captions.append([e.label for e in app.expander])
    assert captions == [["Study 1 · slice 1"], ["Study 1 · slice 4"], ["Study 1 · slice 6"]]
    app.button(key=next(b.key for b in app.button if b.key and b.key.startswith("viewer-study1-key"))).click().run()
    assert not app.exception
    app.sidebar.slider[0].set_value(0.8).run()  # opacity: a display control
    assert calls == []  # nothing was analysed again
    # each file's results looked up by keyword: Streamlit reads the signature for each positional argument
    assert len(positional) == 5 * files and set(positional) == {0}  # 5 reruns above


def test_the_viewer_draws_grad_cam_the_bleed_map_or_nothing_over_the_slice(app):
    for z in range(4):  # more than three slices: the viewer
        app.file_uploader[0].upload(f"v{z}.dcm", dicom_bytes((head_phantom(256, (90 + 8 * z, 120)) + 1024)
                                                             .astype(np.int16), position=(0, 0, 5.0 * z)),
                                    "application/dicom")
    app.run()
    choice = app.radio(key="viewer-study1-overlay")
    assert choice.options == ["Grad-CAM", "bleed map", "none"] and choice.value == "Grad-CAM"

    def pictures() -> dict[str, str]:  # each image's caption and what it shows (the media URL hashes the pixels)
        return {image.proto.imgs[0].caption: image.proto.imgs[0].url for image in app.image}

    viewed = next(caption for caption in pictures() if caption.startswith("Study 1 · slice"))
    assert pictures()[viewed] == pictures()["Grad-CAM of the EfficientNet stage"]  # the slice's own details below
    choice.set_value("bleed map").run()
    assert not app.exception
    assert pictures()[viewed] == pictures()["Bleed map"]
    choice.set_value("none").run()
    assert pictures()[viewed] == pictures()["slice (window shown; the model sees its own)"]


def test_two_studies_get_two_verdicts(app):
    for study in ("1.2.3.1", "1.2.3.2"):
        for z in (0.0, 5.0):
            app.file_uploader[0].upload(f"{study}-{z}.dcm", dicom_bytes(
                (head_phantom(256) + 1024).astype(np.int16), position=(0, 0, z), study=study), "application/dicom")
    app.run()
    assert not app.exception
    assert sum("Study verdict" in m.value for m in app.markdown) == 2
    assert {s.value for s in app.subheader} >= {"Study 1: 2 slices", "Study 2: 2 slices"}


def test_a_slice_uploaded_twice_is_one_slice_of_its_series(app):
    series = [dicom_bytes((head_phantom(256) + 1024).astype(np.int16), position=(0, 0, z)) for z in (0.0, 5.0)]
    for name, data in (("a.dcm", series[0]), ("b.dcm", series[1]), ("copy of a.dcm", series[0])):
        app.file_uploader[0].upload(name, data, "application/dicom")
    app.run()
    assert not app.exception
    assert [s.value for s in app.subheader if s.value.startswith("Study")] == ["Study 1: 2 slices"]
    assert any("given twice" in e.value for e in app.error)


def test_two_series_of_one_study_are_one_study_numbered_by_series(app):
    for series in ("1.2.3.1.5", "1.2.3.1.6"):  # e.g. a thick and a thin reconstruction of one head
        for z in (0.0, 5.0):
            app.file_uploader[0].upload(f"{series}-{z}.dcm", dicom_bytes(
                (head_phantom(256) + 1024).astype(np.int16), position=(0, 0, z), study="1.2.3.1", series=series),
                "application/dicom")
    app.run()
    assert not app.exception
    assert {s.value for s in app.subheader} >= {"Study 1 · series 1: 2 slices", "Study 1 · series 2: 2 slices"}
    table = app.dataframe[-1].value
    assert table["study"].tolist() == [1] * 4 and sorted(table["series"].tolist()) == [1, 1, 2, 2]


def test_a_zipped_export_is_one_study_with_what_is_not_an_axial_slice_said_once_per_reason(app):
    import corpus
    from test_archive import slice_at, zipped

    beside = {"Doe_Jane/scout": corpus.edit(slice_at(0.0), ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])}
    beside |= {f"Doe_Jane/SAG{i}": corpus.edit(slice_at(i), ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
               for i in range(2)}
    study = zipped({f"Doe_Jane/IM{i}": slice_at(5.0 * i) for i in range(3)} | beside)
    app.file_uploader[0].upload("Doe_Jane.zip", study, "application/zip")
    app.file_uploader[0].upload("Roe_Richard.zip", study[:100], "application/zip")
    app.file_uploader[1].upload("DICOMDIR", b"a media index, not a slice", "application/dicom")  # in a folder
    app.run()
    assert not app.exception
    assert [s.value for s in app.subheader if s.value.startswith("Study")] == ["Study 1: 3 slices"]
    said = {e.value.split(" — ")[1].split(",")[0]: e.value.split(" — ")[0] for e in app.error}
    assert said == {"a sagittal reformat": "**2 files**", "a localizer (scout) image": "**unreadable file**",
                    "this zip archive is damaged and cannot be read.": "**unreadable file**"}
    assert "Doe" not in texts(app) and "Roe" not in texts(app)
    app.sidebar.toggle[0].set_value(True).run()
    assert "**Doe_Jane.zip/Doe_Jane/SAG0, Doe_Jane.zip/Doe_Jane/SAG1** — a sagittal" in texts(app)


def test_a_zip_is_unpacked_once_a_session_and_the_zips_of_a_session_share_one_budget(app, monkeypatch):
    import hemo.archive
    from hemo.app import resources
    from test_archive import slice_at, zipped

    members = {f"A/IM{i}": slice_at(5.0 * i) for i in range(3)}
    monkeypatch.setattr(hemo.archive, "MAX_BYTES", int(1.5 * sum(map(len, members.values()))))  # room for one
    calls, original = [], hemo.archive.expand
    monkeypatch.setattr(hemo.archive, "expand", lambda name, *a, **k: calls.append(name) or original(name, *a, **k))
    hashed, digest = [], resources.digest
    monkeypatch.setattr(resources, "digest", lambda data: hashed.append(len(data)) or digest(data))
    for name in ("one.zip", "two.zip"):
        app.file_uploader[0].upload(name, zipped(members), "application/zip")
    app.file_uploader[0].upload("alone.dcm", slice_at(20.0), "application/dicom")
    app.run()
    assert not app.exception
    assert [s.value for s in app.subheader if s.value.startswith("Study")] == ["Study 1: 4 slices"]
    assert len(app.error) == 1 and "what is left of the" in app.error[0].value
    assert len(hashed) == 4  # the first zip's 3 slices and the lone file; the refused zip holds none
    app.sidebar.slider[0].set_value(0.8).run()  # a display control: the page reruns, nothing is unpacked again
    assert not app.exception and calls == ["one.zip", "two.zip"]
    assert len(hashed) == 4  # nor hashed again: the analysis cache is keyed by each file's digest


def test_hostile_corpus_in_the_app(app):
    import corpus

    cases = corpus.hostile()
    for name, data, _ in cases:
        app.file_uploader[0].upload(name, data, "application/octet-stream")
    for name, data in corpus.good():
        app.file_uploader[0].upload(name, data, "application/octet-stream")
    app.run()
    assert not app.exception
    refused = sum(1 for *_, e in cases if e == "error")
    boxes = [e.value.split("**")[1].split() for e in app.error]  # one box per reason: "N files", else one file
    assert sum(int(who[0]) if who[1:2] == ["files"] else 1 for who in boxes) >= refused
    assert len(boxes) < refused  # files that fail alike share their box
    frame = app.dataframe[-1].value
    assert frame["probability"].notna().sum() >= 2 + sum(1 for *_, e in cases if e != "error")


def test_same_file_twice_is_shown_twice(app):
    data = png_slice()
    app.file_uploader[0].upload("same.png", data, "image/png")
    app.file_uploader[0].upload("same.png", data, "image/png")
    app.run()
    assert not app.exception
    assert len(app.dataframe[-1].value) == 2 and len(slice_verdicts(app)) == 2


def test_window_change_reruns_dicom(app):
    app.file_uploader[0].upload("scan.dcm", dicom_bytes((head_phantom(256) + 1024).astype(np.int16)),
                                "application/dicom")
    app.run()
    before = slice_verdicts(app)
    app.sidebar.selectbox[0].select("bone")
    app.run()
    after = slice_verdicts(app)
    assert not app.exception and before and after
    assert before == after  # the model reads its own window: the verdict does not move with the display
    assert any("window shown: bone (L 600 / W 2800)" in c.value for c in app.caption)  # ...the picture does


def test_dashboard_renders_all_charts_from_history(app, tmp_path):
    app.switch_page("hemo/app/dashboard.py")
    app.run()
    assert not app.exception
    charts = app.get("plotly_chart")
    shipped = json.loads((ROOT / "models" / "history.json").read_text())["history"]
    optional = ("val_accuracy" in shipped) + ("learning_rate" in shipped) + ("bleed_loss" in shipped)
    assert len(charts) == 3 + optional + 2  # curves, scatter, smoothed (+ gap, rate, decoder) + confusion, ROC
    layouts = [json.loads(chart.proto.spec)["layout"] for chart in charts]  # fixed scales: accuracy 0..1, loss from 0
    titled = {layout.get("title", {}).get("text", "curves"): layout for layout in layouts}
    assert titled["curves"]["yaxis"]["range"] == [0, 1.02] and titled["curves"]["yaxis2"]["rangemode"] == "tozero"
    assert titled["Loss vs accuracy"]["yaxis"]["range"] == titled["Smoothed accuracy"]["yaxis"]["range"] == [0, 1.02]
    assert ("Bleed decoder loss (the masks)" in titled) == ("bleed_loss" in shipped)  # the decoder's own curve
    assert any(m.label == "ROC AUC" for m in app.metric)
    history = {"accuracy": [0.6, 0.7, 0.8], "loss": [0.7, 0.6, 0.5], "val_accuracy": [0.55, 0.6, 0.62],
               "val_loss": [0.72, 0.68, 0.69], "learning_rate": [1e-4, 1e-4, 5e-5]}
    app.file_uploader[0].upload("h.json", json.dumps(history).encode(), "application/json")
    app.run()
    assert not app.exception
    assert any("3 epochs" in c.value for c in app.caption)
    assert len(app.get("plotly_chart")) == 5 + 2  # every history chart, the gap and learning rate too
    final = {"history": {"accuracy": [0.6, 0.7], "loss": [0.7, 0.6]}, "run": {"split": "none"}}  # all patients
    app.file_uploader[0].upload("final.json", json.dumps(final).encode(), "application/json")
    app.run()
    assert not app.exception and not app.error
    assert any("2 epochs" in c.value for c in app.caption) and any("No validation curves" in i.value for i in app.info)
    app.file_uploader[0].upload("bad.json", b"{not json", "application/json")
    app.run()
    assert not app.exception and any("Cannot read this history" in e.value for e in app.error)


def test_model_card_shows_metrics(app):
    app.switch_page("hemo/app/about.py")
    app.run()
    assert not app.exception
    table = app.table[0].value
    assert "ROC AUC (slice level)" in list(table["metric"])
    from hemo.options import version

    assert f"Model in use: {version(ROOT / 'models' / 'hemo-hybrid.keras')}" in [c.value for c in app.caption]
    evaluation = json.loads((ROOT / "models" / "evaluation.json").read_text())
    assert f"{evaluation['auc']:.3f}" in " ".join(table["value"])
    if "study_auc" in evaluation:  # two patient-level AUCs: each says which rule it measures
        assert f"Study AUC ({evaluation['study_method']})" in list(table["metric"])
        assert "Patient AUC of each patient's highest slice" in list(table["metric"])
    if "context_auc" in evaluation:  # slices read with their neighbours have their own numbers
        row = list(table["metric"]).index("ROC AUC of the slices of a series read with their neighbours")
        assert table["value"].iloc[row] == f"{evaluation['context_auc']:.3f}"
    others = [run["study_specificity"] for run in evaluation.get("replicates", [])]
    if others:
        runs = f"{len(others)} more CV run{'s' if len(others) > 1 else ''}"
        row = list(table["metric"]).index(f"Study specificity, {runs} of the same recipe")
        assert table["value"].iloc[row] == f"{min(others):.3f}–{max(others):.3f}"


def test_one_class_evaluation_does_not_crash_about_or_dashboard(monkeypatch, tmp_path, app):
    one_class = {"n": 5, "positives": 0, "accuracy": 1.0, "auc": None, "auc_ci": None, "sensitivity": None,
                 "specificity": 1.0, "threshold": 0.5, "f1": 0.0, "confusion_matrix": [[5, 0], [0, 0]],
                 "per_class": {}, "roc": {"fpr": [], "tpr": []}, "patient_auc": None}
    app.switch_page("hemo/app/dashboard.py")
    app.run()
    app.file_uploader[1].upload("eval.json", json.dumps(one_class).encode(), "application/json")
    app.run()
    assert not app.exception and any(m.value == "n/a" for m in app.metric)
    (tmp_path / "evaluation.json").write_text(json.dumps(one_class))
    monkeypatch.setenv("HEMO_MODEL", str(tmp_path / "missing.keras"))
    about = AppTest.from_file(APP, default_timeout=180)
    about.run()
    about.switch_page("hemo/app/about.py")
    about.run()
    assert not about.exception and "n/a" in " ".join(about.table[0].value["value"])


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
    assert len(first.dataframe[-1].value) == 1 and len(second.dataframe[-1].value) == 1
    assert first.dataframe[-1].value["probability"][0] != second.dataframe[-1].value["probability"][0]


def test_a_series_is_analysed_in_batches_across_its_files_once_for_every_session(monkeypatch):
    from hemo.analysis import Analyzer
    from hemo.app import resources

    series = [(f"b{z}.dcm", dicom_bytes((head_phantom(256, (90 + 8 * z, 120)) + 1024).astype(np.int16),
                                        position=(0, 0, 5.0 * z))) for z in range(6)]
    batches, original = [], Analyzer._explain_batch
    monkeypatch.setattr(Analyzer, "_explain_batch", lambda self, chunk, *a: batches.append(len(chunk))
                        or original(self, chunk, *a))
    tables = []
    for _ in range(2):  # a teacher, then a student uploading the same series in another session
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        for name, data in series:
            at.file_uploader[0].upload(name, data, "application/dicom")
        at.run()
        assert not at.exception
        tables.append(at.dataframe[-1].value)
    assert batches == [6]  # one batch across the six files, and nothing again for the second session
    assert tables[0].equals(tables[1])
    later = resources._now() + resources.KEEP_SECONDS  # past the cache's hour: its entries are gone, analysed anew
    monkeypatch.setattr(resources, "_now", lambda: later)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    for name, data in series:
        at.file_uploader[0].upload(name, data, "application/dicom")
    at.run()
    assert batches == [6, 6] and not at.exception


def test_annotation_beside_a_slice_gets_outlined_with_overlap_numbers(app):
    hu = head_phantom(256, blob=(120, 140))
    image = np.clip((hu - 40) / 120 * 255 + 127.5, 0, 255).astype(np.uint8)
    mask = ((hu == 75.0) * 255).astype(np.uint8)
    app.file_uploader[0].upload("14.jpg", cv2.imencode(".jpg", image)[1].tobytes(), "image/jpeg")
    app.file_uploader[0].upload("14_HGE_Seg.jpg", cv2.imencode(".jpg", mask)[1].tobytes(), "image/jpeg")
    app.run()
    assert not app.exception
    assert len(app.dataframe[-1].value) == 1  # the annotation is not analysed as a slice
    against = [m.value for m in app.markdown if m.value.startswith("**Against the annotation:**")]
    assert "of the Grad-CAM energy lies inside" in against[0]
    share = float(against[0].split("covers ")[1].split("%")[0])
    assert 0.5 < share < 5  # the blob is a small part of the cropped slice
    decoder = read_info(ROOT / "models" / "hemo-hybrid.keras").bleed is not None
    assert ("bleed decoder" in texts(app)) == decoder  # a bleed map is drawn exactly when the model has a decoder
    assert len(against) == 1 + decoder  # ...and set against the annotation too


def test_an_annotation_without_its_slice_is_named_for_what_it_is(app):
    mask = ((head_phantom(256, blob=(120, 140)) == 75.0) * 255).astype(np.uint8)
    app.file_uploader[0].upload("14_HGE_Seg.jpg", cv2.imencode(".jpg", mask)[1].tobytes(), "image/jpeg")
    app.run()
    assert not app.exception
    assert [w.value for w in app.warning if "1 bleed annotation(s)" in w.value and "without their slice" in w.value]


def test_a_model_with_a_bleed_decoder_shows_its_map_beside_grad_cam(monkeypatch, tmp_path):
    import keras

    from hemo.bleed import with_decoder
    from hemo.model import build
    from hemo.train import Fitted, TrainConfig, save_trained

    hybrid = with_decoder(build(pretrained="none"))
    model = keras.Model(hybrid.input, hybrid.output["probabilities"])
    save_trained(Fitted(model, {}, hybrid), tmp_path / "hemo-hybrid.keras", TrainConfig(pretrained="none"), 0.5)
    info = json.loads((tmp_path / "hemo-hybrid.json").read_text())  # as 'calibrate --decoder-weight' stores it
    info.update(slice_score="head+bleed-top4", decoder_weight=0.25)
    (tmp_path / "hemo-hybrid.json").write_text(json.dumps(info))
    monkeypatch.setenv("HEMO_MODEL", str(tmp_path / "hemo-hybrid.keras"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    hu = head_phantom(256, blob=(120, 140))
    at.file_uploader[0].upload("14.jpg", cv2.imencode(".jpg", np.clip((hu - 40) / 120 * 255 + 127.5, 0, 255)
                                                      .astype(np.uint8))[1].tobytes(), "image/jpeg")
    at.file_uploader[0].upload("14_HGE_Seg.jpg", cv2.imencode(".jpg", ((hu == 75.0) * 255).astype(np.uint8))[1]
                               .tobytes(), "image/jpeg")
    at.run()
    assert not at.exception
    assert "bleed decoder" in texts(at)
    assert "a weighted mean (the decoder's weight 0.25) of the logits" in texts(at)  # the weight it scores with
    against = [m.value for m in at.markdown if m.value.startswith("**Against the annotation:**")]
    assert len(against) == 2 and "of the bleed map lies inside" in against[1]


def test_the_packaged_entry_point_that_hemo_app_runs_serves_the_same_pages():
    at = AppTest.from_file(str(ROOT / "hemo" / "app" / "main.py"), default_timeout=180)
    at.run()
    assert not at.exception and at.title[0].value == "Analyse head CT"
    at.file_uploader[0].upload("slice.png", png_slice(), "image/png")
    at.run()
    assert len(slice_verdicts(at)) == 1
    at.switch_page(str(ROOT / "hemo" / "app" / "about.py"))
    at.run()
    assert not at.exception and at.title[0].value == "About hemo and its model"
