"""Turn any supported file into the model's input: a windowed, head-cropped 256x256 slice.

Training, evaluation, the CLI and the app all call :func:`read_slices`, so a slice is
prepared the same way wherever it comes from.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.errors import InvalidDicomError

SIZE = 256
MIN_SIDE = 32
MAX_PIXELS = 64_000_000

#: Named CT windows as (level, width) in Hounsfield units. "file" uses the DICOM's own window.
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "bone": (600.0, 2800.0),
}
WINDOW_NAMES = (*WINDOWS, "file")

_ACCEPTED_MODALITIES = {"CT"}
_SECONDARY_CAPTURE = {"OT", "SC"}
#: Only these header fields are ever read for display; identifiers never leave pydicom.
_TECHNICAL_TAGS = ("Modality", "PixelSpacing", "SliceThickness", "ImagePositionPatient", "InstanceNumber")


class HemoInputError(ValueError):
    """A file that cannot be read as a head-CT slice; the message is meant for the user."""


@dataclass(frozen=True)
class Slice:
    """One model-ready slice and the technical facts about where it came from."""

    pixels: np.ndarray  # float32, SIZE x SIZE, 0..255
    source: str
    frame: int = 0
    position: float | None = None
    info: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map Hounsfield units to 0..255 with a linear window (level +- width/2)."""
    low = level - width / 2.0
    return (np.clip((hu.astype(np.float32) - low) / width, 0.0, 1.0) * 255.0).astype(np.float32)


def head_bbox(gray: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right) of the largest bright object: the head.

    The scanner table, burnt-in text and padding are separate, smaller objects and fall away.
    """
    mask = (gray > 0.1 * max(float(gray.max()), 1.0)).astype(np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    h, w = gray.shape
    if count < 2:
        return 0, h, 0, w
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh = stats[largest, :4]
    if bw * bh < 0.02 * h * w:
        return 0, h, 0, w
    return int(y), int(y + bh), int(x), int(x + bw)


def prepare(gray: np.ndarray, crop: bool = True) -> np.ndarray:
    """Crop a 0..255 gray image to the head, pad it square and resize to SIZE x SIZE."""
    gray = gray.astype(np.float32)
    if crop:
        top, bottom, left, right = head_bbox(gray)
        gray = gray[top:bottom, left:right]
    h, w = gray.shape
    side = max(h, w)
    square = np.zeros((side, side), np.float32)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = gray
    interpolation = cv2.INTER_AREA if side > SIZE else cv2.INTER_LINEAR
    return cv2.resize(square, (SIZE, SIZE), interpolation=interpolation)


def _check_size(rows: int, cols: int, name: str) -> None:
    if min(rows, cols) < MIN_SIDE:
        raise HemoInputError(f"{name}: the image is only {cols}x{rows} pixels; a CT slice needs at least {MIN_SIDE}x{MIN_SIDE}.")
    if rows * cols > MAX_PIXELS:
        raise HemoInputError(f"{name}: the image is {cols}x{rows} pixels, far larger than any CT slice; it was not opened.")


def _is_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith((".dcm", ".dicom"))


def _read_raster(data: bytes, name: str, crop: bool) -> list[Slice]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_size(image.height, image.width, name)
            image.load()
    except HemoInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise HemoInputError(f"{name}: the image is far larger than any CT slice; it was not opened.") from None
    except UnidentifiedImageError:
        raise HemoInputError(f"{name}: not a readable PNG, JPEG or DICOM image.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise HemoInputError(f"{name}: the image file is damaged or incomplete ({error}).") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or gray.max() > 255 else 255.0
        gray = gray * (255.0 / top)
    else:
        gray = np.asarray(image.convert("L"), dtype=np.float32)
    return [Slice(prepare(gray, crop), name, info={"format": image.format or "image"})]


def _hounsfield(ds: pydicom.Dataset, pixels: np.ndarray) -> np.ndarray:
    """Apply the modality LUT; CT defaults (slope 1, intercept 0) when the tags are absent."""
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return pixels.astype(np.float32) * slope + intercept


def _first(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
    return None if value is None else float(value)


def _file_window(ds: pydicom.Dataset) -> tuple[float, float] | None:
    level, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    return (level, width) if level is not None and width else None


def _position(ds: pydicom.Dataset) -> float | None:
    ipp = ds.get("ImagePositionPatient")
    if ipp is not None and len(ipp) == 3:
        iop = ds.get("ImageOrientationPatient")
        if iop is not None and len(iop) == 6:
            normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
            return float(np.dot(normal, np.asarray(ipp, float)))
        return float(ipp[2])
    number = ds.get("InstanceNumber")
    return None if number is None else float(number)


def _technical_info(ds: pydicom.Dataset, level: float, width: float, window_name: str) -> dict:
    """Only technical tags, never identifiers: safe to display."""
    info: dict = {"format": "DICOM", "window": f"{window_name} (L {level:g} / W {width:g})"}
    for tag in _TECHNICAL_TAGS:
        value = ds.get(tag)
        if isinstance(value, pydicom.multival.MultiValue):
            info[tag] = [round(float(v), 3) for v in value]
        elif isinstance(value, (int, float)):
            info[tag] = float(value)
        elif value:
            info[tag] = str(value)
    return info


def _read_dicom(data: bytes, name: str, window_name: str, crop: bool) -> list[Slice]:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise HemoInputError(f"{name}: the DICOM file is damaged or incomplete ({type(error).__name__}).") from None
    if "PixelData" not in ds:
        raise HemoInputError(f"{name}: this DICOM file holds no image (no pixel data); it may be a report or a truncated file.")
    modality = str(ds.get("Modality", "")).upper()
    notes: list[str] = []
    if modality and modality not in _ACCEPTED_MODALITIES | _SECONDARY_CAPTURE:
        raise HemoInputError(f"{name}: this is a {modality} image; the model reads CT slices only.")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    _check_size(rows, cols, name)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        pixels = ds.pixel_array
    except (NotImplementedError, RuntimeError):
        label = syntax.name if syntax is not None else "unknown"
        raise HemoInputError(
            f"{name}: the pixels are compressed ({label}) and no decoder for that format is installed; "
            "export the series uncompressed or install pylibjpeg/GDCM."
        ) from None
    except (ValueError, TypeError, AttributeError, KeyError, EOFError) as error:
        raise HemoInputError(f"{name}: the DICOM pixel data is damaged or incomplete ({error}).") from None
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise HemoInputError(f"{name}: this DICOM holds a colour picture, not CT values.")
    frames = pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[np.newaxis]
    hu = _hounsfield(ds, frames)
    if modality in _SECONDARY_CAPTURE:
        if hu.min() > -500 or hu.max() > 5000:
            raise HemoInputError(f"{name}: a secondary-capture image whose values are not CT Hounsfield units.")
        notes.append("Secondary Capture, not a CT object: read as Hounsfield units because its values look like CT.")
    elif not modality:
        notes.append("No modality in the header: read as CT.")
    if window_name == "file":
        own = _file_window(ds)
        if own is None:
            notes.append("The file has no window of its own: the brain window was used.")
        level, width = own or WINDOWS["brain"]
    elif window_name in WINDOWS:
        level, width = WINDOWS[window_name]
    else:
        raise HemoInputError(f"unknown window '{window_name}'; choose one of {', '.join(WINDOW_NAMES)}.")
    inverted = str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    info = _technical_info(ds, level, width, window_name)
    position = _position(ds)
    slices = []
    for index, frame in enumerate(hu):
        gray = window(frame, level, width)
        if inverted:
            gray = 255.0 - gray
        slices.append(Slice(prepare(gray, crop), name, index, position, info, tuple(notes)))
    return slices


def read_slices(data: bytes, name: str = "upload", window_name: str = "brain", crop: bool = True) -> list[Slice]:
    """Read PNG/JPEG/DICOM bytes into model-ready slices (one per DICOM frame).

    Raises :class:`HemoInputError` for anything that is not a readable CT slice.
    """
    if not data:
        raise HemoInputError(f"{name}: the file is empty.")
    if _is_dicom(data, name):
        return _read_dicom(data, name, window_name, crop)
    return _read_raster(data, name, crop)


def read_file(path: str | Path, window_name: str = "brain", crop: bool = True) -> list[Slice]:
    """Read a file from disk; see :func:`read_slices`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise HemoInputError(f"{path.name}: cannot be opened ({error.strerror}).") from None
    return read_slices(data, path.name, window_name, crop)


def sort_series(slices: Iterable[Slice]) -> list[Slice]:
    """Order slices by position along the scan axis (ImagePositionPatient, else InstanceNumber).

    Never by file name: scanners and PACS exports name files arbitrarily.
    """
    slices = list(slices)
    return sorted(slices, key=lambda s: (s.position is None, s.position if s.position is not None else 0.0, s.frame))


def stack(slices: Sequence[Slice]) -> np.ndarray:
    """The model batch (N, SIZE, SIZE, 1) float32 of some slices."""
    return np.stack([s.pixels for s in slices])[..., np.newaxis].astype(np.float32)
