import cv2
import numpy as np

from conftest import head_phantom, trained_on
from hemo import seen
from hemo.analysis import Analyzer
from hemo.imaging import read_slices
from hemo.model import DEFAULT_MODEL


def test_a_slice_is_known_again_by_its_pixels_not_by_its_name():
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8), dtype=np.uint8)
    trained = {"slices": seen.fingerprint(images[:2])}
    assert all(len(h) == 12 for h in trained["slices"].split())  # short hashes: no name, nothing of the image
    assert seen.seen(images[::-1], trained).tolist() == [False, False, True, True]  # in any order
    touched = images.copy()
    touched[0, 0, 0] ^= 1  # one grey level of one pixel: another slice
    assert seen.seen(touched, trained).tolist() == [False, True, False, False]
    assert seen.seen(images, None).tolist() == [False] * 4  # a model that recorded nothing knows nothing again


def png(blob) -> bytes:
    return cv2.imencode(".png", np.clip(head_phantom(256, blob=blob) / 4 + 60, 0, 255).astype(np.uint8))[1].tobytes()


def test_a_slice_the_model_was_trained_on_carries_a_note_saying_so(small_model_path, tmp_path):
    taught, new = png((120, 140)), png((128, 40))
    analyzer = Analyzer.load(trained_on(small_model_path, tmp_path / "model", [read_slices(taught)[0].pixels]))
    [known], [unknown] = analyzer.read(taught, "a.png"), analyzer.read(new, "b.png")
    assert seen.NOTE in known.warnings and seen.NOTE not in unknown.warnings


def test_the_shipped_model_knows_its_ct_ich_training_slices_and_not_the_ge_series(shared_data):
    """The shipped hashes are of slices as this code reads them: a change in how a JPEG is read would make the
    app present a training slice as a new patient's, and this test fail."""
    analyzer = Analyzer.load(DEFAULT_MODEL)
    assert analyzer.info.trained_on["data"] == "ctich.npz" and len(analyzer.trained) == 1993
    for name in ("1", "10", "21"):
        [result] = analyzer.read((shared_data / "ct-ich" / "Patients_CT" / "049" / "brain" / f"{name}.jpg")
                                 .read_bytes(), f"{name}.jpg")
        assert seen.NOTE in result.warnings
    ge = sorted(p for p in (shared_data / "dicom" / "ge-head-ct").iterdir() if p.name != "LICENSE")[0]
    assert seen.NOTE not in analyzer.read(ge.read_bytes(), ge.name)[0].warnings


