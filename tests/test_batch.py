"""hemo batch on a local Ray: the same scores as hemo predict, error rows, and resume without duplicates."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from conftest import dicom_bytes, head_phantom
from test_archive import zipped
from hemo.cli import main

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
