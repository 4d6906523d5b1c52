"""hemo batch on a local Ray: the same scores as hemo predict, error rows, and resume without duplicates."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from conftest import dicom_bytes, head_phantom
from test_archive import zipped
from hemo.cli import main
from hemo.model import version

pytest.importorskip("ray.data")


def test_batch_matches_predict_writes_errors_and_resumes(small_model_path, tmp_path):
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
