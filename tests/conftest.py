"""Shared fixtures: small DICOM/PNG writers, the real data folder when present, one small saved model."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HEMO_DATA_DIR", ROOT.parent / "shared" / "data"))


def dicom_bytes(stored: np.ndarray, modality: str = "CT", slope: float | None = 1.0, intercept: float | None = -1024.0,
                photometric: str = "MONOCHROME2", position: tuple[float, float, float] | None = None,
                instance: int | None = None, window: tuple[float, float] | None = None,
                transfer_syntax=ExplicitVRLittleEndian, pixels: bool = True, study: str = "1.2.826.0.1.3680043.10.1",
                series: str | None = None) -> bytes:
    """A minimal but valid DICOM file written by pydicom; frames first when ``stored`` is 3-D."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = FileDataset("test.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series or study + ".1"
    ds.PatientName, ds.PatientID = "Doe^Jane", "PID-SECRET-42"
    ds.PatientBirthDate, ds.AccessionNumber = "19700101", "ACC-SECRET-7"
    frames = stored.ndim == 3
    ds.Rows, ds.Columns = stored.shape[-2:]
    if frames:
        ds.NumberOfFrames = stored.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if position is not None:
        ds.ImagePositionPatient = list(position)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    if instance is not None:
        ds.InstanceNumber = instance
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelSpacing = [0.5, 0.5]
    if pixels and transfer_syntax.is_compressed:
        ds.PixelData = encapsulate([stored.astype(np.int16).tobytes()])
        ds["PixelData"].VR = "OB"
    elif pixels:
        ds.PixelData = stored.astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def load_tool(name: str):
    """A script of tools/ as a module (they are not a package): importing one must run nothing."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def head_phantom(size: int = 128, blob: tuple[int, int] | None = None) -> np.ndarray:
    """A head-like ellipse in HU: air outside, skull ring, brain at 35 HU, optional 75 HU bleed."""
    y, x = np.mgrid[:size, :size]
    r = ((x - size / 2) / (0.42 * size)) ** 2 + ((y - size / 2) / (0.36 * size)) ** 2
    hu = np.full((size, size), -1000.0)
    hu[r < 1.0] = 1000.0
    hu[r < 0.85] = 35.0
    if blob:
        hu[(x - blob[1]) ** 2 + (y - blob[0]) ** 2 < (size // 12) ** 2] = 75.0
    return hu


def phantom_slices(count: int = 16):
    """A labelled ``hemo.datasets.Dataset`` of 256x256 8-bit head phantoms, 4 slices per patient.

    Odd slices carry a bleed at a jittered position; for training tests that need no real data.
    """
    from hemo import datasets

    rng = np.random.default_rng(0)
    labels = np.arange(count) % 2
    images = []
    for label in labels:
        hu = head_phantom(256, (100 + int(rng.integers(-20, 20)), 150) if label else None)
        images.append(np.clip((hu - 40) / 120 * 255 + 127.5 + rng.normal(0, 4, hu.shape), 0, 255).astype(np.uint8))
    patients = np.array([f"{i // 4:03d}" for i in range(count)])
    return datasets.Dataset(np.stack(images), labels, patients, np.array([f"{i}.png" for i in range(count)]))


def ct_ich_folder(root, patients: int = 6, slices: int = 10):
    """A tiny CT-ICH layout: every odd patient has a bright bleed on slices 3-5, with its mask file."""
    rows = []
    for patient in range(patients):
        for number in range(1, slices + 1):
            bleed = patient % 2 == 1 and 3 <= number <= 5
            hu = head_phantom(160, (70, 90) if bleed else None)
            image = np.clip((hu - 40) / 120 * 255 + 127.5, 0, 255).astype(np.uint8)
            folder = root / "Patients_CT" / f"{patient + 49:03d}" / "brain"
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{number}.jpg"), image)
            if bleed:
                mask = ((hu == 75.0) * 255).astype(np.uint8)
                cv2.imwrite(str(folder / f"{number}_HGE_Seg.jpg"), mask)
            rows.append([patient + 49, number, 0, int(bleed), 0, 0, 0, int(not bleed), 0])
    with open(root / "hemorrhage_diagnosis.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["PatientNumber", "SliceNumber", "Intraventricular", "Intraparenchymal", "Subarachnoid",
                         "Epidural", "Subdural", "No_Hemorrhage", "Fracture_Yes_No"])
        writer.writerows(rows)
    return root



def trained_on(model_path: Path, folder: Path, images) -> Path:
    """A copy of the model at ``model_path`` in ``folder`` whose JSON says ``images`` trained it (``hemo.seen``)."""
    import json
    import shutil

    from hemo import seen

    shutil.copytree(model_path.parent, folder)
    meta = folder / model_path.with_suffix(".json").name
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "trained_on": {"slices": seen.fingerprint(images)}}))
    return folder / model_path.name

@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "ct-ich").is_dir():
        pytest.skip(f"the shared head-CT data is not at {SHARED} (set HEMO_DATA_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def small_model_path(tmp_path_factory) -> Path:
    """An untrained hybrid model saved once per session (building one costs ~10 s)."""
    from hemo.model import ModelInfo, build, save

    path = tmp_path_factory.mktemp("model") / "hemo-hybrid.keras"
    return save(build(pretrained="none"), path, ModelInfo(pretrained="none", threshold=0.5))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """Under ``--dist loadgroup`` (pytest.ini) the tests that read the shared CV run share one xdist worker,
    so the run is trained once."""
    for item in items:
        if "cv_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("cv_run"))


@pytest.fixture(scope="session")
def cv_run(tmp_path_factory):
    """A two-fold out-of-fold run with the bleed decoder, traced on held-out patients: two epochs of an untrained
    backbone (fast, not accurate; no warm-up, which needs pretrained weights). Shared: a CV costs minutes here."""
    from hemo.cli import main

    root = ct_ich_folder(tmp_path_factory.mktemp("ctich"))
    out = tmp_path_factory.mktemp("oof")
    args = ["cv", str(root), "--folds", "2", "--epochs", "2", "--warmup-epochs", "0", "--pretrained", "none",
            "--batch-size", "8", "--mask-weight", "1", "--robust", "--schedule", "cosine", "--trace-heldout",
            "--out", str(out)]
    assert main(args) == 0
    return root, out, args


@pytest.fixture(scope="session")
def analyzer(small_model_path):
    from hemo.analysis import Analyzer

    return Analyzer.load(small_model_path)
