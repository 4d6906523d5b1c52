"""How a slice was made, from its header, and what that means for this model: tilt, plane, orientation, slice
thickness, reconstruction kernel, contrast. Each ``*_note`` is said once per study in the app, the CLI and the
reports; ``usual_view`` turns a slice stored turned to the view the model learnt."""

from __future__ import annotations

import math
import re

import numpy as np
import pydicom

from hemo.errors import HemoInputError
from hemo.header import functional_group, read_number, read_vector


#: A slice plane tilted more than this from axial gets the tilt note (clinical head CT is often tilted 10-20°).
TILT_NOTE_DEGREES = 5.0


def tilt(ds: pydicom.Dataset, frame: int = 0) -> float | None:
    """Degrees between the slice plane and the axial plane: the larger of GantryDetectorTilt and the angle the
    orientation implies (a tilt-corrected reconstruction keeps the first, an oblique one shows the second);
    None when the header says neither. Not a required field, so an unreadable value counts as absent."""
    angles = []
    acquisition = functional_group(ds, frame, "CTAcquisitionDetailsSequence") or ds
    try:
        gantry = read_number(acquisition.get("GantryDetectorTilt"), "GantryDetectorTilt", "")
    except HemoInputError:
        gantry = None
    iop = image_orientation(ds, frame)
    if gantry is not None:
        angles.append(abs(gantry))
    normal = None if iop is None else np.cross(iop[:3], iop[3:])
    if normal is not None and np.linalg.norm(normal) > 0:
        angles.append(math.degrees(math.acos(min(1.0, abs(normal[2]) / np.linalg.norm(normal)))))
    return max(angles) if angles else None


def image_orientation(ds: pydicom.Dataset, frame: int) -> np.ndarray | None:
    """The frame's ImageOrientationPatient (row direction, then column direction); None when absent or unreadable."""
    orientation = functional_group(ds, frame, "PlaneOrientationSequence") or ds
    try:
        return read_vector(orientation.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", "")
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
    iop = image_orientation(ds, frame)
    normal = None if iop is None else np.abs(np.cross(iop[:3], iop[3:]))
    if normal is None or not normal.any():
        return None
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


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
    value = (functional_group(ds, frame, "CTReconstructionSequence") or ds).get("ConvolutionKernel") or ""
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
    usage = functional_group(ds, frame, "ContrastBolusUsageSequence")
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
