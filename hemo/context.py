"""A slice read with its neighbours: the mean logit of the slices within ``width`` of it along the scan.

Why: a haemorrhage spans several neighbouring slices, while much of one slice's score is noise (the
held-out AUC of one training run moves by up to 0.07 between epochs). Averaging the logits of the
slices above and below keeps what neighbours agree on. It has one number to choose, the width,
chosen by ``hemo calibrate`` on out-of-fold predictions and stored in ``ModelInfo.context`` with
its own calibration and operating point. It applies only to an ordered series of one study; a lone
slice keeps the paper model's own score.
"""

from __future__ import annotations

import numpy as np

from hemo.model import logit

#: Half-widths tried (0: the slice alone). CT-ICH slices are 5 mm, a bleed spans a median of 9 of 30.
WIDTHS = (0, 1, 2, 3, 4)


def neighbour_mean(scores, width: int) -> np.ndarray:
    """sigmoid(mean logit over the slices within ``width``) of one series in scan order; the ends repeat."""
    values = logit(scores)
    if width <= 0 or len(values) == 0:
        return np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    padded = np.pad(values, width, mode="edge")
    window = np.lib.stride_tricks.sliding_window_view(padded, 2 * width + 1)
    return 1.0 / (1.0 + np.exp(-window.mean(axis=1)))


def in_series(scores: np.ndarray, series: list[np.ndarray], width: int) -> np.ndarray:
    """:func:`neighbour_mean` of every series (index arrays in scan order) of a flat score array."""
    scores = np.asarray(scores, dtype=np.float64)
    out = scores.copy()
    for index in series:
        out[index] = neighbour_mean(scores[index], width)
    return out
