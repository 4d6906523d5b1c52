"""Is a picture grey? A CT slice is; a screenshot with a heatmap or other colour overlay is not, and turned grey it
would be scored as if it were a slice. A grey slice saved in colour, or marked with a coloured arrow, still is."""

from __future__ import annotations

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
