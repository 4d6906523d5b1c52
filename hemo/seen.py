"""Knowing a model's training slices again, so that no number or verdict on them passes for a new patient's.

A model records a short hash of each slice it was trained on, as hemo prepared it (``ModelInfo.trained_on``):
no name, nothing of the image. ``evaluate`` then says how many of its slices trained the model, and the app, the
CLI and the reports add :data:`NOTE` to each such slice; a teacher showing CT-ICH slices to a class is told
that the shipped model learnt from them. Only an unchanged copy is known again: a slice saved anew (re-encoded,
cropped, in another window, or the same scan as raw-HU DICOM) is another slice to it.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

NOTE = ("Seen in training: the model was trained on this very image, so its verdict on it is not how it reads a new "
        "patient's scan (the model card has the cross-validated numbers).")


def digest(pixels: np.ndarray) -> str:
    """A slice's hash: of its 8-bit model input (``Slice.pixels`` rounded, as ``hemo cache`` stores it)."""
    return hashlib.sha256(np.round(pixels).astype(np.uint8).tobytes()).hexdigest()[:12]


def fingerprint(images: Iterable[np.ndarray]) -> str:
    """The hashes of ``images``, sorted and space-separated: what ``ModelInfo.trained_on["slices"]`` holds."""
    return " ".join(sorted({digest(image) for image in images}))


def known(trained_on: dict | None) -> frozenset[str]:
    """The slice hashes a model recorded (none for a model trained before it recorded them)."""
    return frozenset((trained_on or {}).get("slices", "").split())


def seen(images: Iterable[np.ndarray], trained_on: dict | None) -> np.ndarray:
    """Per image, whether the model was trained on it."""
    hashes = known(trained_on)
    return np.array([bool(hashes) and digest(image) in hashes for image in images], dtype=bool)
