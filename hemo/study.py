"""Studies as they are: group slices by study and series, order them, give one verdict per study.

DICOM slices group by StudyInstanceUID and SeriesInstanceUID, other files by their folder,
so one verdict never mixes patients. An ordered series of at least ``MIN_SERIES`` slices is
read by the study model (when the model ships one) at the study operating point; anything
smaller keeps the paper's per-slice model and the slice operating point on its highest slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hemo import study_model
from hemo.analysis import NEGATIVE, POSITIVE, Analyzer, SliceResult
from hemo.imaging import scan_key
from hemo.model import platt

#: Fewer slices than this are not a series the study model was trained on (CT-ICH: 24-57 per study).
MIN_SERIES = 8


@dataclass
class Study:
    """One study (or series): its slices in scan order and its verdict."""

    key: tuple[str, str]  # (study, series) identifiers: used for grouping, never shown
    number: int  # 1, 2, ... in upload order: how the study is shown
    slices: list[SliceResult]
    probability: float  # the study's (calibrated) probability
    threshold: float
    method: str  # "study model" or "highest slice"
    refined: list[float] | None = None  # the study model's per-slice probabilities, in scan order

    @property
    def verdict(self) -> str:
        return POSITIVE if self.probability >= self.threshold else NEGATIVE

    @property
    def top(self) -> SliceResult:
        return max(self.slices, key=lambda r: r.probability)

    @property
    def label(self) -> str:
        return f"Study {self.number}"


def order(results: list[SliceResult]) -> list[SliceResult]:
    """Scan order: position along the slice normal, else the natural order of file names, then frame."""
    return sorted(results, key=lambda r: scan_key(r.position, r.source, r.frame))


def group(results: list[SliceResult]) -> dict[tuple[str, str], list[SliceResult]]:
    """Analysed slices by (study, series), in order of first appearance, each in scan order."""
    groups: dict[tuple[str, str], list[SliceResult]] = {}
    for result in results:
        if result.analysed and result.slice is not None:
            groups.setdefault((result.slice.study, result.slice.series), []).append(result)
    return {key: order(members) for key, members in groups.items()}


def verdict(slices: list[SliceResult], analyzer: Analyzer) -> tuple[float, float, str, list[float] | None]:
    """(probability, threshold, method, refined slice probabilities) for one ordered series."""
    info = analyzer.info
    usable = analyzer.study_model is not None and info.study and len(slices) >= MIN_SERIES \
        and all(r.embedding is not None for r in slices)
    if not usable:
        return max(r.probability for r in slices), info.threshold, "highest slice", None
    sequence = study_model.features(np.stack([r.embedding for r in slices]), np.array([r.raw for r in slices]))
    refined, study_raw = study_model.predict(analyzer.study_model, sequence)
    calibration = info.study.get("calibration")
    return (float(platt(study_raw, calibration)), float(info.study["threshold"]), "study model",
            [float(p) for p in refined])


def studies(results: list[SliceResult], analyzer: Analyzer) -> list[Study]:
    """One Study per (study, series) of the analysed results."""
    found = []
    for number, (key, slices) in enumerate(group(results).items(), start=1):
        probability, threshold, method, refined = verdict(slices, analyzer)
        found.append(Study(key, number, slices, probability, threshold, method, refined))
    return found
