"""A slice blended with its neighbour: the partial volume of a thicker or tilted acquisition.

A thick slice averages what lies above and below it; where the skull curves through the slice, bone and
brain share a voxel and the skull's inner table fades into the brain as a band of intermediate density,
the look of a thin extra-axial collection. The decoder learns "bright band at the inner table" from the
bleed masks, and CT-ICH slices blended with their neighbours cost it more specificity than the paper's
model (``tools/shift_check.py --thick``). Training with such blends (``--thick``) shows both what partial
volume looks like; it did not calm the alarm on the real GE series (BENCHMARKS.md).

The blend is done on approximate Hounsfield units, not on grey levels: the 8-bit slices clip bone at the
top of the window, and averaged as grey levels a voxel half bone would look like blood, while in HU the
bone dominates it.

A slice cut obliquely through the skull (a tilted gantry, the vertex) shows partial volume of another
kind on one slice alone: a shoulder of intermediate density a few pixels wide just inside the inner
table, along part of the skull. On the tilted GE series the decoder's alarm lies in that band (setting
the 4 pixels inside the skull to the brain's grey level takes most of it away: ``tools/source_probe.py``).
:func:`shoulder` draws such a band on a training slice (``--shoulder``), whatever its label, and leaves its
mask alone: a band at the inner table is then not, by itself, blood. Trained so (5 folds) the decoder
still reads the GE series' band (BENCHMARKS.md): the drawn band is not that one.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from hemo.imaging import prepare

#: Grey level at and above which a training slice shows bone (clipped at the top of its window).
BONE_LEVEL = 254.0
#: HU given to the darkest grey level (air or fat, clipped at the bottom of the window).
AIR_HU = -1000.0


def aligned_neighbour(image: bytes, neighbour: bytes, crop: bool = True) -> np.ndarray | None:
    """The neighbouring slice's picture cropped and resized exactly as the slice (by the slice's head box).

    None when either is not an 8-bit picture of the same size.
    """
    with Image.open(io.BytesIO(image)) as picture, Image.open(io.BytesIO(neighbour)) as other:
        if picture.mode not in ("L", "RGB") or other.mode not in ("L", "RGB") or picture.size != other.size:
            return None
        gray = np.asarray(picture.convert("L"), np.float32)
        beside = np.asarray(other.convert("L"), np.float32)
    return prepare(gray, crop, beside)[1]


def _to_hu(image: np.ndarray, window: tuple[float, float], bone_hu: float) -> np.ndarray:
    level, width = window
    hu = (image / 255.0 - 0.5) * width + level
    return np.where(image >= BONE_LEVEL, bone_hu, np.where(image <= 1.0, AIR_HU, hu))


def thicken(image: np.ndarray, neighbour: np.ndarray, weight: float, bone_hu: float,
            window: tuple[float, float]) -> np.ndarray:
    """``image`` with ``weight`` of ``neighbour`` averaged in (both 0..255 in ``window``), back in the window.

    ``bone_hu`` is what the clipped bone pixels stand for (their true HU is lost in the 8-bit slice).
    """
    level, width = window
    mixed = (1 - weight) * _to_hu(image, window, bone_hu) + weight * _to_hu(neighbour, window, bone_hu)
    return (np.clip((mixed - level) / width + 0.5, 0, 1) * 255.0).astype(np.float32)


def skull(image: np.ndarray, level: float = BONE_LEVEL, least: int = 3) -> tuple[np.ndarray, np.ndarray] | None:
    """The slice's bone (grey level at or above ``level``) and the region its convex hull encloses, as masks.

    Inside the hull and not bone lie the brain and anything against the inner table (at the skull base also
    sinuses and orbits). None when fewer than ``least`` pixels are bone: no skull to speak of.
    """
    bone = (image >= level).astype(np.uint8)
    points = cv2.findNonZero(bone)
    if points is None or len(points) < least:
        return None
    hull = np.zeros_like(bone)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    return bone > 0, hull > 0


def shoulder(image: np.ndarray, rng: np.random.Generator, window: tuple[float, float]) -> np.ndarray:
    """``image`` (0..255 in ``window``) with a partial-volume shoulder drawn inside part of its skull.

    The shoulder adds ``amplitude * exp(-(d - 1) / decay)`` HU at ``d`` pixels from the bone, to the soft
    tissue inside the skull's convex hull, over an arc of the skull faded in and out at its ends: amplitude
    10-40 HU, decay 1-3 pixels, the arc 60-360 degrees. A slice with too little bone to outline a skull is
    returned as it is.
    """
    found = skull(image, least=50)
    if found is None:
        return image
    bone, hull = found
    distance = cv2.distanceTransform((~bone).astype(np.uint8), cv2.DIST_L2, 3)
    inside = hull & ~bone & (image > 1.0)  # soft tissue: air stays air
    rows, columns = np.indices(image.shape)
    centre_row, centre_column = np.argwhere(bone).mean(axis=0)
    angle = np.arctan2(rows - centre_row, columns - centre_column)
    half_arc = np.deg2rad(rng.uniform(30, 180))
    away = np.abs(np.angle(np.exp(1j * (angle - rng.uniform(-np.pi, np.pi)))))  # radians from the arc's middle
    along = np.clip((half_arc - away) / (0.3 * half_arc), 0, 1)  # 1 on the arc, fading at its ends
    added_hu = rng.uniform(10, 40) * np.exp(-(np.maximum(distance, 1) - 1) / rng.uniform(1, 3))
    _, width = window
    raised = image + np.where(inside, added_hu * along, 0) * 255.0 / width
    return np.clip(raised, 0, 255).astype(np.float32)
