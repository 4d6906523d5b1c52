"""A hostile corpus made by the tests: broken, hostile and odd-but-valid files, and their expected outcome.

Each case is (name, bytes, expected) with expected one of "error" (an error row with a plain
message), "warn" (scored, with a visible warning) or "ok" (scored). Plus lossless twins of a
plain DICOM (compressed, Enhanced CT, 16-bit PNG) that must score like it.
"""

from __future__ import annotations

import io
import os
import tempfile
import zlib

import cv2
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (DeflatedExplicitVRLittleEndian, EnhancedCTImageStorage, ExplicitVRLittleEndian,
                         JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid)

from conftest import dicom_bytes, head_phantom


def stored_head(size: int = 128, blob=(50, 70)) -> np.ndarray:
    """A head phantom as stored values (HU + 1024)."""
    return (head_phantom(size, blob) + 1024).astype(np.int16)


def dose_page() -> np.ndarray:
    """A dose report as scanners save it beside a series, in CT values: lines of text (255) on 0, no air."""
    page = np.zeros((256, 256), np.uint8)
    for row in range(30, 230, 25):
        cv2.putText(page, "CTDIvol 52.3 mGy DLP 904", (10, row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1)
    return page.astype(np.int16)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def edit(data: bytes, **tags) -> bytes:
    """The DICOM with some header values replaced."""
    ds = pydicom.dcmread(io.BytesIO(data))
    for key, value in tags.items():
        setattr(ds, key, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def raw_tag(data: bytes, keyword: str, text: str) -> bytes:
    """Rewrite one short text value (DS, IS) in the file's bytes, as a buggy scanner would write it."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    vr = pydicom.datadict.dictionary_VR(tag).encode()
    key = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little") + vr
    start = data.index(key, 132)
    length = int.from_bytes(data[start + 6 : start + 8], "little")
    value = text.encode() + (b" " if len(text) % 2 else b"")
    return data[:start + 6] + len(value).to_bytes(2, "little") + value + data[start + 8 + length:]


def compressed(data: bytes, uid) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.compress(uid)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def jpeg_lossless(data: bytes) -> bytes:
    """JPEG Lossless (process 14, SV1), the usual PACS export, written by GDCM (pydicom cannot encode it)."""
    import gdcm

    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "a.dcm"), os.path.join(folder, "b.dcm")
        with open(source, "wb") as f:
            f.write(data)
        reader = gdcm.ImageReader()
        reader.SetFileName(source)
        assert reader.Read()
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
        change.SetInput(reader.GetImage())
        assert change.Change()
        writer = gdcm.ImageWriter()
        writer.SetFileName(target)
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        assert writer.Write()
        with open(target, "rb") as f:
            return f.read()


def deflated(data: bytes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def deflate_bomb() -> bytes:
    """A deflated DICOM of a few hundred kB whose pixel data would inflate to ~1 GB."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(stored_head(64))))
    ds.Rows = ds.Columns = 8000
    ds.NumberOfFrames = 8
    del ds.PixelData
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    pixels = 8000 * 8000 * 8 * 2
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = compressor.compress(body.getvalue() + b"\xe0\x7f\x10\x00OW\x00\x00" + pixels.to_bytes(4, "little"))
    zeros = bytes(1 << 24)
    for _ in range(pixels // len(zeros)):
        stream += compressor.compress(zeros)
    stream += compressor.flush()
    prefix = DicomBytesIO()
    prefix.is_little_endian, prefix.is_implicit_VR = True, False
    prefix.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(prefix, ds.file_meta, enforce_standard=True)
    return prefix.getvalue() + stream


def enhanced_ct(frames: list[np.ndarray], positions: list[float], slope: float = 1.0,
                intercept: float = -1024.0) -> bytes:
    """An Enhanced CT whose rescale lives only in the shared functional groups (as converters write it)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = EnhancedCTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("enhanced.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Doe^Jane", "PID-SECRET-42"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns = frames[0].shape
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "HU"
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PixelValueTransformationSequence = [transform]
    shared.PlaneOrientationSequence = [orientation]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for z in positions:
        item, plane = Dataset(), Dataset()
        plane.ImagePositionPatient = [0, 0, z]
        item.PlanePositionSequence = [plane]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = np.stack(frames).astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def huge_rle() -> bytes:
    """Four 8000 x 8000 RLE frames announced by an 8 kB header: refused before decoding."""
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(stored_head(64))))
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows = ds.Columns = 8000
    ds.NumberOfFrames = 4
    ds.PixelData = encapsulate([b"\0" * 64] * 4)
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def hostile() -> list[tuple[str, bytes, str]]:
    rng = np.random.default_rng(0)
    plain = dicom_bytes(stored_head())
    cases = [
        ("random.png", rng.bytes(5000), "error"),
        ("empty.dcm", b"", "error"),
        ("notes.png", b"patient notes, not an image\n" * 20, "error"),
        ("dot.png", png(np.zeros((1, 1), np.uint8)), "error"),
        ("cut.dcm", plain[: len(plain) // 2], "error"),
        ("cut.jpg", cv2.imencode(".jpg", np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))[1]
         .tobytes()[:900], "error"),
        ("mr.dcm", dicom_bytes(stored_head(), modality="MR"), "error"),
        ("report.dcm", dicom_bytes(stored_head(), pixels=False), "error"),
        ("fake-j2k.dcm", dicom_bytes(stored_head(), transfer_syntax=JPEG2000Lossless), "error"),
        ("photo-sc.dcm", dicom_bytes(np.full((64, 64), 120, np.int16), modality="OT", slope=None), "error"),
        ("slope-abc.dcm", raw_tag(plain, "RescaleSlope", "abc"), "error"),
        ("slope-nan.dcm", raw_tag(plain, "RescaleSlope", "NaN"), "error"),
        ("intercept-inf.dcm", raw_tag(plain, "RescaleIntercept", "inf"), "error"),
        ("frames-abc.dcm", raw_tag(dicom_bytes(np.stack([stored_head()] * 2)), "NumberOfFrames", "abc"), "error"),
        ("rows-two.dcm", edit(plain, Rows=[128, 128]), "error"),
        ("rows-short.dcm", edit(plain, Rows=100), "error"),
        ("colour.dcm", edit(plain, SamplesPerPixel=3), "error"),
        ("heatmap-screenshot.png", png(cv2.applyColorMap(np.clip(head_phantom(256) / 4 + 60, 0, 255).astype(np.uint8),
                                                         cv2.COLORMAP_JET)), "error"),
        ("tiny.dcm", dicom_bytes(stored_head(16)), "error"),
        ("blank.png", png(np.zeros((256, 256), np.uint8)), "error"),
        ("grey.png", png(np.full((256, 256), 128, np.uint8)), "error"),
        ("noise.png", png(rng.integers(0, 256, (256, 256), dtype=np.uint8)), "error"),
        ("noise16.png", png(rng.integers(0, 65535, (256, 256)).astype(np.uint16)), "error"),
        ("air.dcm", dicom_bytes(np.full((128, 128), 24, np.int16)), "error"),
        ("dose-page.dcm", dicom_bytes(dose_page() + 1024), "error"),  # a scanner's dose report saved as CT
        ("noise.dcm", dicom_bytes(rng.integers(0, 2200, (128, 128)).astype(np.int16)), "error"),
        ("bomb.dcm", deflate_bomb(), "error"),
        ("huge-rle.dcm", huge_rle(), "error"),
        ("huge.png", png(np.zeros((8000, 8000, 4), np.uint8)), "error"),
        ("position-text.dcm", raw_tag(dicom_bytes(stored_head(), position=(0, 0, 5)), "ImagePositionPatient",
                                      "a\\b\\c"), "ok"),
        ("spacing-text.dcm", raw_tag(plain, "PixelSpacing", "x\\y"), "ok"),
        ("window-text.dcm", raw_tag(dicom_bytes(stored_head(), window=(40, 80)), "WindowCenter", "level"), "ok"),
        ("unrescaled.dcm", dicom_bytes(stored_head(), slope=None), "warn"),
        ("bone-only.dcm", dicom_bytes((np.full((128, 128), 900) + rng.normal(0, 30, (128, 128)) + 1024).astype(np.int16)
                                      * (head_phantom(128) > -500)), "warn"),
        ("secondary-hu.dcm", dicom_bytes((head_phantom(128, (50, 70))).astype(np.int16), modality="OT",
                                         slope=None), "warn"),
        ("monochrome1.dcm", dicom_bytes(stored_head(), photometric="MONOCHROME1"), "warn"),
    ]
    return cases


def good() -> list[tuple[str, bytes]]:
    return [("good.dcm", dicom_bytes(stored_head(128, (60, 80)))),
            ("good.png", png(np.clip(head_phantom(256, blob=(120, 140)) / 4 + 60, 0, 255).astype(np.uint8)))]


def twins() -> dict[str, bytes]:
    """Lossless re-encodings of one plain DICOM slice: each must score as the plain file."""
    stored = stored_head(128, (60, 80))
    plain = dicom_bytes(stored)
    return {
        "plain": plain,
        "rle": compressed(plain, RLELossless),
        "jpeg-ls": compressed(plain, JPEGLSLossless),
        "jpeg2000": compressed(plain, JPEG2000Lossless),
        "jpeg-lossless": jpeg_lossless(plain),
        "deflate": deflated(plain),
        "enhanced": enhanced_ct([stored], [0.0]),
        "png16": png(stored.astype(np.uint16)),
    }
