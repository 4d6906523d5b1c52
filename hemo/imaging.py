"""Turn any supported file into the model's input: a windowed, head-cropped 256x256 slice.

Training, evaluation, the CLI and the app all call :func:`read_slices`, so a slice is
prepared the same way wherever it comes from. DICOM reaches the model through the model's own
input window; the window the user picks changes only the picture shown beside it.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hemo import dicom
from hemo.colour import MARKS_NOTE, MARKS_SAID, grey, is_colour
from hemo.errors import HemoInputError

SIZE = 256
MIN_SIDE = 32
#: Raster images larger than this are no CT slice (4096 x 4096), checked from the header.
MAX_PIXELS = dicom.MAX_FRAME_PIXELS

#: Named CT windows as (level, width) in Hounsfield units. "file" uses the DICOM's own window.
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "bone": (600.0, 2800.0),
}
WINDOW_NAMES = (*WINDOWS, "file")

__all__ = ["HemoInputError", "Slice", "read_slices", "read_file", "sort_series", "stack", "window", "prepare"]


@dataclass(frozen=True)
class Slice:
    """One model-ready slice and the technical facts about where it came from."""

    pixels: np.ndarray  # float32, SIZE x SIZE, 0..255: what the model sees
    source: str
    frame: int = 0
    position: float | None = None
    info: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    display: np.ndarray | None = None  # uint8, the same crop in the window the user chose (DICOM); None: ``pixels``
    quality: dict = field(default_factory=dict)  # measured on the full image before cropping (hemo.sanity)
    study: str = ""  # StudyInstanceUID, else the folder; groups uploads, never shown
    series: str = ""
    digest: str = ""  # of ``pixels`` (``hemo.seen.digest``, set by ``Analyzer.read``): known again without them

    @property
    def shown(self) -> np.ndarray:
        return self.pixels if self.display is None else self.display


def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map Hounsfield units to 0..255 with a linear window (level +- width/2)."""
    low = level - width / 2.0
    return (np.clip((hu.astype(np.float32) - low) / width, 0.0, 1.0) * 255.0).astype(np.float32)


def _bright_parts(gray: np.ndarray) -> np.ndarray:
    """(x, y, width, height, area) of each bright object (above a tenth of the brightest), specks opened away."""
    mask = (gray > 0.1 * max(float(gray.max()), 1.0)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return cv2.connectedComponentsWithStats(mask, connectivity=8)[2][1:]


def _framing(parts: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Which of the bright objects touch all four edges of the picture: a head never does."""
    x, y, width, height, _ = parts.T
    return (x == 0) & (y == 0) & (x + width == shape[1]) & (y + height == shape[0])


def head_bbox(gray: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right) of the largest bright object: the head.

    The scanner table, burnt-in text and padding are separate, smaller objects and fall away. A light margin
    round the picture (a figure's white page, a viewer's grey frame) is bright and large, but it touches all
    four edges, which a head does not: it is passed over (with it, an epidural bleed scored 0.98 -> 0.62).
    """
    parts = _bright_parts(gray)
    h, w = gray.shape
    if not len(parts):
        return 0, h, 0, w
    area = np.where(_framing(parts, gray.shape) & (len(parts) > 1), -1, parts[:, cv2.CC_STAT_AREA])
    x, y, bw, bh = parts[int(np.argmax(area)), :4]
    if bw * bh < 0.02 * h * w:
        return 0, h, 0, w
    return int(y), int(y + bh), int(x), int(x + bw)


def looks_inverted(gray: np.ndarray) -> bool:
    """Whether an 8-bit picture is a negative: its air white round the head, its bone dark.

    Then little of it is black (below 20) and much white (above 235), and the white air frames it. A slice in a
    brain window is about half black; a light margin round one frames it too, but the black air lies inside.
    """
    if (gray < 20).mean() >= 0.2 or (gray > 235).mean() <= 0.3:
        return False
    return bool(_framing(_bright_parts(gray), gray.shape).any())


def square_resize(gray: np.ndarray) -> np.ndarray:
    """Pad a 2-D image square (centred) and resize it to SIZE x SIZE."""
    h, w = gray.shape
    side = max(h, w)
    square = np.zeros((side, side), np.float32)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = gray
    interpolation = cv2.INTER_AREA if side > SIZE else cv2.INTER_LINEAR
    return cv2.resize(square, (SIZE, SIZE), interpolation=interpolation)


def prepare(gray: np.ndarray, crop: bool = True, *also: np.ndarray):
    """Crop a 0..255 gray image to the head, pad it square and resize to SIZE x SIZE.

    Cropping first means the model never sees a file's original size or field of view. Arrays
    in ``also`` (a mask, another window, the HU of the same image) are cropped identically and
    returned after the slice as a tuple.
    """
    gray = gray.astype(np.float32)
    top, bottom, left, right = head_bbox(gray) if crop else (0, gray.shape[0], 0, gray.shape[1])
    prepared = square_resize(gray[top:bottom, left:right])
    if not also:
        return prepared
    return (prepared, *(square_resize(a.astype(np.float32)[top:bottom, left:right]) for a in also))


def measure(gray: np.ndarray, hu: np.ndarray | None = None) -> dict:
    """What :mod:`hemo.sanity` judges, on the full-resolution image (resizing would smooth noise away)."""
    left, right = gray[:, :-1].ravel(), gray[:, 1:].ravel()
    spread = float(left.std()) * float(right.std())
    quality = {"finite": bool(np.isfinite(gray).all()), "std": float(np.nan_to_num(gray).std()),
               "foreground": float((gray > 10).mean()),
               "neighbour_correlation": float(np.corrcoef(left, right)[0, 1]) if spread > 1e-6 else 1.0}
    if hu is not None:
        quality.update(finite=quality["finite"] and bool(np.isfinite(hu).all()), hu_min=float(np.nanmin(hu)),
                       hu_max=float(np.nanmax(hu)), air=float((hu < -500).mean()),
                       tissue=float(((hu > -100) & (hu < 100)).mean()), noise_hu=tissue_noise(hu))
    return quality


def tissue_noise(hu: np.ndarray) -> float | None:
    """Pixel noise (HU, a robust standard deviation) inside brain tissue, away from its edges; None when
    there is too little tissue to say.

    A sharp (bone) reconstruction kernel or a very thin slice shows as noise here: each pixel against the
    mean of its 3 x 3 neighbourhood, in tissue of 0-80 HU eroded by 3 pixels so that no edge counts. The
    real soft-kernel series measured here lie at 0.7-3.1 HU (``tools/kernel_probe.py``).
    """
    tissue = ((hu > 0) & (hu < 80)).astype(np.uint8)
    inner = cv2.erode(tissue, np.ones((7, 7), np.uint8)).astype(bool)
    if inner.sum() < 500 or not np.isfinite(hu).all():
        return None
    residual = (hu - cv2.blur(hu.astype(np.float32), (3, 3)))[inner]
    residual = residual[:: max(1, residual.size // 20000)]  # 20,000 pixels say it as well as all, 4x faster
    # median absolute deviation as a standard deviation, and from a pixel's residual to the pixel's own noise
    # (the 3 x 3 mean holds 1/9 of the pixel itself: residual sd = sigma * sqrt(8/9))
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))) * 3 / np.sqrt(8))


def _check_size(rows: int, cols: int, name: str) -> None:
    if min(rows, cols) < MIN_SIDE:
        raise HemoInputError(f"{name}: the image is only {cols}x{rows} pixels; a CT slice needs at least "
                             f"{MIN_SIDE}x{MIN_SIDE}.")
    if rows * cols > MAX_PIXELS:
        raise HemoInputError(f"{name}: the image is {cols}x{rows} pixels, far larger than any CT slice; "
                             "it was not opened.")


def is_dicom(data: bytes, name: str) -> bool:
    """DICOM by its magic bytes (files from CDs and PACS often have no extension), by its name, or, for a bare
    dataset without preamble as older systems wrote it (ACR-NEMA style), by its first tag: group 0002 or 0008,
    little endian."""
    return (data[128:132] == b"DICM" or name.lower().endswith((".dcm", ".dicom"))
            or (len(data) > 8 and data[:2] in (b"\x02\x00", b"\x08\x00") and data[3] == 0))


_CT_NUMBER_NOTE = ("16-bit image whose values fit in 12 bits: read as CT numbers (HU + 1024) and windowed "
                   "like DICOM. Check that the export holds raw CT values.")
EIGHT_BIT_NOTE = "8-bit image: taken as already in a brain window (the model was trained on such exports)."
INVERTED_NOTE = ("A negative picture (white air round the head, dark bone): read with its grey levels turned back, as "
                 "it is shown here; read as made, slices scored far from their own score, both ways.")


def _positive(gray: np.ndarray, notes: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """An 8-bit picture as a slice is shown (a negative turned back, and said so), and its notes."""
    return (255.0 - gray, (*notes, INVERTED_NOTE)) if looks_inverted(gray) else (gray, notes)


def _read_raster(data: bytes, name: str, crop: bool, model_window: tuple[float, float],
                 display_window: tuple[float, float]) -> list[Slice]:
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
    info = {"format": image.format or "image"}
    try:
        ImageOps.exif_transpose(image, in_place=True)  # turned as its EXIF orientation says, as viewers show it
    except (OSError, SyntaxError, TypeError, ValueError):
        pass  # an EXIF block that cannot be read: the pixels as stored, as viewers show them then
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():
            raise HemoInputError(f"{name}: the image holds values that are not numbers.")
        if image.mode != "F" and 0 <= values.min() and values.max() <= 4095 and values.max() > 255:
            hu = values - 1024.0
            gray = window(hu, *model_window)
            pixels, shown = prepare(gray, crop, window(hu, *display_window))
            return [Slice(pixels, name, info=info, warnings=(_CT_NUMBER_NOTE,), display=shown.astype(np.uint8),
                          quality=measure(gray, hu))]
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = values * (255.0 / top)
        return [Slice(prepare(gray, crop), name, info=info, quality=measure(gray))]
    notes = (EIGHT_BIT_NOTE,)
    if image.mode in ("L", "1"):
        gray = np.asarray(image.convert("L"), dtype=np.float32)
    else:
        rgb = np.asarray(image.convert("RGB"))
        if is_colour(rgb):
            raise HemoInputError(f"{name}: a colour picture, not a CT slice (CT is grey: a screenshot with a heatmap "
                                 "or other colour overlay?); upload the slice itself.")
        gray, marked = grey(rgb)
        notes += (MARKS_NOTE,) if marked > MARKS_SAID else ()
    gray, notes = _positive(gray, notes)
    return [Slice(prepare(gray, crop), name, info=info, warnings=notes, quality=measure(gray))]


def resolve_window(window_name: str, own: tuple[float, float] | None = None) -> tuple[tuple[float, float], str | None]:
    """(level, width) of a named window; "file" uses the file's own, falling back to brain with a note."""
    if window_name == "file":
        if own is None:
            return WINDOWS["brain"], "The file has no window of its own: the brain window is shown."
        return own, None
    if window_name not in WINDOWS:
        raise HemoInputError(f"unknown window '{window_name}'; choose one of {', '.join(WINDOW_NAMES)}.")
    return WINDOWS[window_name], None


def _read_dicom(data: bytes, name: str, crop: bool, model_window: tuple[float, float], window_name: str,
                folder: str) -> list[Slice]:
    slices = []
    for frame in dicom.read_frames(data, name):
        shown_window, note = resolve_window(window_name, frame.window)
        notes = frame.notes + ((note,) if note else ())
        info = {**frame.info, "window shown": f"{window_name} (L {shown_window[0]:g} / W {shown_window[1]:g})",
                "model input window": f"L {model_window[0]:g} / W {model_window[1]:g}"}
        if frame.picture:  # an 8-bit key image: already in whatever window it was saved in, read as a PNG is
            info = {**frame.info, "model input window": "as saved (8-bit picture)"}
            picture, said = _positive(frame.hu, (*frame.notes, EIGHT_BIT_NOTE))
            slices.append(Slice(prepare(picture, crop), name, frame.index, frame.position, info, said, None,
                                measure(picture), frame.study or folder, frame.series or folder))
            continue
        gray = window(frame.hu, *model_window)
        pixels, shown = prepare(gray, crop, window(frame.hu, *shown_window))
        slices.append(Slice(pixels, name, frame.index, frame.position, info, notes, shown.astype(np.uint8),
                            measure(gray, frame.hu),
                            frame.study or folder, frame.series or folder))
    return slices


def read_slices(data: bytes, name: str = "upload", window_name: str = "brain", crop: bool = True,
                model_window: tuple[float, float] | None = None, folder: str = "") -> list[Slice]:
    """Read PNG/JPEG/DICOM bytes into model-ready slices (one per DICOM frame).

    ``model_window`` (level, width) is the HU window the model was trained in (its
    ``ModelInfo.input_window``); DICOM pixels reach the model through it, and ``window_name``
    only sets the picture shown. Without it the named window feeds the model too (older
    models). ``folder`` groups non-DICOM files (and DICOM without UIDs) into one study.
    Raises :class:`HemoInputError` for anything that is not a readable CT slice.
    """
    if not data:
        raise HemoInputError(f"{name}: the file is empty.")
    if model_window is None:
        model_window = resolve_window(window_name)[0] if window_name != "file" else WINDOWS["brain"]
    if is_dicom(data, name):
        return _read_dicom(data, name, crop, tuple(model_window), window_name, folder)
    slices = _read_raster(data, name, crop, tuple(model_window), resolve_window(
        window_name if window_name != "file" else "brain")[0])
    return [replace(s, study=folder, series=folder) for s in slices]


def read_file(path: str | Path, window_name: str = "brain", crop: bool = True,
              model_window: tuple[float, float] | None = None) -> list[Slice]:
    """Read a file from disk; see :func:`read_slices`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise HemoInputError(f"{path.name}: cannot be opened ({error.strerror}).") from None
    return read_slices(data, path.name, window_name, crop, model_window, str(path.parent))


def sort_series(slices: Iterable[Slice]) -> list[Slice]:
    """Order slices by position along the scan axis (ImagePositionPatient, else InstanceNumber).

    Never by file name: scanners and PACS exports name files arbitrarily.
    """
    return sorted(slices, key=lambda s: scan_key(s.position, s.source, s.frame))


def scan_key(position: float | None, source: str, frame: int) -> tuple:
    """Sort key along the scan axis: position when known, else the natural order of file names, then frame."""
    return (position is None, position if position is not None else 0.0, natural_key(source), frame)


def natural_key(name: str) -> tuple:
    """'slice2' before 'slice10': the order of numbered exports (CT-ICH's 1.jpg, 2.jpg, ...)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def stack(slices: Sequence[Slice]) -> np.ndarray:
    """The model batch (N, SIZE, SIZE, 1) float32 of some slices."""
    return np.stack([s.pixels for s in slices])[..., np.newaxis].astype(np.float32)
