"""Is a picture grey? A CT slice is; a screenshot with a heatmap or other colour overlay is not, and turned grey it
would be scored as if it were a slice. A grey slice saved in colour, or marked with a coloured arrow, still is."""

from __future__ import annotations

import cv2
import numpy as np

#: A pixel is coloured when its channels differ by more than this (JPEG's chroma blur on a grey slice stays under it);
#: a picture with more than ``MAX_COLOURED_SHARE`` of its pixels coloured is no CT slice, an arrow or a label on one is.
COLOURED_SPREAD, MAX_COLOURED_SHARE = 24, 0.05


def coloured_share(rgb: np.ndarray) -> float:
    """Share of the pixels of an RGB picture whose channels differ by more than ``COLOURED_SPREAD`` grey levels."""
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
    return float((spread > COLOURED_SPREAD).mean())


def is_colour(rgb: np.ndarray) -> bool:
    """Whether an RGB picture is a colour one, not a grey slice (with perhaps an arrow or a label on it)."""
    return coloured_share(rgb) > MAX_COLOURED_SHARE


#: Said of a slice whose coloured marks were painted out (``grey``).
MARKS_NOTE = ("Coloured marks on the picture (an arrow, a label, a heatmap's cells) were painted out from the grey "
              "around them before the model read it: what lay under them is unknown; give the slice without marks.")
#: Below this share of coloured pixels, nothing is said (a stray pixel or two of colour noise).
MARKS_SAID = 0.001


def grey(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The grey slice of an RGB picture that ``is_colour`` let through, and the share of its pixels that were marks.

    The channels' mean, but for the coloured pixels (and a pixel around them, where a mark blends into the slice):
    those are painted out from the grey around them. Averaged, a saturated mark would be a grey shape the model
    takes for blood: a key slice with a few cells of a heatmap scored 0.996 so.
    """
    spread = rgb.max(axis=2).astype(np.int32) - rgb.min(axis=2)
    marks = spread > COLOURED_SPREAD
    gray = rgb.mean(axis=2, dtype=np.float32)
    if not marks.any() or rgb.dtype != np.uint8:
        return gray, float(marks.mean())
    covered = cv2.dilate(marks.astype(np.uint8), np.ones((3, 3), np.uint8))
    painted = cv2.inpaint(np.rint(gray).astype(np.uint8), covered, 3, cv2.INPAINT_TELEA)
    return np.where(covered > 0, painted.astype(np.float32), gray), float(marks.mean())
