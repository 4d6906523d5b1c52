"""Grad-CAM against the radiologists' annotation, for teaching: overlap and faithfulness.

Overlap says whether the map sits on the annotated bleed (share of the map's energy inside the
mask, and whether its peak is inside). Faithfulness asks whether the model *uses* what the map
shows, in the spirit of pytorch-grad-cam's ROAD metrics: hide the most salient part of the slice
and measure how much the score drops, against hiding random parts of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass

import io

import cv2
import numpy as np
from PIL import Image

from hemo.imaging import prepare

#: Share of the slice hidden by the faithfulness check (the most salient, or random, pixels).
HIDDEN_FRACTION = 0.05


@dataclass(frozen=True)
class Overlap:
    energy_inside: float  # share of the Grad-CAM sum that lies inside the annotated bleed
    mask_fraction: float  # share of the slice that is annotated (the value a map uniform over the slice would get)
    peak_inside: bool  # the single hottest pixel lies inside the annotation


def overlap(cam: np.ndarray, mask: np.ndarray) -> Overlap:
    """Overlap of a Grad-CAM map with a binary annotation of the same (cropped) slice."""
    inside = mask > 0
    total = float(cam.sum())
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return Overlap(float(cam[inside].sum()) / total if total > 0 else 0.0, float(inside.mean()), bool(inside[peak]))


def aligned_mask(image: bytes, annotation: bytes, crop: bool = True) -> np.ndarray | None:
    """The annotation (a bleed-bright picture of the same slice) cropped and resized exactly as the slice.

    None when the slice is not an 8-bit picture whose preparation can be repeated here.
    """
    with Image.open(io.BytesIO(image)) as picture, Image.open(io.BytesIO(annotation)) as drawn:
        if picture.mode not in ("L", "RGB", "RGBA", "P"):
            return None
        gray = np.asarray(picture.convert("L"), np.float32)
        bleed = np.asarray(drawn.convert("L").resize(picture.size), np.float32)
    return prepare(gray, crop, (bleed > 127).astype(np.float32) * 255)[1] > 127


def outline(picture: np.ndarray, mask: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """The RGB picture with the annotation's outline drawn over it."""
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    drawn = np.ascontiguousarray(picture).copy()
    cv2.drawContours(drawn, contours, -1, colour, 1)
    return drawn


def _hide(image: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Replace hidden pixels of one (256, 256, 1) slice by a heavy blur of it (ROAD's idea: no sharp hole)."""
    plain = np.ascontiguousarray(image[..., 0], np.float32)
    return np.where(hidden, cv2.GaussianBlur(plain, (0, 0), 8), plain)[..., np.newaxis].astype(np.float32)


def faithfulness(predict, slices: np.ndarray, cams: np.ndarray, seed: int = 0,
                 fraction: float = HIDDEN_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Score drop when the most salient ``fraction`` of each slice is hidden, and when a random region is.

    The random region is the salient region moved by a random offset (same size and shape, another
    place), so both hide a blob, not scattered pixels. ``predict`` maps a batch (N, 256, 256, 1) to
    scores. A faithful map's drop exceeds the random drop.
    """
    rng = np.random.default_rng(seed)
    base = predict(slices)
    count = int(fraction * cams[0].size)
    salient, random = np.zeros(cams.shape, bool), np.zeros(cams.shape, bool)
    for i, cam in enumerate(cams):
        salient[i].flat[np.argsort(cam.ravel())[-count:]] = True
        shift = rng.integers(48, 112, 2) * rng.choice([-1, 1], 2)
        random[i] = np.roll(salient[i], tuple(shift), axis=(0, 1))
    hide_salient = np.stack([_hide(s, m) for s, m in zip(slices, salient)])
    hide_random = np.stack([_hide(s, m) for s, m in zip(slices, random)])
    return base - predict(hide_salient), base - predict(hide_random)
