"""From uploaded files to verdicts with their evidence: the one entry point the CLI and the app share.

A bad file becomes a result with an ``error`` message instead of an exception, so one broken
upload never stops the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from hemo.explain import Explainer, overlay
from hemo.imaging import HemoInputError, Slice, read_slices, stack
from hemo.model import DEFAULT_MODEL, ModelInfo, load

POSITIVE, NEGATIVE = "indicative of haemorrhage", "likely normal"


@dataclass
class SliceResult:
    """One slice's verdict and evidence, or the reason it could not be read."""

    source: str
    frame: int = 0
    error: str | None = None
    slice: Slice | None = None
    probability: float = float("nan")
    threshold: float = 0.5
    cam: np.ndarray | None = None
    attention: np.ndarray | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> str:
        return POSITIVE if self.probability >= self.threshold else NEGATIVE

    @property
    def position(self) -> float | None:
        return self.slice.position if self.slice else None

    def overlay(self, opacity: float = 0.4) -> np.ndarray:
        return overlay(self.slice.pixels, self.cam, opacity)

    def write(self, folder: str | Path, stem: str) -> None:
        """Save the Grad-CAM overlay PNG and the attention weights JSON."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{stem}_gradcam.png"), cv2.cvtColor(self.overlay(), cv2.COLOR_RGB2BGR))
        (folder / f"{stem}_attention.json").write_text(json.dumps(
            {"probability": self.probability, "threshold": self.threshold, "verdict": self.verdict,
             "attention": np.round(self.attention, 5).tolist()}) + "\n")


class Analyzer:
    """A loaded model and its explainer; build once, analyse many files."""

    def __init__(self, explainer: Explainer) -> None:
        self.explainer = explainer
        self.info: ModelInfo = explainer.info

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> "Analyzer":
        model, info = load(path)
        return cls(Explainer(model, info))

    def read(self, data: bytes, name: str, window_name: str | None = None) -> list[SliceResult]:
        """Read one file into unexplained results (one per frame), or one error result."""
        try:
            slices = read_slices(data, name, window_name or self.info.window, self.info.crop)
        except HemoInputError as error:
            return [SliceResult(name, error=str(error))]
        return [SliceResult(name, s.frame, slice=s, threshold=self.info.threshold, warnings=s.warnings) for s in slices]

    def explain(self, results: list[SliceResult], method: str = "gradcam",
                progress: Callable[[int, int], None] | None = None, batch: int = 8) -> list[SliceResult]:
        """Fill in probability, Grad-CAM and attention for every readable result, in batches."""
        readable = [r for r in results if r.error is None]
        for start in range(0, len(readable), batch):
            chunk = readable[start : start + batch]
            for result, explanation in zip(chunk, self.explainer.explain(stack([r.slice for r in chunk]), method)):
                result.probability, result.cam, result.attention = (
                    explanation.probability, explanation.cam, explanation.attention)
            if progress:
                progress(min(start + batch, len(readable)), len(readable))
        return results

    def analyse(self, data: bytes, name: str, window_name: str | None = None,
                method: str = "gradcam") -> list[SliceResult]:
        return self.explain(self.read(data, name, window_name), method)

    def analyse_files(self, files: Iterable[tuple[str, bytes]], window_name: str | None = None,
                      method: str = "gradcam", progress: Callable[[int, int], None] | None = None) -> list[SliceResult]:
        results = [r for name, data in files for r in self.read(data, name, window_name)]
        return self.explain(results, method, progress)


def study(results: list[SliceResult]) -> tuple[list[SliceResult], SliceResult | None]:
    """The readable slices ordered along the scan axis, and the highest-probability slice (the study verdict)."""
    readable = [r for r in results if r.error is None]
    ordered = sorted(readable, key=lambda r: (r.position is None, r.position or 0.0, r.source, r.frame))
    return ordered, max(readable, key=lambda r: r.probability, default=None)
