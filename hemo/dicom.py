"""DICOM as scanners and PACS write it: classic and Enhanced CT, compressed pixels, odd headers.

Everything is checked from the header before any pixel is decoded (size, frames, inflated
size), frames are decoded one at a time, and every header value that is not what the standard
says becomes a :class:`HemoInputError` naming the field, never a bare ``ValueError``.
Only technical tags are read for display; identifiers never leave pydicom.
"""

from __future__ import annotations

import io
import math
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom import uid
from pydicom.errors import InvalidDicomError
from pydicom.pixels import iter_pixels

from hemo.errors import HemoInputError

#: A frame larger than this is no CT slice (4096 x 4096).
MAX_FRAME_PIXELS = 4096 * 4096
#: Frames x rows x columns of one file: about 300 slices of 512 x 512 (keeps one file under ~0.6 GB of work).
MAX_FILE_PIXELS = 80_000_000
#: A deflated file may not inflate beyond this (a "zip bomb" of a few MB otherwise costs GBs).
MAX_INFLATED_BYTES = 2 * MAX_FILE_PIXELS + 16_000_000

_ACCEPTED_MODALITIES = {"CT"}
_SECONDARY_CAPTURE = {"OT", "SC"}
_DEFLATED = "1.2.840.10008.1.2.1.99"
_TECHNICAL_TAGS = ("Modality", "PixelSpacing", "SliceThickness", "InstanceNumber")


@dataclass(frozen=True)
class Frame:
    """One frame in Hounsfield units and what the header says about it."""

    hu: np.ndarray  # float32, rows x columns
    index: int
    position: float | None  # along the slice normal, mm (InstanceNumber when there is no geometry)
    window: tuple[float, float] | None  # the file's own (level, width) for this frame
    info: dict
    notes: tuple[str, ...]
    study: str  # StudyInstanceUID (never shown; groups uploads)
    series: str
    picture: bool = False  # an 8-bit Secondary Capture: grey levels 0..255 of a picture already windowed, not HU


def _number(value, field: str, name: str) -> float | None:
    """A header value as one finite float; a readable error when it is text, NaN or a list of two."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HemoInputError(f"{name}: the header field {field} is not a number ({str(value)[:20]!r}).") from None
    if not math.isfinite(number):
        raise HemoInputError(f"{name}: the header field {field} is not a finite number ({number}).")
    return number


def _vector(value, length: int, field: str, name: str) -> np.ndarray | None:
    if value is None:
        return None
    try:
        items = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    except TypeError:
        return None
    if len(items) != length:
        return None
    return np.array([_number(v, field, name) for v in items], dtype=float)


def _integer(ds: pydicom.Dataset, field: str, name: str, default: int | None = None) -> int:
    value = ds.get(field, default)
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        raise HemoInputError(f"{name}: the header field {field} has {len(value)} values where one is expected.")
    number = _number(value, field, name)
    if number is None or number != int(number) or number < 0:
        raise HemoInputError(f"{name}: the header field {field} is missing or not a whole number.")
    return int(number)


def _group(ds: pydicom.Dataset, frame: int, sequence: str) -> pydicom.Dataset | None:
    """An Enhanced-CT functional group for one frame: per-frame first, then shared."""
    for holder, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(holder)
        if groups is not None and len(groups) > index:
            item = groups[index].get(sequence)
            if item is not None and len(item):
                return item[0]
    return None


def _rescale(ds: pydicom.Dataset, frame: int, name: str) -> tuple[float, float]:
    source = _group(ds, frame, "PixelValueTransformationSequence") or ds
    slope = _number(source.get("RescaleSlope"), "RescaleSlope", name)
    intercept = _number(source.get("RescaleIntercept"), "RescaleIntercept", name)
    return (1.0 if slope is None or slope == 0 else slope), (intercept or 0.0)


def _frame_window(ds: pydicom.Dataset, frame: int, name: str) -> tuple[float, float] | None:
    source = _group(ds, frame, "FrameVOILUTSequence") or ds
    try:
        level = _number(source.get("WindowCenter"), "WindowCenter", name)
        width = _number(source.get("WindowWidth"), "WindowWidth", name)
    except HemoInputError:
        return None  # a broken display window only loses the "file" window choice
    return (level, width) if level is not None and width else None


def _position(ds: pydicom.Dataset, frame: int, name: str) -> float | None:
    """Position along the slice normal (ImagePositionPatient . normal), else InstanceNumber."""
    plane = _group(ds, frame, "PlanePositionSequence") or ds
    orientation = _group(ds, frame, "PlaneOrientationSequence") or ds
    ipp = _vector(plane.get("ImagePositionPatient"), 3, "ImagePositionPatient", name)
    iop = _vector(orientation.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", name)
    if ipp is not None:
        if iop is not None and np.linalg.norm(np.cross(iop[:3], iop[3:])) > 0:
            return float(np.dot(np.cross(iop[:3], iop[3:]), ipp))
        return float(ipp[2])
    number = _number(ds.get("InstanceNumber"), "InstanceNumber", name) if "InstanceNumber" in ds else None
    return None if number is None else number + frame / 1000.0


#: A slice plane tilted more than this from axial gets the tilt note (clinical head CT is often tilted 10-20°).
TILT_NOTE_DEGREES = 5.0


def tilt(ds: pydicom.Dataset, frame: int = 0) -> float | None:
    """Degrees between the slice plane and the axial plane: the larger of GantryDetectorTilt and the angle the
    orientation implies (a tilt-corrected reconstruction keeps the first, an oblique one shows the second);
    None when the header says neither. Not a required field, so an unreadable value counts as absent."""
    angles = []
    acquisition = _group(ds, frame, "CTAcquisitionDetailsSequence") or ds
    orientation = _group(ds, frame, "PlaneOrientationSequence") or ds
    try:
        gantry = _number(acquisition.get("GantryDetectorTilt"), "GantryDetectorTilt", "")
        iop = _vector(orientation.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", "")
    except HemoInputError:
        return None
    if gantry is not None:
        angles.append(abs(gantry))
    normal = None if iop is None else np.cross(iop[:3], iop[3:])
    if normal is not None and np.linalg.norm(normal) > 0:
        angles.append(math.degrees(math.acos(min(1.0, abs(normal[2]) / np.linalg.norm(normal)))))
    return max(angles) if angles else None


def _orientation(ds: pydicom.Dataset, frame: int) -> np.ndarray | None:
    """The frame's ImageOrientationPatient (row direction, then column direction); None when absent or unreadable."""
    orientation = _group(ds, frame, "PlaneOrientationSequence") or ds
    try:
        return _vector(orientation.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", "")
    except HemoInputError:
        return None


#: Said when a slice had to be turned to the usual axial view.
TURNED_NOTE = ("Stored turned or mirrored from the usual axial view (ImageOrientationPatient; a prone scan or a "
               "converter's export): turned back, as a viewer shows it, before the model read it.")


def usual_view(pixels: np.ndarray, iop: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """An axial slice as viewers show it by convention (front of the head at the top, the patient's left on the
    image's right), and whether it had to be turned. The model learnt that view and reads others differently: the
    shared GE series turned called 19 slices, not 18 (mean probability 0.37-0.40, not 0.28), and the 22 raw-HU
    CT-ICH bleed slices read 0.64 as stored (transposed), 0.83 in the usual view (``tools/orientation_probe.py``)."""
    if iop is None or not np.isfinite(iop).all():
        return pixels, False
    across, down = iop[:3], iop[3:]
    turned = pixels
    if abs(across[1]) > abs(across[0]):  # columns run front to back: the slice is stored transposed
        turned, across, down = turned.T, down, across
    if across[0] < 0:  # columns run from the patient's left to right
        turned = turned[:, ::-1]
    if down[1] < 0:  # rows run from the back of the head to the front
        turned = turned[::-1]
    return (pixels, False) if turned is pixels else (np.ascontiguousarray(turned), True)


def plane(ds: pydicom.Dataset, frame: int = 0) -> str | None:
    """"axial", "coronal" or "sagittal": the plane the slice normal lies closest to; None when the header does
    not say. A head CT tilted up to 45° is still axial."""
    iop = _orientation(ds, frame)
    normal = None if iop is None else np.abs(np.cross(iop[:3], iop[3:]))
    if normal is None or not normal.any():
        return None
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def _not_a_slice(ds: pydicom.Dataset, name: str) -> None:
    """Refuse what an export holds beside the axial series: localizers (scouts) and sagittal or coronal
    reformats. The model learnt axial slices only; its score on these would mean nothing."""
    image_type = {str(v).upper() for v in (ds.get("ImageType") or [])}
    if "LOCALIZER" in image_type:
        raise HemoInputError(f"{name}: a localizer (scout) image, not an axial slice; the model reads axial "
                             "head-CT slices only.")
    seen = plane(ds)
    if seen not in (None, "axial"):
        raise HemoInputError(f"{name}: a {seen} reformat, not an axial slice; the model reads axial head-CT "
                             "slices only.")


def tilt_note(angle: float | None) -> str | None:
    """What a tilted axial series means for this model's alarms; None below TILT_NOTE_DEGREES or beyond 45°
    (a sagittal or coronal plane is not a tilted axial one)."""
    if angle is None or not TILT_NOTE_DEGREES <= angle <= 45:
        return None
    return (f"Slices tilted {angle:.1f}° from axial: they cut the skull obliquely, blurring bone into the brain at "
            "its edge, where a thin extra-axial bleed would lie. On the one tilted series tested (no label, no "
            "collection visible) every model of this kind flagged many slices; check any alarm at the edge of the "
            "skull against the image.")


#: Slices thinner than this are a thin-slice series (the CT-ICH heads the model learnt from hold 19-39 slices).
THIN_SLICE_MM = 2.5


def thin_note(thickness) -> str | None:
    """What a thin-slice series means for this model; None for thicker slices or when the header does not say."""
    if not isinstance(thickness, float) or not 0 < thickness < THIN_SLICE_MM:
        return None
    return (f"Slices {thickness:g} mm thick: the model learnt from CT-ICH heads of 19-39 slices each, and a "
            "series' study rule and its reading of each slice with its neighbours count slices; on a thin-slice "
            "series neither is tested. Where the export also holds a thicker (about 5 mm) series, read that one.")


#: Words in ConvolutionKernel that name a sharp (bone, lung, edge) reconstruction (GE: BONE, BONEPLUS, LUNG, EDGE).
_SHARP_WORDS = ("BONE", "LUNG", "EDGE", "SHARP")
#: Siemens names kernels by letter and sharpness: H31s, J40s and Hr38 for the brain, B30s for the body; H60s,
#: H70h, Hr68, B70s, Br64 and U90u for bone (its manuals: B50s and up for "higher sharpness").
_SIEMENS_KERNEL = re.compile(r"^(?:[BHJSU]|Br|Hr|Qr|Ur)(\d{2})")
SHARP_SIEMENS = 60
#: How the kernel note begins (``hemo.sanity`` then leaves out its own, measured, noise note).
KERNEL_NOTE = "Reconstructed with a sharp kernel"


def kernel(ds: pydicom.Dataset, frame: int = 0) -> str:
    """The reconstruction kernel's name ("" when not given): Enhanced CT keeps it in its CT reconstruction
    group; a multi-valued one (Siemens "Hr38s\\3") is joined with spaces."""
    value = (_group(ds, frame, "CTReconstructionSequence") or ds).get("ConvolutionKernel") or ""
    return (" ".join(map(str, value)) if isinstance(value, pydicom.multival.MultiValue) else str(value)).strip()


def kernel_note(ds: pydicom.Dataset, frame: int = 0) -> str | None:
    """What a sharp reconstruction kernel means for this model; None for a soft one or one not recognised
    (GE and Siemens names; ``hemo.sanity`` measures the noise of any other)."""
    kernel_name = kernel(ds, frame)
    siemens = _SIEMENS_KERNEL.match(kernel_name)
    if not any(word in kernel_name.upper() for word in _SHARP_WORDS) and not (
            siemens and int(siemens[1]) >= SHARP_SIEMENS):
        return None
    return (f"{KERNEL_NOTE} ({kernel_name}), made for bone or lung detail: the model learnt "
            "soft-tissue reconstructions, and on real slices made sharper it missed a third of the bleeds it "
            "found before. Read a soft-tissue series of the study if there is one.")


#: ContrastBolusAgent values that say no contrast was given (scanners write these rather than leave it empty).
_NO_AGENT = frozenset({"", "NONE", "NO", "N", "NIL", "N/A", "NA", "0", "-", "NON", "WITHOUT", "NO CONTRAST"})


def contrast(ds: pydicom.Dataset, frame: int = 0) -> str | None:
    """The contrast agent the header says was given ("contrast" where it names none); None where it says none
    was, or says nothing. Enhanced CT says it per frame (ContrastBolusUsageSequence) and names the agent in a
    coded sequence; a classic CT slice names it in ContrastBolusAgent."""
    usage = _group(ds, frame, "ContrastBolusUsageSequence")
    coded = ds.get("ContrastBolusAgentSequence") or []
    named = str(coded[0].get("CodeMeaning", "")).strip() if len(coded) else ""
    if usage is not None:
        return (named or "contrast") if str(usage.get("ContrastBolusAgentAdministered", "")).upper() == "YES" else None
    agent = str(ds.get("ContrastBolusAgent") or "").strip()
    if agent.upper() not in _NO_AGENT and not agent.upper().startswith(("NO ", "NON-", "NON ", "W/O", "WITHOUT")):
        return agent
    return named or None


def contrast_note(ds: pydicom.Dataset, frame: int = 0) -> str | None:
    """What a contrast-enhanced series means for this model; None when the header says none was given."""
    agent = contrast(ds, frame)
    if agent is None:
        return None
    return (f"Contrast given ({agent[:32]}): the model learnt heads scanned without contrast (CT-ICH), and in the "
            "window it reads, contrast in vessels, venous sinuses and dura is as bright as fresh blood; it is "
            "untested on such series. Read the study's non-contrast series if there is one.")


def _technical_info(ds: pydicom.Dataset, frame: int) -> dict:
    """Only technical tags, never identifiers: safe to display."""
    info: dict = {"format": "DICOM"}
    measures = _group(ds, frame, "PixelMeasuresSequence")
    for tag in _TECHNICAL_TAGS:
        value = (measures.get(tag) if measures is not None and tag in measures else None) or ds.get(tag)
        try:
            if isinstance(value, pydicom.multival.MultiValue):
                info[tag] = [round(float(v), 3) for v in value]
            elif isinstance(value, (int, float)):
                info[tag] = float(value)
            elif value:
                info[tag] = str(value)[:32]
        except (TypeError, ValueError):
            continue
    named = kernel(ds, frame)
    if named:
        info["ConvolutionKernel"] = named[:32]
    return info


def _inflated_size_ok(data: bytes) -> bool:
    """For the Deflated transfer syntax: inflate in bounded steps and stop past MAX_INFLATED_BYTES.

    The file meta group (always explicit VR little endian, never deflated) is read by hand: its
    length is the first element after "DICM", and the transfer syntax UID one of its elements.
    """
    if data[128:132] != b"DICM" or data[132:138] != b"\x02\x00\x00\x00UL":
        return True
    body = 144 + struct.unpack("<I", data[140:144])[0]
    key = data.find(b"\x02\x00\x10\x00UI", 144, body)
    if key < 0:
        return True
    length = struct.unpack("<H", data[key + 6 : key + 8])[0]
    if data[key + 8 : key + 8 + length].rstrip(b"\0 ").decode("ascii", "replace") != _DEFLATED:
        return True
    inflater, total, chunk = zlib.decompressobj(-zlib.MAX_WBITS), 0, data[body:]
    try:
        while chunk:
            total += len(inflater.decompress(chunk, 1 << 24))
            if total > MAX_INFLATED_BYTES:
                return False
            chunk = inflater.unconsumed_tail
    except zlib.error:
        return True  # not valid deflate: dcmread reports the damage
    return True


def _open(data: bytes, name: str) -> pydicom.Dataset:
    if not _inflated_size_ok(data):
        raise HemoInputError(f"{name}: the compressed DICOM would expand to far more than any CT series; "
                             "it was not opened.")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError, zlib.error) as error:
        raise HemoInputError(f"{name}: the DICOM file is damaged or incomplete ({type(error).__name__}).") from None
    if "TransferSyntaxUID" not in ds.file_meta:  # a bare dataset, as older systems wrote it: its own encoding says
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (uid.ImplicitVRLittleEndian if implicit else
                                          uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian)
    return ds


def _check_header(ds: pydicom.Dataset, name: str) -> tuple[int, int, int]:
    if "PixelData" not in ds and "DirectoryRecordSequence" in ds:
        raise HemoInputError(f"{name}: the index of a CD or export (its directory records), not an image; give "
                             "its folder instead.")
    if "PixelData" not in ds:
        raise HemoInputError(f"{name}: this DICOM file holds no image (no pixel data); it may be a report or a "
                             "truncated file.")
    modality = str(ds.get("Modality", "")).upper()
    if modality and modality not in _ACCEPTED_MODALITIES | _SECONDARY_CAPTURE:
        raise HemoInputError(f"{name}: this is a {modality} image; the model reads CT slices only.")
    _not_a_slice(ds, name)
    rows, cols = _integer(ds, "Rows", name, 0), _integer(ds, "Columns", name, 0)
    frames = _integer(ds, "NumberOfFrames", name, 1) or 1
    if min(rows, cols) < 32:
        raise HemoInputError(f"{name}: the image is only {cols}x{rows} pixels; a CT slice needs at least 32x32.")
    if rows * cols > MAX_FRAME_PIXELS or rows * cols * frames > MAX_FILE_PIXELS:
        raise HemoInputError(f"{name}: {frames} frame(s) of {cols}x{rows} pixels is far more than a CT series; "
                             "it was not opened.")
    if _integer(ds, "SamplesPerPixel", name, 1) != 1:
        raise HemoInputError(f"{name}: this DICOM holds a colour picture, not CT values.")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or not syntax.is_compressed:
        bits = _integer(ds, "BitsAllocated", name, 16)
        expected = rows * cols * frames * max(bits, 8) // 8
        if len(ds.PixelData) < expected or len(ds.PixelData) > expected + 2:
            raise HemoInputError(f"{name}: the pixel data ({len(ds.PixelData)} bytes) does not match the header's "
                                 f"{frames} x {cols} x {rows} pixels; the file is damaged.")
    return rows, cols, frames


def read_frames(data: bytes, name: str) -> list[Frame]:
    """All frames of a CT (or HU-valued secondary capture) DICOM, in Hounsfield units; an 8-bit secondary capture
    (a key image a viewer saved as DICOM) as the grey levels of its picture (``Frame.picture``)."""
    ds = _open(data, name)
    _, _, frames = _check_header(ds, name)
    modality = str(ds.get("Modality", "")).upper()
    inverted = str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    picture = modality in _SECONDARY_CAPTURE and _integer(ds, "BitsStored", name, 16) <= 8
    notes: list[str] = []
    if modality in _SECONDARY_CAPTURE and not picture:
        notes.append("Secondary Capture, not a CT object: read as Hounsfield units because its values look like CT.")
    elif not modality:
        notes.append("No modality in the header: read as CT.")
    if inverted and not picture:
        notes.append("MONOCHROME1: read as Hounsfield units (a viewer displays it inverted; the values are not).")
    study, series = str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", ""))
    result = []
    try:
        for index, pixels in enumerate(iter_pixels(ds)):
            slope, intercept = (1.0, 0.0) if picture else _rescale(ds, index, name)
            values = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
            if picture and inverted:  # a picture's grey levels, shown dark for high: what a viewer shows is 255 - v
                values = 255.0 - values
            hu, turned = usual_view(values, _orientation(ds, index))
            try:
                position = _position(ds, index, name)
            except HemoInputError as error:  # geometry only orders slices: say so and carry on
                position = None
                if not any("ImagePosition" in n for n in notes):
                    notes.append(f"{str(error).split(': ', 1)[-1]} The slice position is unknown; slices are "
                                 "ordered by file name.")
            info = _technical_info(ds, index)
            said = (tilt_note(tilt(ds, index)), thin_note(info.get("SliceThickness")),  # per frame, as Enhanced CT
                    kernel_note(ds, index), contrast_note(ds, index), TURNED_NOTE if turned else None)
            result.append(Frame(hu, index, position, _frame_window(ds, index, name), info,
                                (*notes, *(note for note in said if note)), study, series, picture))
    except HemoInputError:
        raise
    except (NotImplementedError, RuntimeError) as error:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        label = syntax.name if syntax is not None else "unknown"
        raise HemoInputError(f"{name}: the pixels are compressed ({label}) and could not be decoded "
                             f"({str(error)[:80]}).") from None
    except (ValueError, TypeError, AttributeError, KeyError, EOFError, IndexError) as error:
        raise HemoInputError(f"{name}: the DICOM pixel data is damaged or incomplete "
                             f"({type(error).__name__}).") from None
    if not result or len(result) != frames:
        raise HemoInputError(f"{name}: the DICOM holds {len(result)} of its {frames} frames; the file is damaged.")
    if modality in _SECONDARY_CAPTURE and not picture:
        low, high = min(float(f.hu.min()) for f in result), max(float(f.hu.max()) for f in result)
        if low > -500 or high > 5000:
            raise HemoInputError(f"{name}: a secondary-capture image whose values are not CT Hounsfield units.")
    return result
