import io
import re
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from pydicom.uid import JPEG2000Lossless

from hemo.colour import MARKS_NOTE
from hemo.imaging import INVERTED_NOTE, SIZE, HemoInputError, head_bbox, read_file, read_slices, sort_series, window
import corpus
from conftest import dicom_bytes, head_phantom


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_brain_window_maps_40_hu_to_mid_gray():
    stored = np.full((64, 64), 40 + 1024, np.int16)  # stored values, intercept -1024
    [s] = read_slices(dicom_bytes(stored), "a.dcm", crop=False)
    assert s.pixels.shape == (SIZE, SIZE) and s.pixels.dtype == np.float32
    assert s.pixels.mean() == pytest.approx(127.5, abs=0.01)


def test_window_edges():
    out = window(np.array([-1000.0, 0.0, 40.0, 80.0, 3000.0]), 40, 80)
    assert out.tolist() == [0.0, 0.0, 127.5, 255.0, 255.0]


def test_rescale_slope_and_intercept_are_applied():
    stored = np.full((64, 64), 30, np.int16)  # 30 * 2 - 20 = 40 HU
    [s] = read_slices(dicom_bytes(stored, slope=2.0, intercept=-20.0), "b.dcm", crop=False)
    assert s.pixels.mean() == pytest.approx(127.5, abs=0.01)


def test_missing_rescale_defaults_to_stored_hounsfield_units():
    [s] = read_slices(dicom_bytes(np.full((64, 64), 0, np.int16), slope=None), "c.dcm", crop=False)
    assert s.pixels.mean() == pytest.approx(0.0)  # 0 HU is below the brain window (0..80 HU)


def test_monochrome1_ct_keeps_its_hounsfield_units():
    """MONOCHROME1 tells a viewer to invert the display; the rescaled values are HU either way."""
    stored = np.full((64, 64), 1024 + 60, np.int16)
    [plain] = read_slices(dicom_bytes(stored), "m2.dcm", crop=False)
    [mono1] = read_slices(dicom_bytes(stored, photometric="MONOCHROME1"), "m1.dcm", crop=False)
    assert plain.pixels.mean() == pytest.approx(191.25, abs=0.01)
    assert mono1.pixels.mean() == pytest.approx(191.25, abs=0.01)
    assert any("MONOCHROME1" in w for w in mono1.warnings)


def test_multiframe_gives_one_slice_per_frame():
    frames = np.stack([np.full((64, 64), 1024 + hu, np.int16) for hu in (0, 40, 80)])
    slices = read_slices(dicom_bytes(frames), "multi.dcm", crop=False)
    assert [round(float(s.pixels.mean()), 1) for s in slices] == [0.0, 127.5, 255.0]
    assert [s.frame for s in slices] == [0, 1, 2]


def test_named_windows_and_file_window():
    stored = np.full((64, 64), 1024 + 80, np.int16)
    subdural = read_slices(dicom_bytes(stored), "s.dcm", "subdural", crop=False)[0]
    own = read_slices(dicom_bytes(stored, window=(80, 100)), "w.dcm", "file", crop=False)[0]
    fallback = read_slices(dicom_bytes(stored), "n.dcm", "file", crop=False)[0]
    assert subdural.shown.mean() == pytest.approx(127.5, abs=0.6)  # the picture shown is 8-bit
    assert own.shown.mean() == pytest.approx(127.5, abs=0.6)
    assert fallback.shown.mean() == pytest.approx(255.0) and fallback.warnings


def test_model_sees_its_own_window_whatever_is_shown():
    """The sidebar window changes the picture, never the model's input (ModelInfo.input_window)."""
    stored = np.full((64, 64), 1024 + 70, np.int16)
    seen = {name: read_slices(dicom_bytes(stored, window=(300, 1500)), "w.dcm", name, crop=False,
                              model_window=(40, 120))[0] for name in ("brain", "bone", "file")}
    for s in seen.values():
        assert s.pixels.mean() == pytest.approx(191.25, abs=0.01)  # 70 HU in 40/120
    assert len({round(float(s.shown.mean()), 2) for s in seen.values()}) == 3


def test_series_sorted_by_position_not_file_name():
    names = ["c.dcm", "a.dcm", "b.dcm"]
    z = [30.0, 10.0, 20.0]
    slices = [s for name, zz in zip(names, z)
              for s in read_slices(dicom_bytes(np.zeros((64, 64), np.int16), position=(0, 0, zz)), name)]
    assert [s.source for s in sort_series(slices)] == ["a.dcm", "b.dcm", "c.dcm"]
    by_instance = [read_slices(dicom_bytes(np.zeros((64, 64), np.int16), instance=i), f"{9 - i}.dcm")[0]
                   for i in (3, 1, 2)]
    assert [s.position for s in sort_series(by_instance)] == [1.0, 2.0, 3.0]


def test_sixteen_bit_png_uses_full_range():
    array = np.full((64, 64), 32768, np.uint16)
    [s] = read_slices(png_bytes(array), "x16.png", crop=False)
    assert s.pixels.mean() == pytest.approx(127.5, abs=0.5)


def test_rgba_png_becomes_gray():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 100, 255
    [s] = read_slices(png_bytes(rgba), "rgba.png", crop=False)
    assert s.pixels.mean() == pytest.approx(100, abs=0.5)


def test_jpeg_rgb_is_read():
    ok, encoded = cv2.imencode(".jpg", np.full((64, 64, 3), 200, np.uint8))
    [s] = read_slices(encoded.tobytes(), "x.jpg", crop=False)
    assert s.pixels.mean() == pytest.approx(200, abs=2)


def test_a_picture_is_read_turned_as_its_exif_orientation_says():
    """A slice turned in a photo viewer is often saved as it was with an EXIF Orientation; browsers and viewers
    show it turned, and so must the model read it."""
    grey = np.round(window(head_phantom(256, blob=(60, 90)), 40, 120)).astype(np.uint8)  # the bleed top left
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shown turned 90 degrees clockwise
    buffer = io.BytesIO()
    Image.fromarray(np.rot90(grey, 1)).save(buffer, format="PNG", exif=exif)  # stored turned back
    [upright], [read] = read_slices(png_bytes(grey), "upright.png"), read_slices(buffer.getvalue(), "turned.png")
    assert np.array_equal(read.pixels, upright.pixels)


def test_head_crop_ignores_table_and_padding():
    image = np.zeros((400, 300), np.float32)
    image[100:260, 80:220] = 200  # head
    image[330:336, 20:280] = 255  # scanner table, a separate thin object
    assert head_bbox(image) == (100, 260, 80, 220)
    [s] = read_slices(png_bytes(image.astype(np.uint8)), "head.png")
    assert s.pixels[2, SIZE // 2] > 100 and s.pixels[-3, SIZE // 2] > 100  # the head fills the height


@pytest.mark.parametrize("margin", [255, 200])
def test_head_crop_passes_over_a_light_margin_round_the_picture(margin):
    """A slice copied from a paper or a web page keeps its white page round it; the margin is the largest bright
    object, and the head was read small inside it (a CT-ICH epidural bleed 0.98 -> 0.62)."""
    grey = np.round(window(head_phantom(256, blob=(120, 140)), 40, 120)).astype(np.uint8)
    framed = cv2.copyMakeBorder(grey, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=margin)
    [plain], [read] = read_slices(png_bytes(grey), "slice.png"), read_slices(png_bytes(framed), "figure.png")
    assert np.array_equal(read.pixels, plain.pixels)


@pytest.mark.parametrize("data, name, words", [
    (np.random.default_rng(0).bytes(5000), "noise.png", "not a readable"),
    (b"", "empty.dcm", "empty"),
    (b"patient notes, not an image\n" * 20, "notes.png", "not a readable"),
    (png_bytes(np.zeros((1, 1), np.uint8)), "dot.png", "only 1x1"),
])
def test_bad_files_raise_input_error(data, name, words):
    with pytest.raises(HemoInputError, match=words):
        read_slices(data, name)


def test_truncated_dicom():
    data = dicom_bytes(head_phantom(64))
    with pytest.raises(HemoInputError, match="damaged"):
        read_slices(data[: len(data) // 2], "cut.dcm")


def test_absurdly_large_png_is_refused_without_decoding():
    header = png_bytes(np.zeros((40, 40), np.uint8))
    huge = bytearray(header)
    huge[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR width, height
    huge[29:33] = zlib.crc32(bytes(huge[12:29])).to_bytes(4, "big")
    with pytest.raises(HemoInputError, match="far larger"):
        read_slices(bytes(huge), "huge.png")


def test_wrong_modality_and_missing_pixels():
    with pytest.raises(HemoInputError, match="MR image"):
        read_slices(dicom_bytes(np.zeros((64, 64), np.int16), modality="MR"), "mr.dcm")
    with pytest.raises(HemoInputError, match="no image"):
        read_slices(dicom_bytes(np.zeros((64, 64), np.int16), pixels=False), "report.dcm")


def test_compressed_without_decoder():
    data = dicom_bytes(np.zeros((64, 64), np.int16), transfer_syntax=JPEG2000Lossless)
    with pytest.raises(HemoInputError, match="compressed"):
        read_slices(data, "j2k.dcm")


def test_secondary_capture_with_hounsfield_values_is_accepted_with_warning():
    [s] = read_slices(dicom_bytes(head_phantom(64).astype(np.int16), modality="OT", slope=None), "sc.dcm")
    assert s.warnings and "Secondary Capture" in s.warnings[0]
    with pytest.raises(HemoInputError, match="not CT"):
        read_slices(dicom_bytes(np.full((64, 64), 120, np.int16), modality="OT", slope=None), "shot.dcm")


def key_image(picture: np.ndarray, photometric: str = "MONOCHROME2") -> bytes:
    """An 8-bit Secondary Capture of a picture, as a viewer saves a key image (MONOCHROME1: stored inverted)."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(picture.astype(np.int16), modality="OT", slope=None)))
    stored = 255 - picture if photometric == "MONOCHROME1" else picture
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PhotometricInterpretation, ds.PixelData = photometric, stored.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_an_8_bit_secondary_capture_is_read_as_the_picture_it_is(photometric):
    from hemo import sanity
    from hemo.imaging import EIGHT_BIT_NOTE

    picture = np.round(window(head_phantom(128, blob=(40, 70)), 40, 120)).astype(np.uint8)  # a key image, saved
    [key], [png] = read_slices(key_image(picture, photometric), "key.dcm"), read_slices(
        cv2.imencode(".png", picture)[1].tobytes(), "key.png")
    assert np.array_equal(key.pixels, png.pixels) and EIGHT_BIT_NOTE in key.warnings
    assert not any("Hounsfield" in w for w in key.warnings) and not sanity.check(key)


def test_an_rgb_secondary_capture_is_read_when_grey_and_refused_when_a_colour_picture():
    import pydicom

    grey = np.round(window(head_phantom(128, blob=(40, 70)), 40, 120)).astype(np.uint8)
    heatmap = cv2.applyColorMap(grey, cv2.COLORMAP_JET)

    def saved(rgb: np.ndarray) -> bytes:  # as a viewer saves a key image: RGB, 8 bits a sample
        ds = pydicom.dcmread(io.BytesIO(dicom_bytes(grey.astype(np.int16), modality="OT", slope=None)))
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = np.ascontiguousarray(rgb).tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer)
        return buffer.getvalue()

    [key], [png] = read_slices(saved(np.repeat(grey[..., None], 3, axis=2)), "key.dcm"), read_slices(
        cv2.imencode(".png", grey)[1].tobytes(), "key.png")
    assert np.array_equal(key.pixels, png.pixels)
    with pytest.raises(HemoInputError, match="colour picture"):
        read_slices(saved(heatmap), "screenshot.dcm")


@pytest.mark.parametrize("saved", [png_bytes, key_image])
def test_a_negative_picture_is_read_turned_back_and_said_so(saved):
    """A negative (white air, dark bone) read as made: an epidural bleed 0.985 -> 0.569, a normal slice 0.009 -> 0.676
    (once the crop passed over light margins, README)."""
    grey = np.round(window(head_phantom(256, blob=(120, 140)), 40, 120)).astype(np.uint8)
    [plain], [negative] = read_slices(png_bytes(grey), "slice.png"), read_slices(saved(255 - grey), "negative")
    assert np.array_equal(negative.pixels, plain.pixels)
    assert INVERTED_NOTE in negative.warnings and INVERTED_NOTE not in plain.warnings


@pytest.mark.parametrize("photometric", ["YBR_FULL", "YBR_FULL_422"])
def test_a_grey_secondary_capture_in_ybr_is_read_as_its_picture(photometric):
    """Viewers that save key images as JPEG-like YBR write them uncompressed too; YBR_FULL_422 stores one colour
    pair for two pixels, so its pixel data is two thirds of RGB's (before: refused as damaged)."""
    import pydicom

    grey = np.round(window(head_phantom(128, blob=(40, 70)), 40, 120)).astype(np.uint8)
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(grey.astype(np.int16), modality="OT", slope=None)))
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, photometric, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    luma = grey.reshape(-1, 2) if photometric == "YBR_FULL_422" else grey.reshape(-1, 1)
    ds.PixelData = np.concatenate([luma, np.full((len(luma), 2), 128, np.uint8)], axis=1).tobytes()  # Y.., Cb, Cr
    buffer = io.BytesIO()
    ds.save_as(buffer)
    [key], [png] = read_slices(buffer.getvalue(), "key.dcm"), read_slices(cv2.imencode(".png", grey)[1].tobytes(),
                                                                           "key.png")
    assert np.abs(key.pixels - png.pixels).max() <= 1 / 255


def test_a_colour_picture_is_refused_but_a_grey_slice_saved_in_colour_or_marked_with_an_arrow_is_read():
    grey = np.round(window(head_phantom(256, blob=(120, 140)), 40, 120)).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    marked = rgb.copy()
    marked[20:40, 20:60] = (0, 0, 255)  # a red arrow or label in a corner (OpenCV writes BGR)
    overlaid = cv2.addWeighted(rgb, 0.6, cv2.applyColorMap(grey, cv2.COLORMAP_JET), 0.4, 0)  # a heatmap screenshot
    [plain] = read_slices(cv2.imencode(".png", grey)[1].tobytes(), "grey.png")
    [as_png], [as_jpeg] = (read_slices(cv2.imencode(ext, rgb)[1].tobytes(), f"saved{ext}") for ext in (".png", ".jpg"))
    assert np.array_equal(as_png.pixels, plain.pixels) and np.abs(as_jpeg.pixels - plain.pixels).mean() < 1
    assert read_slices(cv2.imencode(".png", marked)[1].tobytes(), "marked.png")
    with pytest.raises(HemoInputError, match="colour picture"):
        read_slices(cv2.imencode(".png", overlaid)[1].tobytes(), "screenshot.png")


def test_coloured_marks_on_a_grey_slice_are_painted_out_not_averaged_into_a_grey_shape():
    """A key slice with a few cells of a heatmap (hemo's own bleed-map capture: 3 % coloured) was read as a grey
    slice with bright blobs where the cells were, and scored 0.996."""
    grey = np.round(window(head_phantom(256), 40, 120)).astype(np.uint8)
    cells = np.zeros(grey.shape, bool)
    for y, x in ((100, 60), (150, 190), (70, 160)):
        cells[y:y + 8, x:x + 8] = True  # three bleed-map cells, in jet's yellow and red, inside the head
    marked = np.repeat(grey[..., None], 3, axis=2)
    marked[cells] = (0, 220, 255)  # BGR
    [plain] = read_slices(cv2.imencode(".png", grey)[1].tobytes(), "slice.png")
    [read] = read_slices(cv2.imencode(".png", marked)[1].tobytes(), "marked.png")
    # phantom tissue is uniform, so what is painted out from its surroundings is that tissue again
    assert np.abs(read.pixels - plain.pixels).max() < 3  # grey levels of 255; averaged, a cell stood out by 88
    assert MARKS_NOTE in read.warnings and MARKS_NOTE not in plain.warnings


def test_no_identifiers_in_slice_info():
    [s] = read_slices(dicom_bytes(head_phantom(64) + 1024), "id.dcm")
    text = repr(s)
    assert "SECRET" not in text and "Doe" not in text and "19700101" not in text


def test_real_ge_series_sorted(shared_data):
    """The order must match the geometry computed here independently, whatever order the files come in."""
    import pydicom

    folder = shared_data / "dicom" / "ge-head-ct"
    files = sorted(folder.glob("*.dcm"), reverse=True)
    slices = sort_series(s for f in files for s in read_file(f))
    assert len(slices) == 28

    def along_normal(path):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.array(ds.ImageOrientationPatient, float)
        return float(np.dot(np.cross(iop[:3], iop[3:]), np.array(ds.ImagePositionPatient, float)))

    expected = [f.name for f in sorted(files, key=along_normal)]
    assert [s.source for s in slices] == expected
    assert expected != [f.name for f in files]  # the input order really was different
    assert all(s.info["Modality"] == "CT" for s in slices)
    assert 20 < float(np.mean([s.pixels.mean() for s in slices])) < 200
    assert all(any(w.startswith("Slices tilted 18.5° from axial") for w in s.warnings) for s in slices)


@pytest.mark.parametrize("tags, said", [
    ({}, None),  # axial
    ({"ImageOrientationPatient": [1, 0, 0, 0, 0.9483, -0.3173]}, "18.5"),  # an oblique plane, as the GE series
    ({"GantryDetectorTilt": -12}, "12.0"),  # a tilt-corrected reconstruction: axial plane, tilt in the header
    ({"GantryDetectorTilt": 3}, None),  # too little to matter
    ({"GantryDetectorTilt": "12"}, "n/a"),  # written as text by a buggy scanner: not required, no error
    ({"GantryDetectorTilt": "12", "ImageOrientationPatient": [1, 0, 0, 0, 0.9483, -0.3173]}, "n/a 18.5"),  # the
    # unreadable tilt counts as absent; the orientation still says how tilted the plane is
])
def test_a_tilted_series_says_so_on_every_slice(tags, said):
    data = corpus.edit(dicom_bytes(head_phantom(64) + 1024, position=(0, 0, 5)), **tags)
    if said and said.startswith("n/a"):
        data, said = corpus.raw_tag(data, "GantryDetectorTilt", "n/a"), said[4:] or None
    [s] = read_slices(data, "tilted.dcm")
    notes = [w for w in s.warnings if w.startswith("Slices tilted")]
    assert notes == ([] if said is None else [notes[0]]) and (said is None or f"tilted {said}°" in notes[0])


@pytest.mark.parametrize("tags, refused", [
    ({"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, "a localizer (scout) image"),
    ({"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}, "a sagittal reformat"),
    ({"ImageOrientationPatient": [1, 0, 0, 0, 0, -1]}, "a coronal reformat"),
    ({"ImageOrientationPatient": [1, 0, 0, 0, 0.7660, -0.6428]}, None),  # axial, tilted 40°: read, with its note
    ({"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"]}, None),
])
def test_what_an_export_holds_beside_the_axial_series_is_refused_by_name(tags, refused):
    data = corpus.edit(dicom_bytes(head_phantom(64) + 1024, position=(0, 0, 5)), **tags)
    if refused is None:
        assert len(read_slices(data, "Doe_Jane.dcm")) == 1
        return
    with pytest.raises(HemoInputError, match=re.escape(f"Doe_Jane.dcm: {refused}, not an axial slice")):
        read_slices(data, "Doe_Jane.dcm")


@pytest.mark.parametrize("thickness, said",
                         [(0.625, "0.625"), (1.25, "1.25"), (5.0, None), (None, None), ("n/a", None)])
def test_a_thin_slice_series_says_its_study_rule_is_untested_there(thickness, said):
    data = dicom_bytes(head_phantom(64) + 1024, position=(0, 0, 5))
    if thickness == "n/a":
        data = corpus.raw_tag(corpus.edit(data, SliceThickness=1.0), "SliceThickness", "n/a")  # a buggy scanner
    elif thickness is not None:
        data = corpus.edit(data, SliceThickness=thickness)
    [s] = read_slices(data, "thin.dcm")
    notes = [w for w in s.warnings if w.startswith("Slices") and "mm thick" in w]
    assert len(notes) == (said is not None) and (said is None or notes[0].startswith(f"Slices {said} mm thick"))


def test_each_frame_of_an_enhanced_ct_says_its_own_tilt():
    from pydicom import dcmread
    from pydicom.dataset import Dataset

    ds = dcmread(io.BytesIO(corpus.enhanced_ct([head_phantom(64) + 1024] * 2, [0.0, 5.0])))
    oblique = Dataset()
    oblique.ImageOrientationPatient = [1, 0, 0, 0, 0.9483, -0.3173]  # 18.5°, in frame 1's own group only
    ds.PerFrameFunctionalGroupsSequence[1].PlaneOrientationSequence = [oblique]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    frames = read_slices(buffer.getvalue(), "enhanced.dcm")
    said = [[w for w in s.warnings if w.startswith("Slices tilted")] for s in sorted(frames, key=lambda s: s.frame)]
    assert said[0] == [] and len(said[1]) == 1 and "18.5°" in said[1][0]


def test_real_secondary_capture_hu_slices(shared_data):
    image = sorted((shared_data / "dicom" / "ct-ich-hu" / "images").glob("*.dcm"))[0]
    [s] = read_file(image)
    assert s.warnings and s.pixels.max() > 200


def test_the_window_measurement_recovers_the_window_an_8_bit_export_was_made_with():
    """tools/measure_window.py (the model's input window in BENCHMARKS.md): an HU slice exported in a viewer's
    orientation at 30/90, shifted by two pixels, is registered back and its window read off the grey levels."""
    from conftest import load_tool

    y, x = np.mgrid[:256, :256]
    hu = head_phantom(256, (110, 150))
    brain = hu == 35.0
    hu[brain] = 35 + 45 * np.sin(x[brain] / 17.0) * np.cos(y[brain] / 23.0)  # grey levels across the window
    exported = np.roll(np.flip(hu.T, 0), 2, axis=1)  # the JPEG's orientation, a little off
    jpeg = np.round(window(exported, 30, 90)).astype(np.float32)
    correlation, level, width = load_tool("measure_window").fit(hu.astype(np.float32), jpeg)
    assert correlation > 0.99
    assert level == pytest.approx(30, abs=1.5) and width == pytest.approx(90, abs=3)


@pytest.mark.parametrize("kernel, sharp", [
    ("STANDARD", False), ("STD+", False), ("SOFT", False), ("BONE", True), ("BONEPLUS", True), ("LUNG", True),
    ("H31s", False), ("J40s", False), ("H70h", True), (["Hr64", "3"], True), (["Hr38", "3"], False), ("", False),
    ("B30s", False), ("B70s", True), ("U90u", True), ("FC21", False),
])
def test_a_sharp_reconstruction_kernel_is_said(kernel, sharp):
    data = corpus.edit(dicom_bytes((head_phantom(128) + 1024).astype(np.int16)), ConvolutionKernel=kernel)
    [piece] = read_slices(data, "k.dcm")
    assert any("sharp kernel" in w for w in piece.warnings) == sharp
    shown = " ".join(kernel) if isinstance(kernel, list) else kernel  # the technical line names it, multi-valued too
    assert piece.info.get("ConvolutionKernel") == (shown or None)


@pytest.mark.parametrize("agent, given", [
    ("OMNIPAQUE 350", True), ("IV", True), ("Iomeron", True), ("NONE", False), ("No", False), ("", False),
    ("NO CONTRAST", False), ("Non-contrast", False), ("W/O CONTRAST", False), (None, False),
])
def test_a_contrast_enhanced_series_is_said(agent, given):
    data = dicom_bytes((head_phantom(128) + 1024).astype(np.int16))
    [piece] = read_slices(data if agent is None else corpus.edit(data, ContrastBolusAgent=agent), "c.dcm")
    assert any(w.startswith(f"Contrast given ({agent})") for w in piece.warnings) == given
    assert sum("ontrast" in w for w in piece.warnings) == given


def test_an_enhanced_ct_says_contrast_frame_by_frame():
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(io.BytesIO(corpus.enhanced_ct([corpus.stored_head(128)] * 2, [0.0, 5.0])))
    agent = Dataset()
    agent.CodeValue, agent.CodingSchemeDesignator, agent.CodeMeaning = "C-B0322", "SRT", "Iohexol"
    ds.ContrastBolusAgentSequence = [agent]
    for frame, administered in zip(ds.PerFrameFunctionalGroupsSequence, ("NO", "YES")):  # before, then after
        usage = Dataset()
        usage.ContrastBolusAgentNumber, usage.ContrastBolusAgentAdministered = 1, administered
        frame.ContrastBolusUsageSequence = [usage]
    buffer = io.BytesIO()
    ds.save_as(buffer)
    before, after = read_slices(buffer.getvalue(), "enhanced.dcm")
    assert not any("ontrast" in w for w in before.warnings)
    assert any(w.startswith("Contrast given (Iohexol)") for w in after.warnings)


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit-vr", "explicit-vr"])
def test_a_bare_dicom_dataset_without_preamble_or_extension_is_read(implicit):
    import pydicom

    data = dicom_bytes((head_phantom(128) + 1024).astype(np.int16), position=(0, 0, 0))
    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.file_meta
    ds.preamble = None
    buffer = io.BytesIO()  # as older systems wrote it (ACR-NEMA style): the dataset alone, its encoding unsaid
    pydicom.dcmwrite(buffer, ds, implicit_vr=implicit, little_endian=True, enforce_file_format=False)
    [bare], [reference] = read_slices(buffer.getvalue(), "IM0001"), read_slices(data, "IM0001.dcm")
    assert np.array_equal(bare.pixels, reference.pixels) and bare.study == reference.study


@pytest.mark.parametrize("stored, orientation", [
    (lambda a: a[::-1, ::-1], [-1, 0, 0, 0, -1, 0]),  # prone: turned half a circle
    (lambda a: a[:, ::-1], [-1, 0, 0, 0, 1, 0]),  # mirrored left to right
    (lambda a: a.T, [0, 1, 0, 1, 0, 0]),  # transposed, as a converter may write it
    (lambda a: a.T[::-1], [0, 1, 0, -1, 0, 0]),  # turned a quarter
], ids=["prone", "mirrored", "transposed", "quarter-turn"])
def test_a_slice_stored_turned_is_read_in_the_usual_axial_view_and_said(stored, orientation):
    from hemo.acquisition import TURNED_NOTE

    hu = head_phantom(128, blob=(40, 90))  # a bleed off-centre: front left of the image
    hu[20:30, 60:70] = 1000.0  # and off-axis, so that no turn maps the head onto itself
    usual = dicom_bytes((hu + 1024).astype(np.int16), position=(0, 0, 0))
    turned = corpus.edit(dicom_bytes(np.ascontiguousarray(stored(hu + 1024)).astype(np.int16), position=(0, 0, 0)),
                         ImageOrientationPatient=orientation)
    [reference], [piece] = read_slices(usual, "u.dcm"), read_slices(turned, "t.dcm")
    assert np.array_equal(piece.pixels, reference.pixels) and np.array_equal(piece.shown, reference.shown)
    assert TURNED_NOTE in piece.warnings and TURNED_NOTE not in reference.warnings


def test_noise_in_brain_tissue_is_measured_and_a_noisy_slice_is_said():
    from hemo import sanity

    hu = head_phantom(256)
    noise = np.random.default_rng(0).normal(0, 20, hu.shape) * (hu > -500)
    clean, noisy = (read_slices(dicom_bytes(np.round(hu + 1024 + extra).astype(np.int16)), "n.dcm")[0]
                    for extra in (0.0, noise))
    assert clean.quality["noise_hu"] == pytest.approx(0.0, abs=0.5)
    assert noisy.quality["noise_hu"] == pytest.approx(20.0, rel=0.15)  # what was added, read back
    assert sanity.NOISY_NOTE not in sanity.check(clean) and sanity.NOISY_NOTE in sanity.check(noisy)
    bone = corpus.edit(dicom_bytes(np.round(hu + 1024 + noise).astype(np.int16)), ConvolutionKernel="BONE")
    [named] = read_slices(bone, "b.dcm")
    assert sanity.NOISY_NOTE not in sanity.check(named)  # the kernel's own note says it, once


@pytest.mark.parametrize("level, width, grey", [(40, 120, False), (80, 200, False), (50, 350, False),
                                               (600, 2800, True), (400, 2000, True)])
def test_an_8_bit_export_whose_skull_is_not_white_is_said_to_be_in_another_window(level, width, grey):
    from hemo import sanity

    png = cv2.imencode(".png", np.round(window(head_phantom(256, blob=(120, 140)), level, width)).astype(np.uint8))[1]
    [piece] = read_slices(png.tobytes(), "exported.png")
    assert (sanity.GREY_SKULL_NOTE in sanity.check(piece)) == grey


def test_real_brain_window_exports_keep_a_white_skull(shared_data):
    from hemo import sanity

    jpegs = sorted((shared_data / "ct-ich" / "Patients_CT").glob("0[4-5]*/brain/*.jpg"))
    pieces = [read_file(p)[0] for p in jpegs if not p.stem.endswith("_HGE_Seg")]
    assert len(pieces) > 50 and not any(sanity.GREY_SKULL_NOTE in sanity.check(p) for p in pieces)


def test_real_soft_kernel_slices_are_not_called_noisy(shared_data):
    from hemo import sanity

    files = [*sorted((shared_data / "dicom" / "ge-head-ct").glob("*.dcm")),
             *sorted((shared_data / "dicom" / "ct-ich-hu" / "images").glob("*.dcm"))]
    pieces = [piece for path in files for piece in read_file(path)]
    assert len(pieces) == 50
    assert not any(sanity.NOISY_NOTE in sanity.check(p) or any("sharp kernel" in w for w in p.warnings) for p in pieces)


def test_an_enhanced_ct_names_its_kernel_in_its_functional_groups():
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(io.BytesIO(corpus.enhanced_ct([corpus.stored_head(128)] * 2, [0.0, 5.0])))
    reconstruction = Dataset()
    reconstruction.ConvolutionKernel = "BONEPLUS"
    ds.SharedFunctionalGroupsSequence[0].CTReconstructionSequence = [reconstruction]
    buffer = io.BytesIO()
    ds.save_as(buffer)
    pieces = read_slices(buffer.getvalue(), "enhanced.dcm")
    assert len(pieces) == 2 and all(any("sharp kernel (BONEPLUS)" in w for w in p.warnings) for p in pieces)
    assert all(p.info["ConvolutionKernel"] == "BONEPLUS" for p in pieces)
