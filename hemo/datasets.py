"""Find labelled slices in the folder layouts people download, and split them by patient.

Neighbouring slices of one patient are nearly identical, so every split here keeps a
patient's slices together unless the caller asks for the paper's (leaky) slice split.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Callable, Iterable, Sequence

import numpy as np

from hemo.imaging import HemoInputError, read_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm"}
_POSITIVE_DIRS = {"hemorrhagic", "haemorrhagic", "hemorrhage", "haemorrhage"}
_NEGATIVE_DIRS = {"normal"}


def is_annotation(path: Path) -> bool:
    """CT-ICH's bleed masks (``<n>_HGE_Seg.jpg``) lie beside the slices; they are not slices."""
    return path.stem.lower().endswith("_hge_seg")


#: What exports keep beside their images (licences, read-me files, a CD's viewer program and its web pages): never a
#: slice, and in a folder each one was an error line among the results. BMP, GIF or TIFF are not here: a slice
#: exported so should be refused by name, not left out unseen.
DOCUMENT_SUFFIXES = frozenset({".txt", ".md", ".rtf", ".pdf", ".doc", ".docx", ".htm", ".html", ".xml", ".json", ".csv",
                               ".tsv", ".log", ".ini", ".inf", ".cfg", ".exe", ".dll", ".so", ".dylib", ".jar",
                               ".class", ".bat", ".cmd", ".sh", ".js", ".css", ".url", ".lnk"})
DOCUMENT_NAMES = frozenset({"LICENSE", "LICENCE", "README", "COPYING", "NOTICE", "AUTHORS"})


def ignored(path: PurePath) -> bool:
    """Never a slice: hidden files, macOS's ``__MACOSX`` forks, DICOMDIR (a media index without pixels), and the
    documents and programs an export keeps beside its images (``DOCUMENT_SUFFIXES``, ``DOCUMENT_NAMES``)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in path.parts if part not in (".", "..")) \
        or path.name.upper() == "DICOMDIR" or path.suffix.lower() in DOCUMENT_SUFFIXES \
        or path.stem.upper() in DOCUMENT_NAMES


@dataclass(frozen=True)
class Record:
    """One labelled slice on disk."""

    path: Path
    label: int  # 1 = haemorrhage
    patient: str
    mask: Path | None = None  # the radiologists' bleed annotation of this slice, when the layout has one


def _ct_ich(root: Path) -> list[Record]:
    """PhysioNet CT-ICH: Patients_CT/<PPP>/brain/<n>.jpg and hemorrhage_diagnosis.csv."""
    records = []
    with open(root / "hemorrhage_diagnosis.csv", newline="") as f:
        for row in csv.DictReader(f):
            patient = f"{int(row['PatientNumber']):03d}"
            path = root / "Patients_CT" / patient / "brain" / f"{int(row['SliceNumber'])}.jpg"
            mask = path.with_name(f"{path.stem}_HGE_Seg.jpg")
            if path.exists():
                records.append(Record(path, int(int(row["No_Hemorrhage"]) == 0), patient,
                                      mask if mask.exists() else None))
    return records


def _kaggle_head_ct(root: Path) -> list[Record]:
    """Kaggle "Head CT - hemorrhage": head_ct/[head_ct/]NNN.png and labels.csv (id, hemorrhage)."""
    folder = root / "head_ct" / "head_ct" if (root / "head_ct" / "head_ct").is_dir() else root / "head_ct"
    records = []
    with open(root / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            row = {key.strip(): value.strip() for key, value in row.items()}
            path = folder / f"{int(row['id']):03d}.png"
            if path.exists():
                records.append(Record(path, int(row["hemorrhage"]), f"{int(row['id']):03d}"))
    return records


def _class_folders(root: Path) -> list[Record]:
    """Folder per class (Hemorrhagic/ and NORMAL/, any case); a class's first subfolder is the patient."""
    records = []
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        name = folder.name.lower()
        if name not in _POSITIVE_DIRS | _NEGATIVE_DIRS:
            continue
        label = int(name in _POSITIVE_DIRS)
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not is_annotation(path):
                relative = path.relative_to(folder).parts
                patient = relative[0] if len(relative) > 1 else path.stem
                records.append(Record(path, label, f"{folder.name}/{patient}"))
    return records


def _header(path: Path) -> tuple[str, str]:
    """(PatientID, StudyInstanceUID) from a DICOM header, pixels never read."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID", "StudyInstanceUID"])
    return str(ds.get("PatientID", "")), str(ds.get("StudyInstanceUID", ""))


def _rsna(root: Path) -> list[Record]:
    """RSNA 2019: stage_2_train.csv rows ``ID_<image>_<subtype>,Label`` and ``stage_2_train/ID_<image>.dcm``.

    A slice is haemorrhage when its ``any`` row is 1. Patients and studies come from the headers
    (PatientID, else StudyInstanceUID), so folds never split a patient.
    """
    table = next(root.glob("stage_*_train.csv"))
    folder = root / table.stem if (root / table.stem).is_dir() else root
    labels: dict[str, int] = {}
    with open(table, newline="") as f:
        for row in csv.DictReader(f):
            image, _, subtype = row["ID"].rpartition("_")
            if subtype == "any":
                labels[image] = int(row["Label"])
    records = []
    for image, label in sorted(labels.items()):
        path = folder / f"{image}.dcm"
        if path.exists():
            patient, study = _header(path)
            records.append(Record(path, label, patient or study or image))
    return records


def _cq500(root: Path) -> list[Record]:
    """CQ500: reads.csv (three readers' ``R1:ICH`` .. ``R3:ICH`` per study, majority vote) and DICOM folders.

    Labels are per study, so every slice of a study carries the study's label: evaluate CQ500 at the
    study level (``study_auc``), not by slice.
    """
    votes: dict[str, int] = {}
    with open(root / "reads.csv", newline="") as f:
        for row in csv.DictReader(f):
            name = row["name"].strip()
            reads = [int(float(row[f"R{r}:ICH"])) for r in (1, 2, 3)]
            votes[name.replace("-", "").lower()] = int(sum(reads) >= 2)
    records = []
    for path in sorted(p for p in root.rglob("*.dcm") if p.is_file()):
        study = next((part for part in path.relative_to(root).parts
                      if part.replace("-", "").split(" ")[0].lower() in votes), None)
        if study is not None:
            key = study.replace("-", "").split(" ")[0].lower()
            records.append(Record(path, votes[key], key))
    return records


def discover(root: str | Path) -> list[Record]:
    """The labelled slices under ``root``, whichever supported layout it has."""
    root = Path(root)
    if (root / "hemorrhage_diagnosis.csv").exists() and (root / "Patients_CT").is_dir():
        records = _ct_ich(root)
    elif (root / "labels.csv").exists() and (root / "head_ct").is_dir():
        records = _kaggle_head_ct(root)
    elif any(root.glob("stage_*_train.csv")):
        records = _rsna(root)
    elif (root / "reads.csv").exists():
        records = _cq500(root)
    else:
        records = _class_folders(root)
    if not records:
        raise FileNotFoundError(
            f"no labelled slices found in {root}: expected CT-ICH (Patients_CT/ + hemorrhage_diagnosis.csv), "
            "Kaggle head_ct/ + labels.csv, RSNA 2019 (stage_2_train.csv + DICOM), CQ500 (reads.csv + DICOM), "
            "or Hemorrhagic/ and NORMAL/ folders"
        )
    return records


@dataclass
class Dataset:
    """Prepared slices in memory: images uint8 (N, 256, 256), labels, patients and source names.

    ``masks`` (uint8 N x 256 x 256, 255 = bleed) holds the bleed annotations cropped like the
    slices when the layout has them (CT-ICH); a slice without haemorrhage has an empty mask.
    ``neighbours`` (``hemo cache --neighbours``) holds, per slice, the next (else the previous) slice of
    its series with the same label, cropped by this slice's head box, for ``hemo.partial_volume``; all
    zero where there is none.
    """

    images: np.ndarray
    labels: np.ndarray
    patients: np.ndarray
    names: np.ndarray
    masks: np.ndarray | None = None
    neighbours: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Sequence[int] | np.ndarray) -> "Dataset":
        index = np.asarray(index, dtype=int)
        masks = None if self.masks is None else self.masks[index]
        neighbours = None if self.neighbours is None else self.neighbours[index]
        return Dataset(self.images[index], self.labels[index], self.patients[index], self.names[index], masks,
                       neighbours)

    def inputs(self) -> np.ndarray:
        """The model batch (N, 256, 256, 1) float32."""
        return self.images[..., np.newaxis].astype(np.float32)

    def save(self, path: str | Path) -> None:
        extra = {key: value for key, value in (("masks", self.masks), ("neighbours", self.neighbours))
                 if value is not None}
        np.savez_compressed(path, images=self.images, labels=self.labels, patients=self.patients, names=self.names,
                            **extra)


def _with_mask(record: Record, window_name: str, crop: bool) -> tuple[np.ndarray, np.ndarray]:
    """The slice and its annotation, cropped by the same head box (the mask alone has no head to find)."""
    from hemo.annotation import aligned_mask

    pixels = read_file(record.path, window_name, crop)[0].pixels
    mask = None if record.mask is None else aligned_mask(record.path.read_bytes(), record.mask.read_bytes(), crop)
    return pixels, (np.zeros_like(pixels) if mask is None else mask.astype(np.float32) * 255)


def _neighbour(record: Record, by_path: dict[Path, Record]) -> Record | None:
    """The next slice of the same folder (slice numbers as file names, as in CT-ICH), else the previous, if
    it has the same label."""
    try:
        number = int(record.path.stem)
    except ValueError:
        return None
    for step in (1, -1):
        other = by_path.get(record.path.with_name(f"{number + step}{record.path.suffix}"))
        if other is not None and other.label == record.label:
            return other
    return None


def _neighbours(records: list[Record], crop: bool) -> np.ndarray:
    from hemo.partial_volume import aligned_neighbour

    by_path = {r.path: r for r in records}
    out = np.zeros((len(records), 256, 256), np.uint8)
    for i, record in enumerate(records):
        other = _neighbour(record, by_path)
        beside = None if other is None else aligned_neighbour(record.path.read_bytes(), other.path.read_bytes(), crop)
        if beside is not None:
            out[i] = np.round(np.clip(beside, 0, 255)).astype(np.uint8)
    return out


def load(source: str | Path, window_name: str = "brain", crop: bool = True,
         progress: Callable[[int, int], None] | None = None, neighbours: bool = False) -> Dataset:
    """Read a data folder (any layout above) or a ``.npz`` written by ``hemo cache``.

    ``neighbours``: also each slice's same-label neighbour (see :class:`Dataset`; raster slices only).
    """
    source = Path(source)
    if source.suffix == ".npz":
        with np.load(source) as data:
            return Dataset(data["images"], data["labels"], data["patients"], data["names"],
                           data["masks"] if "masks" in data else None,
                           data["neighbours"] if "neighbours" in data else None)
    records = discover(source)
    images = np.zeros((len(records), 256, 256), np.uint8)
    has_masks = any(r.mask is not None for r in records)
    masks = np.zeros_like(images) if has_masks else None
    keep = []
    for i, record in enumerate(records):
        try:
            if masks is not None:
                pixels, mask = _with_mask(record, window_name, crop)
                masks[i] = np.round(mask).astype(np.uint8)
            else:
                pixels = read_file(record.path, window_name, crop)[0].pixels
            images[i] = np.round(pixels).astype(np.uint8)
            keep.append(i)
        except HemoInputError as error:
            print(f"skipped: {error}")
        if progress:
            progress(i + 1, len(records))
    names = [str(r.path.relative_to(source)) for r in records]
    dataset = Dataset(images, np.array([r.label for r in records]), np.array([r.patient for r in records]),
                      np.array(names), masks, _neighbours(records, crop) if neighbours else None)
    return dataset.subset(keep)


def _stratified_patients(dataset: Dataset, seed: int) -> tuple[list[str], list[str]]:
    """Patients with and without any haemorrhage slice, each list shuffled by the seed."""
    rng = np.random.default_rng(seed)
    patients = sorted(set(dataset.patients.tolist()))
    positive = {p for p, y in zip(dataset.patients, dataset.labels) if y}
    groups = [[p for p in patients if p in positive], [p for p in patients if p not in positive]]
    return [list(rng.permutation(g)) for g in groups]  # type: ignore[return-value]


def patient_folds(dataset: Dataset, folds: int, seed: int = 0) -> list[list[str]]:
    """Patients dealt into ``folds`` groups, stratified by whether a patient has any haemorrhage."""
    groups: list[list[str]] = [[] for _ in range(folds)]
    order = [p for group in _stratified_patients(dataset, seed) for p in group]
    for i, patient in enumerate(order):
        groups[i % folds].append(str(patient))
    return groups


def split_patients(dataset: Dataset, val_fraction: float = 0.2, seed: int = 0) -> dict[str, list[str]]:
    """A stratified patient-level split: {"train": [...], "validation": [...]}."""
    train, validation = [], []
    for group in _stratified_patients(dataset, seed):
        n_val = max(1, int(round(val_fraction * len(group)))) if len(group) > 1 else 0
        validation += [str(p) for p in group[:n_val]]
        train += [str(p) for p in group[n_val:]]
    return {"train": sorted(train), "validation": sorted(validation)}


def split_slices(dataset: Dataset, val_fraction: float = 0.1, seed: int = 0) -> dict[str, list[int]]:
    """The paper's random slice split. It leaks: one patient's neighbouring slices land on both sides."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_val = int(round(val_fraction * len(dataset)))
    return {"train": sorted(order[n_val:].tolist()), "validation": sorted(order[:n_val].tolist())}


def indices(dataset: Dataset, patients: Iterable[str]) -> np.ndarray:
    """Indices of the slices that belong to the given patients.

    Compared as text: folds and split files name patients as strings, a hand-built Dataset may use ints.
    """
    return np.flatnonzero(np.isin(dataset.patients.astype(str), [str(p) for p in patients]))


def write_split(path: str | Path, split: dict) -> None:
    Path(path).write_text(json.dumps(split, indent=1) + "\n")
