"""Zipped studies: what is read from them, what is left out, and the archives that are refused."""

import csv
import io
import zipfile

import numpy as np
import pytest

from conftest import dicom_bytes, head_phantom
from hemo.archive import expand, is_zip
from hemo.cli import main
from hemo.errors import HemoInputError
from hemo.inputs import entries, find_files


def zipped(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of these files, the same bytes on every call (fixed dates: test ids and workers agree)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buffer.getvalue()


def slice_at(z: float, study: str = "1.2.826.0.1.3680043.10.1") -> bytes:
    return dicom_bytes((head_phantom(128) + 1024).astype(np.int16), position=(0, 0, z), study=study)


def test_a_plain_file_is_itself_and_a_dicom_is_never_taken_for_a_zip():
    dicom = slice_at(0.0)
    assert expand("scan.dcm", dicom, "here") == [("scan.dcm", "here", dicom)]
    forged = b"PK\x03\x04" + dicom[4:]  # a preamble may hold anything; the DICM marker decides
    assert not is_zip(forged) and expand("scan.dcm", forged) == [("scan.dcm", "", forged)]


def test_a_zipped_export_gives_its_slices_with_their_folders_and_leaves_out_what_is_not_a_slice():
    data = zipped({"STUDY/SERIES1/IM1": b"a", "STUDY/SERIES2/IM1": b"b", "top.dcm": b"c", "DICOMDIR": b"index",
                   "__MACOSX/STUDY/._IM1": b"fork", ".DS_Store": b"junk", "STUDY/.hidden/IM9": b"x"})
    assert expand("export.zip", data, "uploads") == [
        ("export.zip/STUDY/SERIES1/IM1", "uploads/export.zip/STUDY/SERIES1", b"a"),
        ("export.zip/STUDY/SERIES2/IM1", "uploads/export.zip/STUDY/SERIES2", b"b"),
        ("export.zip/top.dcm", "uploads/export.zip", b"c"),
    ]


def test_a_folder_export_leaves_out_dicomdir_hidden_folders_and_documents(tmp_path):
    (tmp_path / "SERIES" / ".git").mkdir(parents=True)
    (tmp_path / "VIEWER").mkdir()
    for name in ("SERIES/IM1", "SERIES/.git/config", "DICOMDIR", "SERIES/2_HGE_Seg.jpg", "LICENSE", "README.TXT",
                 "VIEWER/index.html", "VIEWER/viewer.exe", "SERIES/IM2.bmp"):
        (tmp_path / name).write_bytes(b"x")
    assert find_files([str(tmp_path)]) == [tmp_path / "SERIES" / "IM1", tmp_path / "SERIES" / "IM2.bmp"]
    assert find_files([str(tmp_path / "LICENSE")]) == [tmp_path / "LICENSE"]  # named alone: read, and refused


def test_a_bleed_mask_named_alone_is_refused_as_one_not_left_out_unseen(tmp_path):
    mask = tmp_path / "14_HGE_Seg.jpg"
    mask.write_bytes(b"x")
    assert find_files([str(mask)]) == [mask]  # found in a folder it is left out (the test above)
    with pytest.raises(HemoInputError, match="a bleed annotation .* not a CT slice: give the slice beside it"):
        entries(mask)


def test_a_media_export_is_read_through_its_folder_and_its_dicomdir_named_alone_says_so(small_model_path, tmp_path):
    import pydicom
    from pydicom.fileset import FileSet

    export = FileSet()
    for z in range(2):
        ds = pydicom.dcmread(io.BytesIO(slice_at(5.0 * z)))
        ds.InstanceNumber, ds.StudyDate, ds.StudyTime, ds.StudyID, ds.SeriesNumber = z + 1, "20200101", "1200", "1", 1
        export.add(ds)
    export.write(tmp_path / "CD")  # DICOMDIR beside PT000000/ST000000/SE000000/IM00000k, as on a CD
    assert [f.name for f in find_files([str(tmp_path / "CD")])] == ["IM000000", "IM000001"]
    table = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "CD" / "DICOMDIR"), "--model", str(small_model_path), "--csv",
                 str(table)]) == 0
    [row] = csv.DictReader(open(table))
    assert row["error"] == "the index of a CD or export (its directory records), not an image; give its folder instead."


def encrypted(data: bytes) -> bytes:
    """The archive with its one member marked encrypted (bit 0 of the flags), as a password-protected zip is."""
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    data = bytearray(data)
    data[local + 6] |= 1
    data[central + 8] |= 1
    return bytes(data)


@pytest.mark.parametrize("data, words", [
    (zipped({"IM1": bytes(4 << 20)}), "unpacks to more than 1 MiB"),  # 4 MiB of zeros packed into a few kB
    (zipped({"IM1": b"x"})[:40], "damaged"),
    (encrypted(zipped({"IM1": b"secret"}, zipfile.ZIP_STORED)), "password-protected"),
    (zipped({"DICOMDIR": b"index", ".DS_Store": b"junk"}), "holds no files"),
], ids=["bomb", "truncated", "encrypted", "nothing-to-read"])
def test_archives_that_cannot_be_read_whole_are_refused_with_a_plain_message(data, words):
    with pytest.raises(HemoInputError, match=words):
        expand("Doe_Jane.zip", data, max_bytes=1 << 20)


def test_too_many_files_are_refused_before_any_is_read():
    with pytest.raises(HemoInputError, match="3 files, more than the 2"):
        expand("big.zip", zipped({f"IM{i}": b"x" for i in range(3)}), max_files=2)


def test_folders_written_with_backslashes_stay_apart():
    found = expand("export.zip", zipped({"Doe_Jane\\IM0.png": b"a", "Roe_Richard\\IM0.png": b"b",
                                         "Roe_Richard\\.DS_Store": b"junk"}))
    assert [(name, folder) for name, folder, _ in found] == [
        ("export.zip/Doe_Jane/IM0.png", "export.zip/Doe_Jane"),
        ("export.zip/Roe_Richard/IM0.png", "export.zip/Roe_Richard")]


def test_a_zip_of_zipped_studies_is_opened_within_the_same_limits():
    studies = {f"{who}.zip": zipped({f"IM{z}": slice_at(5.0 * z, study=f"1.2.3.{n}") for z in range(2)})
               for n, who in enumerate(("Doe_Jane", "Roe_Richard"))}
    found = expand("send.zip", zipped(studies), "inbox")
    assert [(name, folder) for name, folder, _ in found] == [
        (f"send.zip/{who}.zip/IM{z}", f"inbox/send.zip/{who}.zip") for who in ("Doe_Jane", "Roe_Richard")
        for z in range(2)]
    assert all(data[128:132] == b"DICM" for _, _, data in found)  # the slices themselves
    deeper = zipped({"inner.zip": zipped({"deepest.zip": zipped({"IM0": b"x"})})})
    assert [name for name, _, _ in expand("outer.zip", deeper)] == ["outer.zip/inner.zip/deepest.zip"]  # not opened
    with pytest.raises(HemoInputError, match="send.zip/bomb.zip: this zip archive unpacks to more than"):
        expand("send.zip", zipped({"bomb.zip": zipped({"IM1": bytes(4 << 20)})}), max_bytes=1 << 20)
    with pytest.raises(HemoInputError, match="send.zip: the zip archives in this one hold more than the 3 files"):
        expand("send.zip", zipped(studies), max_files=3)


def test_predict_reads_a_zipped_study_as_one_study_and_hides_its_names(small_model_path, tmp_path, capsys):
    study = zipped({f"Doe_Jane/IM{i}": slice_at(5.0 * i) for i in range(3)})
    (tmp_path / "Doe_Jane.zip").write_bytes(study)
    (tmp_path / "broken.zip").write_bytes(study[:100])
    table = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path), "--model", str(small_model_path), "--csv", str(table),
                 "--explain", str(tmp_path / "explained")]) == 0
    rows = list(csv.DictReader(open(table)))
    assert [(r["study"], r["slice"]) for r in rows] == [("1", "1"), ("1", "2"), ("1", "3"), ("", "")]
    assert "damaged" in rows[3]["error"] and "Doe" not in open(table).read()
    assert [r["explanation"] for r in rows] == ["00001_00001_f0", "00001_00002_f0", "00001_00003_f0", ""]
    said = capsys.readouterr().err
    assert "study 1: 3 slices" in said and "1 file(s) or frame(s) not analysed" in said and "--names" in said
    assert main(["predict", str(tmp_path / "Doe_Jane.zip"), "--model", str(small_model_path), "--csv", str(table),
                 "--names"]) == 0
    assert [r["file"] for r in csv.DictReader(open(table))] == [
        str(tmp_path / f"Doe_Jane.zip/Doe_Jane/IM{i}") for i in range(3)]
