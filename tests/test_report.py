"""Reports that leave hemo: the PDF study report and DICOM results for PACS, read back, without identifiers."""

from __future__ import annotations

import csv
import io

import highdicom as hd
import numpy as np
import pydicom
import pytest

import corpus
from conftest import dicom_bytes, head_phantom
from hemo.cli import main
from hemo.dicom_export import export
from hemo.report import key_slices, studies_pdf
from hemo.study import HIGHEST, studies

pypdf = pytest.importorskip("pypdf")
SECRETS = ("Doe", "Jane", "PID-SECRET-42", "ACC-SECRET-7", "19700101")


@pytest.fixture(scope="module")
def study(analyzer):
    files = [(f"Doe_Jane_{z}.dcm", dicom_bytes((head_phantom(256, (100, 120) if z == 2 else None) + 1024)
                                               .astype(np.int16), position=(0, 0, z))) for z in range(5)]
    [found] = studies(analyzer.analyse_files(files), analyzer)
    return found


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_pdf_report_has_the_verdict_the_notice_and_no_identifiers(study):
    text = pdf_text(studies_pdf([study, study], "m.keras (sha256 0123)", {"auc": 0.9, "sensitivity": 0.9,
                                                                          "specificity": 0.8}))
    assert text.count("hemo study report") == 2
    assert f"Study verdict: {study.verdict}" in text and f"{study.probability:.3f}" in text
    assert "not a medical device" in text and "m.keras (sha256 0123)" in text and "UTC" in text
    assert "slice AUC 0.900" in text
    for secret in (*SECRETS, "Doe_Jane"):
        assert secret not in text
    assert "bleed map" not in text  # the model has no decoder
    assert "(5 slices)." in text
    from dataclasses import replace

    alone = pdf_text(studies_pdf([replace(study, slices=study.slices[:1], method=HIGHEST)], "m.keras"))
    assert "its only slice, at the slice operating point." in alone and "slices)" not in alone


def test_reports_show_the_bleed_map_of_the_key_slices_when_the_model_has_a_decoder(study):
    from dataclasses import replace

    mapped = replace(study, slices=[replace(r, bleed=np.full((32, 32), 0.7, np.float16)) for r in study.slices])
    text = pdf_text(studies_pdf([mapped], "m.keras"))
    assert "The same slices: bleed map" in text and text.count("map peak 0.700") == 3
    files = export(mapped, "m.keras")  # and for PACS, a series of their own beside the Grad-CAM key slices
    maps = [pydicom.dcmread(io.BytesIO(data)) for name, data in files.items() if "-bleed" in name]
    assert len(maps) == 3 and {ds.SeriesDescription for ds in maps} == {"hemo key slices (bleed map)"}
    report = pydicom.dcmread(io.BytesIO(files[next(n for n in files if n.endswith("report.dcm"))]))
    assert len(report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence) == 2


def test_the_pdf_says_once_what_every_slice_of_the_study_carries_and_still_fits_its_page(study):
    from dataclasses import replace

    from hemo.acquisition import tilt_note

    tilted = tilt_note(18.5)
    slices = [replace(r, warnings=r.warnings + (tilted,), bleed=np.full((32, 32), 0.7, np.float16))
              for r in study.slices]
    slices[0] = replace(slices[0], warnings=slices[0].warnings + ("only this slice",))
    # as long as the shipped model's account of its operating points (seven steps, 791 characters)
    provenance = {f"step {i}": "how this step was chosen out of fold, said at the length the shipped model says it, "
                  "in so many words, and then some" for i in range(7)}
    data = studies_pdf([replace(study, slices=slices)], "m.keras", {"auc": 0.9, "sensitivity": 0.9,
                                                                    "specificity": 0.8, "study_auc": 0.9,
                                                                    "study_method": study.method}, provenance)
    text = pdf_text(data)
    assert f"study AUC 0.900 ({study.method})" in text and "region, not an outline" in text and "step 6: how" in text
    assert "Trained again" not in text
    again = {"auc": 0.9, "study_auc": 0.9, "study_sensitivity": 0.93, "study_specificity": 0.76,
             "study_method": study.method, "replicates": [{"study_sensitivity": 0.93, "study_specificity": 0.46}]}
    assert "recipe (1 more CV run) found 93% of the studies with haemorrhage and cleared 46% of" in " ".join(
        pdf_text(studies_pdf([study], "m.keras", again)).split())
    # the numbers of another study rule (a whole series' top-k mean) never stand beside a verdict it did not reach
    other = pdf_text(studies_pdf([study], "m.keras", {**again, "study_method": "mean of the top 12 slices"}))
    assert "study AUC" not in other and "Trained again" not in other and "slice AUC 0.900" in other
    assert text.count("Every slice: Slices tilted 18.5") == 1 and "only this slice" not in text
    assert "Slices tilted" not in pdf_text(studies_pdf([study], "m.keras"))
    alone = replace(study, slices=slices[:1])  # a study of one slice: its own notes, which no slice row shows
    assert pdf_text(studies_pdf([alone], "m.keras")).count("Note: only this slice") == 1
    lowest = []
    def note(text, cm, tm, font, size):  # where each piece of text is drawn (points from the page's foot)
        if text.strip():
            lowest.append(tm[5])

    pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=note)
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages) == 1 and min(lowest) > 5 * 72 / 25.4  # 5 mm above the foot



def test_the_pdf_says_how_many_of_a_studys_slices_the_model_was_trained_on(study):
    from dataclasses import replace

    from hemo import seen

    trained = [replace(r, warnings=r.warnings + (seen.NOTE,)) if i < 2 else r for i, r in enumerate(study.slices)]
    text = " ".join(pdf_text(studies_pdf([replace(study, slices=trained)], "m.keras")).split())
    assert f"2 of {len(study.slices)} slices: Seen in training: the model was trained on this very image" in text
    every = [replace(r, warnings=r.warnings + (seen.NOTE,)) for r in study.slices]
    text = " ".join(pdf_text(studies_pdf([replace(study, slices=every)], "m.keras")).split())
    assert "Every slice: Seen in training" in text and "slices: Seen in training" not in text

def test_the_pdf_curve_draws_the_slices_read_with_their_neighbours_when_the_study_has_them(study):
    from dataclasses import replace

    assert "with its neighbours" not in pdf_text(studies_pdf([study], "m.keras"))
    read = replace(study, refined=[0.2] * len(study.slices), refined_threshold=0.123)
    text = pdf_text(studies_pdf([read], "m.keras"))
    assert "purple: with its neighbours (dotted: their threshold 0.123)" in text
    for number, result in key_slices(read):  # each key slice's caption: alone, then with its neighbours
        assert f"slice {number}: probability {result.probability:.3f} alone\n0.200 with its neighbours" in text


def test_two_close_thresholds_on_the_pdf_curve_are_labelled_apart(study):
    from dataclasses import replace

    threshold = study.slices[0].threshold
    read = replace(study, refined=[0.2] * len(study.slices), refined_threshold=threshold - 0.001)
    heights = {}

    def note(text, cm, tm, font, size):  # where each margin label is drawn (points from the page's foot)
        if text.startswith(("slice threshold ", "with neighbours ")):
            heights[text.split(" 0.")[0]] = tm[5]

    pypdf.PdfReader(io.BytesIO(studies_pdf([read], "m.keras"))).pages[0].extract_text(visitor_text=note)
    assert set(heights) == {"slice threshold", "with neighbours"}
    assert heights["slice threshold"] - heights["with neighbours"] >= 3.0 * 72 / 25.4 - 0.01  # 3 mm apart


def test_the_dicom_report_carries_each_key_slice_and_the_neighbours_reading(study):
    from dataclasses import replace

    read = replace(study, refined=[0.05, 0.3, 0.6, 0.2, 0.1], refined_threshold=0.25)
    files = export(read, "m.keras")
    report = pydicom.dcmread(io.BytesIO(files[next(n for n in files if n.endswith("report.dcm"))]))
    by_name = {}
    for item in report.ContentSequence:
        by_name.setdefault(item.ConceptNameCodeSequence[0].CodeMeaning, []).append(item)
    [highest] = by_name["Highest probability of a slice read with its neighbours"]
    assert float(highest.MeasuredValueSequence[0].NumericValue) == pytest.approx(0.6)
    [counted] = by_name["Slices read with their neighbours"]
    assert counted.TextValue == "2 of 5 slices at or above their operating point 0.250"
    assert "Comment" not in by_name  # no note to weigh the verdict by
    keys = [item.TextValue for item in by_name["Key slice"]]
    assert keys == [f"slice {n} of 5: probability {r.probability:.3f} alone, {read.refined[n - 1]:.3f} with its "
                    f"neighbours" for n, r in key_slices(read)]
    captures = [pydicom.dcmread(io.BytesIO(data)) for name, data in files.items() if "-key" in name]
    assert [ds.ImageComments for ds in captures] == keys
    alone = export(study, "m.keras")  # a short upload: no neighbours' reading to report
    report = pydicom.dcmread(io.BytesIO(next(data for name, data in alone.items() if name.endswith("report.dcm"))))
    names = {item.ConceptNameCodeSequence[0].CodeMeaning for item in report.ContentSequence}
    assert "Key slice" in names and "Slices read with their neighbours" not in names


def test_the_dicom_report_carries_the_notes_the_pdf_gives_beside_the_verdict(study):
    from dataclasses import replace

    from hemo import seen
    from hemo.acquisition import tilt_note

    slices = [replace(r, warnings=r.warnings + (tilt_note(18.5),) + ((seen.NOTE,) if i < 2 else ()))
              for i, r in enumerate(study.slices)]
    files = export(replace(study, slices=slices), "m.keras")
    report = pydicom.dcmread(io.BytesIO(files[next(n for n in files if n.endswith("report.dcm"))]))
    comments = [item.TextValue for item in report.ContentSequence
                if item.ConceptNameCodeSequence[0].CodeMeaning == "Comment"]
    assert comments == [f"Every slice: {tilt_note(18.5)}", f"2 of 5 slices: {seen.NOTE}"]


def test_dicom_results_read_back_reference_the_study_and_carry_no_identifiers(study):
    files = export(study, "m.keras")
    assert len(files) == 4  # three key slices and the report
    datasets = {name: pydicom.dcmread(io.BytesIO(data)) for name, data in files.items()}
    source_uid = study.key[0]
    for name, ds in datasets.items():
        assert ds.StudyInstanceUID == source_uid
        for secret in SECRETS:
            assert secret not in str(ds)
        assert not ds.get("PatientName") and not ds.get("PatientID")
    report = next(ds for name, ds in datasets.items() if name.endswith("report.dcm"))
    sr = hd.sr.srread(io.BytesIO(files[next(n for n in files if n.endswith("report.dcm"))]))
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    items = report.ContentSequence
    assert items[0].ConceptCodeSequence[0].CodeMeaning == "Hemorrhage"
    assert items[1].TextValue.startswith(study.verdict)
    assert float(items[2].MeasuredValueSequence[0].NumericValue) == pytest.approx(study.probability, abs=1e-4)
    assert len(report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
               .ReferencedSOPSequence) == 3
    key = next(ds for name, ds in datasets.items() if "key" in name)
    assert key.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage and key.pixel_array.shape == (256, 256, 3)


def test_cli_writes_report_and_dicom(small_model_path, tmp_path, capsys):
    for z in range(3):  # a tilted series: the CLI's study line and the PDF say so once
        (tmp_path / "in" / "x").mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / "x" / f"Doe_Jane_{z}.dcm").write_bytes(corpus.edit(
            dicom_bytes((head_phantom(128) + 1024).astype(np.int16), position=(0, 0, z)), GantryDetectorTilt=15))
    report, out = tmp_path / "report.pdf", tmp_path / "dicom"
    assert main(["predict", str(tmp_path / "in"), "--model", str(small_model_path), "--csv", str(tmp_path / "r.csv"),
                 "--report", str(report), "--dicom-out", str(out)]) == 0
    assert capsys.readouterr().err.count("  every slice: Slices tilted 15.0° from axial") == 1
    assert "Study verdict" in pdf_text(report.read_bytes()) and "Doe" not in pdf_text(report.read_bytes())
    assert "Every slice: Slices tilted 15.0°" in pdf_text(report.read_bytes())
    written = sorted(p.name for p in out.iterdir())
    assert written == ["hemo-study1-key1.dcm", "hemo-study1-key2.dcm", "hemo-study1-key3.dcm",
                       "hemo-study1-report.dcm"]
    assert main(["predict", str(tmp_path / "in"), "--model", str(small_model_path), "--dicom-out", str(out)]) == 2
    capsys.readouterr()
    assert main(["predict", str(out), "--model", str(small_model_path), "--csv", str(tmp_path / "again.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "again.csv")))  # hemo's results, read back, are no slices
    assert len(rows) == 4 and all(r["verdict"] == "error" and "one of hemo's own results" in r["error"] for r in rows)


def test_a_series_of_a_study_with_several_is_named_by_study_and_series_in_its_reports(study):
    from dataclasses import replace

    second = replace(study, series=2)  # e.g. the thin reconstruction beside a thick one
    assert "hemo study report - Study 1 · series 2" in pdf_text(studies_pdf([second], "m.keras"))
    assert sorted(export(second, "m.keras")) == [f"hemo-study1-series2-{part}.dcm"
                                                  for part in ("key1", "key2", "key3", "report")]


def test_the_dicom_results_of_images_without_a_study_uid_file_into_one_study_every_time(analyzer):
    from dataclasses import replace

    def uids(found) -> set[str]:
        return {pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID for data in export(found, "m.keras").values()}

    images = [(f"Doe_Jane_{k}.png", corpus.png(np.clip(head_phantom(128, (50 + 8 * k, 60)) / 4 + 60, 0, 255)
                                                 .astype(np.uint8))) for k in range(3)]
    [found] = studies(analyzer.analyse_files(images), analyzer)
    mapped = replace(found, slices=[replace(r, bleed=np.full((32, 32), 0.7, np.float16)) for r in found.slices])
    [uid] = uids(mapped)  # key slices, bleed maps and the report: one study
    assert uids(mapped) == {uid}  # exported again: the same study
    [renamed] = studies(analyzer.analyse_files([(f"x{k}.png", data) for k, (_, data) in enumerate(images)]), analyzer)
    assert uids(renamed) == {uid}  # the pixels name it, not the files
    [other] = studies(analyzer.analyse_files(images[:2]), analyzer)
    assert uids(other) != {uid}
