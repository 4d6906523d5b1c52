"""DICOM as scanners and PACS write it: classic and Enhanced CT, compressed pixels, odd headers.

Everything is checked from the header before any pixel is decoded (size, frames, inflated
size), frames are decoded one at a time, and every header value that is not what the standard
says becomes a :class:`HemoInputError` naming the field, never a bare ``ValueError``.
Only technical tags are read for display; identifiers never leave pydicom.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom import uid
from pydicom.errors import InvalidDicomError
from pydicom.pixels import iter_pixels

from hemo.acquisition import (TURNED_NOTE, contrast_note, image_orientation, kernel, kernel_note, plane,
                              thin_note, tilt, tilt_note, usual_view)
from hemo.colour import MARKS_NOTE, MARKS_SAID, grey, is_colour
from hemo.errors import HemoInputError
from hemo.header import functional_group, read_integer, read_number, read_vector

#: A frame larger than this is no CT slice (4096 x 4096).
MAX_FRAME_PIXELS = 4096 * 4096
#: Frames x rows x columns of one file: about 300 slices of 512 x 512 (keeps one file under ~0.6 GB of work).
MAX_FILE_PIXELS = 80_000_000
#: A deflated file may not inflate beyond this (a "zip bomb" of a few MB otherwise costs GBs).
MAX_INFLATED_BYTES = 2 * MAX_FILE_PIXELS + 16_000_000

#: The Manufacturer hemo writes into its own results (``hemo.dicom_export``): read back, they are refused, since a key
#: slice with its map drawn in colour, turned grey, would be scored as a slice (one with a few coloured cells, 0.996).
HEMO_MANUFACTURER = "hemo (research demo, not a medical device)"

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


def _rescale(ds: pydicom.Dataset, frame: int, name: str) -> tuple[float, float]:
    source = functional_group(ds, frame, "PixelValueTransformationSequence") or ds
    slope = read_number(source.get("RescaleSlope"), "RescaleSlope", name)
    intercept = read_number(source.get("RescaleIntercept"), "RescaleIntercept", name)
    return (1.0 if slope is None or slope == 0 else slope), (intercept or 0.0)


def _frame_window(ds: pydicom.Dataset, frame: int, name: str) -> tuple[float, float] | None:
    source = functional_group(ds, frame, "FrameVOILUTSequence") or ds
    try:
        level = read_number(source.get("WindowCenter"), "WindowCenter", name)
        width = read_number(source.get("WindowWidth"), "WindowWidth", name)
    except HemoInputError:
        return None  # a broken display window only loses the "file" window choice
    return (level, width) if level is not None and width else None


def _position(ds: pydicom.Dataset, frame: int, name: str) -> float | None:
    """Position along the slice normal (ImagePositionPatient . normal), else InstanceNumber."""
    plane = functional_group(ds, frame, "PlanePositionSequence") or ds
    orientation = functional_group(ds, frame, "PlaneOrientationSequence") or ds
    ipp = read_vector(plane.get("ImagePositionPatient"), 3, "ImagePositionPatient", name)
    iop = read_vector(orientation.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", name)
    if ipp is not None:
        if iop is not None and np.linalg.norm(np.cross(iop[:3], iop[3:])) > 0:
            return float(np.dot(np.cross(iop[:3], iop[3:]), ipp))
        return float(ipp[2])
    number = read_number(ds.get("InstanceNumber"), "InstanceNumber", name) if "InstanceNumber" in ds else None
    return None if number is None else number + frame / 1000.0


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


def _technical_info(ds: pydicom.Dataset, frame: int) -> dict:
    """Only technical tags, never identifiers: safe to display."""
    info: dict = {"format": "DICOM"}
    measures = functional_group(ds, frame, "PixelMeasuresSequence")
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
    if ds.get("Manufacturer") == HEMO_MANUFACTURER:
        raise HemoInputError(f"{name}: one of hemo's own results (a key slice with its map, or its report), not a CT "
                             "slice; give the series it was made from.")
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
    rows, cols = read_integer(ds, "Rows", name, 0), read_integer(ds, "Columns", name, 0)
    frames = read_integer(ds, "NumberOfFrames", name, 1) or 1
    if min(rows, cols) < 32:
        raise HemoInputError(f"{name}: the image is only {cols}x{rows} pixels; a CT slice needs at least 32x32.")
    if rows * cols > MAX_FRAME_PIXELS or rows * cols * frames > MAX_FILE_PIXELS:
        raise HemoInputError(f"{name}: {frames} frame(s) of {cols}x{rows} pixels is far more than a CT series; "
                             "it was not opened.")
    samples = read_integer(ds, "SamplesPerPixel", name, 1)
    if samples != 1 and not (samples == 3 and modality in _SECONDARY_CAPTURE):  # a viewer's key image may be RGB
        raise HemoInputError(f"{name}: this DICOM holds a colour picture, not CT values.")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or not syntax.is_compressed:
        bits = read_integer(ds, "BitsAllocated", name, 16)
        # YBR_FULL_422 keeps one colour pair for every two pixels: 2 values a pixel, not 3 (PS3.3 C.7.6.3.1.2)
        values = 2 if str(ds.get("PhotometricInterpretation", "")).upper() == "YBR_FULL_422" else samples
        expected = rows * cols * frames * values * max(bits, 8) // 8
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
    picture = modality in _SECONDARY_CAPTURE and read_integer(ds, "BitsStored", name, 16) <= 8
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
            marked = 0.0
            if pixels.ndim == 3:  # an RGB Secondary Capture: a grey slice saved in colour, or a colour picture
                if is_colour(pixels):
                    raise HemoInputError(f"{name}: this DICOM holds a colour picture (a screenshot with a colour "
                                         "overlay?), not a CT slice; send the slice itself.")
                pixels, marked = grey(pixels)
            slope, intercept = (1.0, 0.0) if picture else _rescale(ds, index, name)
            values = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
            if picture and inverted:  # a picture's grey levels, shown dark for high: what a viewer shows is 255 - v
                values = 255.0 - values
            hu, turned = usual_view(values, image_orientation(ds, index))
            try:
                position = _position(ds, index, name)
            except HemoInputError as error:  # geometry only orders slices: say so and carry on
                position = None
                if not any("ImagePosition" in n for n in notes):
                    notes.append(f"{str(error).split(': ', 1)[-1]} The slice position is unknown; slices are "
                                 "ordered by file name.")
            info = _technical_info(ds, index)
            said = (tilt_note(tilt(ds, index)), thin_note(info.get("SliceThickness")),  # per frame, as Enhanced CT
                    kernel_note(ds, index), contrast_note(ds, index), TURNED_NOTE if turned else None,
                    MARKS_NOTE if marked > MARKS_SAID else None)
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
