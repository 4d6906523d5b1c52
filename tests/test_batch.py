"""hemo batch on a local Ray: the same scores as hemo predict, error rows, and resume without duplicates."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import dicom_bytes, head_phantom
from test_archive import zipped
from hemo.cli import main
from hemo.options import version

pytest.importorskip("ray.data")


def test_batch_matches_predict_writes_errors_and_resumes(small_model_path, tmp_path, capsys):
    folder = tmp_path / "archive"
    for study in range(2):
        for z in range(3):
            path = folder / f"study{study}" / f"IM{z:04d}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(dicom_bytes((head_phantom(128, (50 + 10 * z, 60)) + 1024).astype(np.int16),
                                         position=(0, 0, z), study=f"1.2.9.{study}"))
    (folder / "study0" / "broken.dcm").write_bytes(b"DICM but not really")
    (folder / "study2.zip").write_bytes(zipped({f"IM{z:04d}": dicom_bytes(  # a zipped study: rows <zip>/<member>
        (head_phantom(128) + 1024).astype(np.int16), position=(0, 0, z), study="1.2.9.2") for z in range(3)}))
    out = tmp_path / "results.parquet"
    assert main(["batch", str(folder), "--out", str(out), "--model", str(small_model_path), "--workers", "1"]) == 0
    assert f"3 studies in {tmp_path / 'results-studies.csv'}" in capsys.readouterr().err  # where to find them
    table = pd.read_parquet(out)
    assert set(table["model"]) == {version(small_model_path)}  # every row, errors too, names what scored it
    errors = table[table["verdict"] == "error"]
    assert len(table) == 10 and len(errors) == 1 and errors["file"].iloc[0].endswith("broken.dcm")
    assert errors["error"].iloc[0].startswith("broken.dcm: ") and errors["probability"].isna().all()
    assert main(["predict", str(folder), "--model", str(small_model_path), "--csv", str(tmp_path / "p.csv"),
                 "--names"]) == 0
    with open(tmp_path / "p.csv") as f:
        expected = {r["file"]: float(r["probability"]) for r in csv.DictReader(f) if r["probability"]}
    got = dict(zip(table["file"], table["probability"]))
    assert set(expected) <= set(got)
    assert all(abs(got[f] - p) < 1e-4 for f, p in expected.items())
    studies = pd.read_csv(tmp_path / "results-studies.csv")
    assert sorted(studies["slices"].tolist()) == [3, 3, 3]
    assert str(folder / "study2.zip" / "IM0001") in got
    (folder / "study1" / "IM0009").write_bytes(dicom_bytes((head_phantom(128) + 1024).astype(np.int16),
                                                           position=(0, 0, 9), study="1.2.9.1"))
    assert main(["batch", str(folder), "--out", str(out), "--model", str(small_model_path)]) == 0
    again = pd.read_parquet(out)
    assert len(again) == 11 and not again.duplicated(["file", "frame"]).any()  # the zip too was not read again

    labels = tmp_path / "labels.csv"  # an auditor's labels for the archive: study1 bleeds, one file never read
    pd.DataFrame({"file": [*again["file"], str(folder / "lost.dcm")],
                  "label": [int("study1" in f) for f in again["file"]] + [0]}).to_csv(labels, index=False)
    assert main(["audit", str(out), str(labels), "--json", str(tmp_path / "audit.json")]) == 0
    audited = json.loads((tmp_path / "audit.json").read_text())
    scored = again[again["probability"].notna()]
    truth = scored["file"].str.contains("study1").astype(int)
    assert (audited["n"], audited["positives"], audited["labelled"]) == (10, 4, {
        "labels": 12, "not_in_results": 1, "errors": 1, "trained": 0, "series_partly_labelled": 0,
        "series_without_verdict": 0})
    assert audited["auc"] == pytest.approx(roc_auc_score(truth, scored["probability"]))
    called = (scored["probability"] >= scored["threshold"]).to_numpy()
    assert audited["sensitivity"] == pytest.approx(called[truth.to_numpy() == 1].mean())
    studies = pd.read_csv(tmp_path / "results-studies.csv")
    assert audited["studies"] == 3 and audited["study_sensitivity"] == float(
        studies.loc[studies["study_uid"] == "1.2.9.1", "verdict"].iloc[0] == "indicative of haemorrhage")
    assert audited["model"] == [version(small_model_path)]


def test_batch_judges_each_series_of_a_study_apart(small_model_path, tmp_path):
    from hemo.batch import COLUMNS, _row, studies
    from hemo.model import load

    rows = [_row(f"s{series}/IM{z}", 0, "1.2.9.7", f"1.2.9.7.{series}", position=z * 5.0 + series, score=0.2,
                 probability=0.2, verdict="likely normal", threshold=0.5) for series in (1, 2) for z in range(3)]
    out = tmp_path / "results.parquet"
    out.mkdir()
    pd.DataFrame(rows, columns=COLUMNS).to_parquet(out / "part.parquet")
    found = studies(out, load(small_model_path)[1])
    assert found["series_uid"].tolist() == ["1.2.9.7.1", "1.2.9.7.2"] and found["slices"].tolist() == [3, 3]


def test_a_batch_never_adds_one_models_rows_to_anothers(small_model_path, tmp_path, capsys):
    from hemo.batch import COLUMNS, _row

    (tmp_path / "IM1").write_bytes(dicom_bytes((head_phantom(128) + 1024).astype(np.int16)))
    for held, said in (("retrained.keras (sha256 0123456789ab)", "holds results of retrained.keras (sha256 "),
                       (None, "holds results of a model it did not record (an older hemo)")):
        out = tmp_path / f"results-{held is None}.parquet"
        out.mkdir()
        row = _row("old/IM0", 0, "1.2.9.1", "1.2.9.1.1", 0.0, 0.1, 0.1, "likely normal", 0.5, model=held or "")
        columns = COLUMNS if held else [c for c in COLUMNS if c != "model"]
        pd.DataFrame([row], columns=columns).to_parquet(out / "part.parquet")
        assert main(["batch", str(tmp_path / "IM1"), "--out", str(out), "--model", str(small_model_path)]) == 2
        error = capsys.readouterr().err
        assert said in error and f"this run uses {version(small_model_path)}" in error and "another --out" in error
        assert len(pd.read_parquet(out)) == 1  # nothing added


def test_an_audit_by_study_reads_the_series_verdicts_and_refuses_labels_it_cannot_read(tmp_path, capsys):
    from hemo import seen
    from hemo.batch import COLUMNS, _row

    out = tmp_path / "results.parquet"
    out.mkdir()
    rows = [_row(f"s{s}/IM{z}", 0, f"1.2.9.{s}", f"1.2.9.{s}.1", z, 0.1, p, "x", 0.3, model="m (sha256 0)")
            for s, p in ((1, 0.9), (2, 0.2), (3, 0.5)) for z in range(2)]
    pd.DataFrame(rows, columns=COLUMNS).to_parquet(out / "part.parquet")
    pd.DataFrame({"study_uid": ["1.2.9.1", "1.2.9.2", "1.2.9.3"], "series_uid": ["1.2.9.1.1", "1.2.9.2.1", "1.2.9.3.1"],
                  "probability": [0.9, 0.2, 0.5], "threshold": [0.4] * 3, "method": ["mean of the top k slices"] * 3,
                  "verdict": ["indicative of haemorrhage", "likely normal", "indicative of haemorrhage"]}).to_csv(
        tmp_path / "results-studies.csv", index=False)
    labels = tmp_path / "labels.csv"
    labels.write_text("study_uid,label\n1.2.9.1,1\n1.2.9.2,0\n1.2.9.3,0\n")
    assert main(["audit", str(out), str(labels)]) == 0
    said = capsys.readouterr().out
    assert ("study level (mean of the top k slices, 3 studies): AUC 1.000; threshold 0.400: sensitivity 1.000, "
            "specificity 0.500") in said
    verdicts = pd.read_csv(tmp_path / "results-studies.csv")  # an interrupted batch wrote none for the third
    verdicts[verdicts["study_uid"] != "1.2.9.3"].to_csv(tmp_path / "results-studies.csv", index=False)
    assert main(["audit", str(out), str(labels)]) == 0
    said = capsys.readouterr().out
    assert "(mean of the top k slices, 2 studies): AUC 1.000" in said and "1 series without a verdict" in said
    labels.write_text("file,label\ns1/IM0,1\ns1/IM1,0\ns2/IM0,0\n")  # s2 partly labelled, s3 not at all
    assert main(["audit", str(out), str(labels), "--json", str(tmp_path / "a.json")]) == 0
    audited = json.loads((tmp_path / "a.json").read_text())
    assert (audited["n"], audited["studies"], audited["labelled"]["series_partly_labelled"]) == (3, 1, 1)  # s1 alone
    trained = pd.DataFrame(rows, columns=COLUMNS)  # the model's own training slices, as hemo.seen notes them
    trained.loc[trained["file"].str.startswith("s1/"), "note"] = seen.NOTE
    trained.to_parquet(out / "part.parquet")
    assert main(["audit", str(out), str(labels)]) == 0
    assert "WARNING: 2 of the labelled slices trained this model" in capsys.readouterr().out
    labels.write_text("study_uid,label\n1.2.9.1,1\n1.2.9.2,0\n")
    assert main(["audit", str(out), str(labels)]) == 0
    assert "WARNING: 2 of the labelled slices trained this model" in capsys.readouterr().out
    for text, refused in (("file,diagnosis\na,1\n", "needs a 'label' column"),
                          ("study_uid,label\n1.2.9.1,yes\n", "must be 1 (haemorrhage) or 0"),
                          ("study_uid,label\n1.2.9.1,1\n1.2.9.1,0\n", "labelled twice"),
                          ("study_uid,label\n9.9,1\n", "none of the 1 labelled study_uid values")):
        labels.write_text(text)
        assert main(["audit", str(out), str(labels)]) == 2 and refused in capsys.readouterr().err


def test_an_audit_sets_the_models_own_evaluation_beside_its_numbers(small_model_path, tmp_path, capsys):
    import shutil

    from hemo.batch import COLUMNS, _row

    model = tmp_path / "model" / small_model_path.name
    shutil.copytree(small_model_path.parent, model.parent)
    (model.parent / "evaluation.json").write_text(json.dumps({
        "title": "Out-of-fold CV", "auc": 0.934, "sensitivity": 0.817, "specificity": 0.864,
        "study_method": "mean of the top 12 slices", "study_auc": 0.946, "study_sensitivity": 0.931,
        "study_specificity": 0.757}))
    out = tmp_path / "results.parquet"
    out.mkdir()
    rows = [_row(f"s{s}/IM{z}", 0, f"1.2.9.{s}", f"1.2.9.{s}.1", z, 0.1, 0.2 * s + 0.1 * z, "x", 0.5,
                 model=version(model)) for s in (1, 2, 3) for z in range(2)]
    pd.DataFrame(rows, columns=COLUMNS).to_parquet(out / "part.parquet")
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"file": [r["file"] for r in rows], "label": [0, 0, 0, 1, 1, 1]}).to_csv(labels, index=False)
    for rule, studies in (("mean of the top 12 slices", "; studies AUC 0.946, sensitivity 0.931, specificity 0.757"),
                          ("highest slice", "")):  # another rule's study numbers would mislead
        pd.DataFrame({"study_uid": ["1.2.9.1", "1.2.9.2", "1.2.9.3"], "series_uid": ["1.2.9.1.1", "1.2.9.2.1",
                      "1.2.9.3.1"], "probability": [0.3, 0.6, 0.8], "threshold": [0.5] * 3, "method": [rule] * 3,
                      "verdict": ["likely normal"] + ["indicative of haemorrhage"] * 2}).to_csv(
            tmp_path / "results-studies.csv", index=False)
        assert main(["audit", str(out), str(labels), "--model", str(model)]) == 0
        said = capsys.readouterr().out
        assert f"expected (Out-of-fold CV): slices AUC 0.934, sensitivity 0.817, specificity 0.864{studies}\n" in said
    assert main(["audit", str(out), str(labels), "--model", str(small_model_path)]) == 0  # no evaluation beside it
    assert "expected (" not in capsys.readouterr().out
    pd.DataFrame([{**r, "model": "retrained.keras (sha256 0123)"} for r in rows], columns=COLUMNS).to_parquet(
        out / "part.parquet")
    assert main(["audit", str(out), str(labels), "--model", str(model)]) == 0  # not the model that scored them
    assert "expected (" not in capsys.readouterr().out
