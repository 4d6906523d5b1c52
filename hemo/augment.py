"""Training augmentation: a plausible other patient position, scanner, viewer or export of the same slice.

Every slice arrives here already cropped to the head and in the model's input window (level 40,
width 120 HU for CT-ICH). ``robust=True`` adds what differs between sources: another window
level/width, gamma, noise, blur, field of view, scale and rotation, and JPEG re-compression, so
an 8-bit export from another viewer keeps its specificity. A ``neighbour`` (the next slice of the
series, same label) is blended in on some draws: the partial volume of a thicker or tilted acquisition
(``hemo.partial_volume``), and with ``shoulders`` a partial-volume band inside the skull on some
draws. Geometry applies to the bleed mask too.
"""

from __future__ import annotations

import cv2
import numpy as np

from hemo.partial_volume import shoulder, thicken

#: The input window the CT-ICH JPEGs were exported with (measured: tools/measure_window.py).
TRAIN_WINDOW = (40.0, 120.0)


def _rewindow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Back to approximate HU through the training window, then through a slightly different window."""
    level, width = TRAIN_WINDOW
    hu = (image / 255.0 - 0.5) * width + level
    new_level, new_width = level + rng.uniform(-10, 10), width * rng.uniform(0.7, 1.35)
    return np.clip((hu - new_level) / new_width + 0.5, 0, 1) * 255.0


def _geometry(size: int, rng: np.random.Generator, robust: bool) -> np.ndarray:
    angle = rng.uniform(-15, 15) if robust else rng.uniform(-10, 10)
    scale = rng.uniform(0.8, 1.12) if robust else rng.uniform(0.93, 1.07)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.05, 0.05, 2) * size
    return matrix


#: Share of draws that blend in the neighbour, when there is one.
THICK_SHARE = 0.3
#: Share of draws that get a partial-volume shoulder inside the skull (with ``shoulders``).
SHOULDER_SHARE = 0.3


def augment(image: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None,
            robust: bool = False, neighbour: np.ndarray | None = None,
            shoulders: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """One augmented copy of a 0..255 slice (and its mask, moved the same way)."""
    if neighbour is not None and neighbour.any() and rng.random() < THICK_SHARE:
        image = thicken(image, neighbour.astype(np.float32), rng.uniform(0.2, 0.5), rng.uniform(200, 1000),
                        TRAIN_WINDOW)
    if shoulders and rng.random() < SHOULDER_SHARE:
        image = shoulder(image, rng, TRAIN_WINDOW)
    if rng.random() < 0.5:
        image = image[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    size = image.shape[0]
    matrix = _geometry(size, rng, robust)

    def move(array: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(np.ascontiguousarray(array, np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    image = move(image)
    mask = None if mask is None else move(mask)
    if robust:
        if rng.random() < 0.5:
            image = _rewindow(image, rng)
        if rng.random() < 0.3:
            image = 255.0 * (image / 255.0) ** rng.uniform(0.7, 1.4)
        if rng.random() < 0.3:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.3))
        if rng.random() < 0.3:
            image = image + rng.normal(0, rng.uniform(2, 8), image.shape)
        if rng.random() < 0.3:
            encoded = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])[1]
            image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    image = (image - 127.5) * rng.uniform(0.85, 1.15) + 127.5 + rng.uniform(-12, 12)
    return np.clip(image, 0, 255).astype(np.float32), mask
