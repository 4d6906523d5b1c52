import csv

import cv2
import numpy as np
import pytest

from hemo import datasets


def write_png(path, value=120):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((64, 64), np.uint8)
    image[10:54, 12:52] = value
    cv2.imwrite(str(path), image)


def test_ct_ich_layout(tmp_path):
    rows = [(49, 1, 1), (49, 2, 0), (50, 1, 1), (51, 3, 1)]
    with open(tmp_path / "hemorrhage_diagnosis.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["PatientNumber", "SliceNumber", "Intraventricular", "Intraparenchymal", "Subarachnoid",
                         "Epidural", "Subdural", "No_Hemorrhage", "Fracture_Yes_No"])
        for patient, number, normal in rows:
            writer.writerow([patient, number, 0, 1 - normal, 0, 0, 0, normal, 0])
            write_png(tmp_path / "Patients_CT" / f"{patient:03d}" / "brain" / f"{number}.jpg")
    records = datasets.discover(tmp_path)
    assert [(r.patient, r.label) for r in records] == [("049", 0), ("049", 1), ("050", 0), ("051", 0)]


@pytest.mark.parametrize("nested", [False, True])
def test_kaggle_head_ct_layout(tmp_path, nested):
    folder = tmp_path / "head_ct" / "head_ct" if nested else tmp_path / "head_ct"
    (tmp_path / "labels.csv").write_text("id, hemorrhage\n0,1\n1,0\n12,1\n")
    for i in (0, 1, 12):
        write_png(folder / f"{i:03d}.png")
    records = datasets.discover(tmp_path)
    assert [(r.path.name, r.label) for r in records] == [("000.png", 1), ("001.png", 0), ("012.png", 1)]


def test_class_folder_layout_with_patients(tmp_path):
    write_png(tmp_path / "data" / "Hemorrhagic" / "p1" / "a.png")
    write_png(tmp_path / "data" / "Hemorrhagic" / "p1" / "b.png")
    write_png(tmp_path / "data" / "NORMAL" / "c.png")
    write_png(tmp_path / "data" / "normal" / "p2" / "d.jpg")
    records = datasets.discover(tmp_path)
    assert sorted((r.path.name, r.label, r.patient) for r in records) == [
        ("a.png", 1, "Hemorrhagic/p1"), ("b.png", 1, "Hemorrhagic/p1"), ("c.png", 0, "NORMAL/c"),
        ("d.jpg", 0, "normal/p2")]
    data = datasets.load(tmp_path)
    assert data.images.shape == (4, 256, 256) and data.images.dtype == np.uint8


def test_empty_folder_explains_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="Patients_CT"):
        datasets.discover(tmp_path)


def fake_dataset(patients: int = 20, per_patient: int = 5) -> datasets.Dataset:
    labels = np.array([int(p % 3 == 0 and s > 2) for p in range(patients) for s in range(per_patient)])
    ids = np.array([f"{p:03d}" for p in range(patients) for _ in range(per_patient)])
    return datasets.Dataset(np.zeros((len(ids), 256, 256), np.uint8), labels, ids, ids)


def test_patient_split_never_shares_a_patient():
    data = fake_dataset()
    for seed in range(5):
        split = datasets.split_patients(data, 0.2, seed)
        assert not set(split["train"]) & set(split["validation"])
        assert set(split["train"]) | set(split["validation"]) == set(data.patients.tolist())
        val = data.subset(datasets.indices(data, split["validation"]))
        assert val.labels.sum() > 0 and (val.labels == 0).sum() > 0  # stratified
    assert datasets.split_patients(data, 0.2, 1) == datasets.split_patients(data, 0.2, 1)


def test_folds_partition_patients():
    folds = datasets.patient_folds(fake_dataset(), 5)
    flat = [p for fold in folds for p in fold]
    assert len(flat) == len(set(flat)) == 20 and all(len(f) == 4 for f in folds)


def test_folds_find_the_slices_of_patients_numbered_with_ints():
    data = fake_dataset()
    data.patients = np.array([int(p) for p in data.patients])  # a Dataset built by hand
    found = [datasets.indices(data, fold) for fold in datasets.patient_folds(data, 5)]
    assert sorted(np.concatenate(found).tolist()) == list(range(len(data)))


def test_npz_round_trip(tmp_path):
    data = fake_dataset(4, 2)
    data.save(tmp_path / "d.npz")
    again = datasets.load(tmp_path / "d.npz")
    assert np.array_equal(again.labels, data.labels) and np.array_equal(again.patients, data.patients)


def test_real_ct_ich_counts(shared_data):
    records = datasets.discover(shared_data / "ct-ich")
    assert len(records) == 1993
    assert sum(r.label for r in records) == 251
    assert len({r.patient for r in records}) == 66


def _dicom(path, patient: str, study: str, z: float = 0.0):
    from conftest import dicom_bytes, head_phantom

    import pydicom
    import io

    data = dicom_bytes((head_phantom(64) + 1024).astype(np.int16), position=(0, 0, z), study=study)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PatientID = patient
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)


def test_rsna_2019_layout_rebuilds_patients_from_headers(tmp_path):
    rows = ["ID,Label"]
    for image, patient, bleed in (("ID_aaa", "ID_p1", 1), ("ID_bbb", "ID_p1", 0), ("ID_ccc", "ID_p2", 0)):
        for subtype in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any"):
            rows.append(f"{image}_{subtype},{bleed if subtype in ('any', 'subdural') else 0}")
        _dicom(tmp_path / "stage_2_train" / f"{image}.dcm", patient, f"1.2.3.{patient[-1]}")
    (tmp_path / "stage_2_train.csv").write_text("\n".join(rows) + "\n")
    records = datasets.discover(tmp_path)
    assert [(r.path.stem, r.label, r.patient) for r in records] == [
        ("ID_aaa", 1, "ID_p1"), ("ID_bbb", 0, "ID_p1"), ("ID_ccc", 0, "ID_p2")]


def test_cq500_layout_takes_the_readers_majority_per_study(tmp_path):
    (tmp_path / "reads.csv").write_text(
        "name,Category,R1:ICH,R2:ICH,R3:ICH\nCQ500-CT-1,B1,1,1,0\nCQ500-CT-2,B1,0,1,0\n")
    for number in (1, 2):
        for z in range(2):
            _dicom(tmp_path / f"CQ500CT{number} CQ500CT{number}" / "Unknown Study" / "CT 5mm" / f"CT00000{z}.dcm",
                   f"CQ500-CT-{number}", f"1.2.4.{number}", z)
    records = datasets.discover(tmp_path)
    assert [(r.patient, r.label) for r in records] == [("cq500ct1", 1)] * 2 + [("cq500ct2", 0)] * 2
    data = datasets.load(tmp_path)
    assert len(data) == 4 and sorted(set(data.patients.tolist())) == ["cq500ct1", "cq500ct2"]
