"""Studies as they are: group slices by study and series, order them, give one verdict per study.

DICOM slices group by StudyInstanceUID and SeriesInstanceUID, other files by their folder,
so one verdict never mixes patients. An ordered series of at least ``min_series`` slices is
scored by the study rule the model carries (``ModelInfo.study``, chosen by ``hemo calibrate`` on
out-of-fold CV: the study model, or the mean of the top k slices) at the study operating point;
its slices are also read with their neighbours when the model carries a context
(``ModelInfo.context``, ``hemo.context``): that reading, with its own operating point, is the
study's per-slice answer (``Study.refined``). Anything smaller, or a model without a study rule,
keeps the paper's per-slice model and the slice operating point on its highest slice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hemo import study_model
from hemo.analysis import NEGATIVE, POSITIVE, Analyzer, SliceResult
from hemo.context import neighbour_mean
from hemo.imaging import scan_key
from hemo.model import ModelInfo, platt
from hemo.seen import digest

#: Fewer slices than this are not a series the study rules were chosen on (CT-ICH: 19-39 per study).
MIN_SERIES = 8
HIGHEST, STUDY_MODEL = "highest slice", "study model"


@dataclass
class Study:
    """One study (or series): its slices in scan order and its verdict."""

    key: tuple[str, str]  # (study, series) identifiers: used for grouping, never shown
    number: int  # 1, 2, ... in upload order: how the study is shown
    slices: list[SliceResult]
    probability: float  # the study's (calibrated) probability
    threshold: float
    method: str  # HIGHEST, STUDY_MODEL or "mean of the top k slices"
    refined: list[float] | None = None  # per-slice probabilities in the series' context, in scan order
    refined_threshold: float | None = None  # the operating point of ``refined``, when it has one
    series: int | None = None  # 1, 2, ... within its study when the study holds several series (thick, thin, bone)

    @property
    def verdict(self) -> str:
        return POSITIVE if self.probability >= self.threshold else NEGATIVE

    def with_neighbours(self, number: int) -> tuple[float, float] | None:
        """(probability, threshold) of the ``number``-th slice (1-based, scan order) read with its neighbours,
        where the study read its series so; None otherwise."""
        if self.refined is None or self.refined_threshold is None:
            return None
        return float(self.refined[number - 1]), float(self.refined_threshold)

    @property
    def top(self) -> SliceResult:
        return max(self.slices, key=lambda r: r.probability)

    @property
    def label(self) -> str:
        """How it is shown: "Study 2", or "Study 2 · series 3" when its study came with several series."""
        return f"Study {self.number}" + (f" · series {self.series}" if self.series else "")

    @property
    def slug(self) -> str:
        """The label for file names and widget keys: "study2" or "study2-series3"."""
        return f"study{self.number}" + (f"-series{self.series}" if self.series else "")

    @property
    def notes(self) -> frozenset[str]:
        """Notes every slice carries (an 8-bit image, a tilted series): said once for the study, not per slice.
        A single slice's notes stay its own."""
        if len(self.slices) < 2:
            return frozenset()
        return frozenset.intersection(*(frozenset(r.warnings) for r in self.slices))

    @property
    def how(self) -> str:
        """How the verdict was reached, in a sentence's words (for the app and the reports)."""
        if self.method == HIGHEST:
            return f"its {'only' if len(self.slices) == 1 else 'highest'} slice, at the slice operating point"
        if self.method == STUDY_MODEL:
            return "the study model over the ordered series, at the study operating point"
        return f"the {self.method} of the series, at the study operating point"


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


#: What a slice given twice says in place of its verdict.
TWICE = ("the same slice as one before it in this series (the file given twice?): counted once, as the slice "
         "before it.")


def once(results: list[SliceResult]) -> list[SliceResult]:
    """Each slice once. A file given twice (a folder and a file in it, two copies of one export) was two slices of its
    series, counted twice in its top-k mean and its neighbours' reading; the later copy (the same study, series,
    position and pixels) becomes a result with the error ``TWICE``, so the tables still say what became of it.
    Only slices with a position (DICOM) are compared: pictures have none to tell a copy from a like slice."""
    met: set[tuple] = set()
    kept = []
    for result in results:
        read = result.slice
        if result.analysed and read is not None and read.position is not None:
            key = (read.study, read.series, read.position, read.digest or digest(read.pixels))
            if key in met:
                result = SliceResult(result.source, result.frame, error=TWICE)
            met.add(key)
        kept.append(result)
    return kept


def alone(results: list[SliceResult], key: str) -> list[SliceResult]:
    """One image file's slices as a study of their own: a PNG or JPEG says nothing of its patient, so images dropped
    together (or a teacher's examples in one folder) may each be a different one. ``key``, unique to the file and
    never shown, replaces the folder they were grouped by; DICOM keep their study identifiers."""
    return [replace(r, slice=replace(r.slice, study=key, series=key))
            if r.slice is not None and r.slice.info.get("format") != "DICOM" else r for r in results]


def top_k_mean(probabilities: np.ndarray, k: int) -> float:
    """Mean of a study's ``k`` highest slice probabilities: one outlying slice weighs less than under the maximum."""
    return float(np.sort(np.asarray(probabilities, dtype=np.float64))[::-1][:k].mean())


def min_series(info: ModelInfo) -> int:
    """Fewest ordered slices the model's study rule judges: MIN_SERIES, and at least k for a top-k mean.

    A mean over fewer than k slices is not the score whose threshold and calibration were fitted,
    so a shorter series keeps the paper's per-slice model (its highest slice).
    """
    rule = info.study or {}
    return max(MIN_SERIES, int(rule["k"])) if rule.get("score") == "top_k_mean" else MIN_SERIES


def in_context(raw: np.ndarray, info: ModelInfo) -> np.ndarray | None:
    """A series' slices (scan order) each read with its neighbours, calibrated; None where the model has no
    context or the series is shorter than the study rules judge."""
    context = info.context
    if not context or len(raw) < min_series(info):
        return None
    return np.asarray(platt(neighbour_mean(raw, int(context["width"])), context["calibration"]), dtype=np.float64)


def series_score(shown: np.ndarray, raw: np.ndarray, embeddings: np.ndarray | None, info: ModelInfo,
                 net=None) -> tuple[float, float, str, list[float] | None]:
    """(probability, threshold, method, refined slice probabilities) of one series, slices in scan order.

    ``shown`` are the calibrated slice probabilities, ``raw`` the scores they were calibrated from
    (``SliceResult.score``: the study model and the context were fitted on those); ``net`` is the loaded
    study model, if the model carries one. The app, the CLI, ``hemo evaluate`` and ``hemo batch``
    all judge a study through this one function.
    """
    rule = info.study or {}
    highest = (float(np.max(shown)), float(info.threshold), HIGHEST, None)
    if len(shown) < min_series(info):
        return highest
    read = in_context(raw, info)
    if rule.get("score") == "top_k_mean":
        score = top_k_mean(shown if read is None else read, int(rule["k"]))
        return (float(platt(score, rule.get("calibration"))), float(rule["threshold"]),
                f"mean of the top {int(rule['k'])} slices", None if read is None else [float(p) for p in read])
    if net is not None and embeddings is not None:
        refined, study_raw = study_model.predict(net, study_model.features(embeddings, raw))
        return (float(platt(study_raw, rule.get("calibration"))), float(rule["threshold"]), STUDY_MODEL,
                [float(p) for p in refined])
    return highest


def verdict(slices: list[SliceResult], analyzer: Analyzer) -> tuple[float, float, str, list[float] | None]:
    """:func:`series_score` of analysed slices (already in scan order)."""
    embedded = all(r.embedding is not None for r in slices)
    return series_score(np.array([r.probability for r in slices]), np.array([r.score for r in slices]),
                        np.stack([r.embedding for r in slices]) if embedded else None, analyzer.info,
                        analyzer.study_model)


def refined_threshold(method: str, info: ModelInfo) -> float | None:
    """The operating point of a study's refined slices: the context's (the study model's slices have none)."""
    return float(info.context["threshold"]) if info.context and method not in (HIGHEST, STUDY_MODEL) else None


class Numbers:
    """Study and series numbers in order of first appearance: what the app, the CLI and the reports show.

    Why: an export of one patient often holds a thick, a thin and a bone series; numbered as three studies
    they would read as three patients. Calling it with a (study, series) key gives (study number, series
    number within that study).
    """

    def __init__(self) -> None:
        self._studies: dict[str, int] = {}
        self._series: dict[str, dict[str, int]] = {}

    def __call__(self, key: tuple[str, str]) -> tuple[int, int]:
        study = self._studies.setdefault(key[0], len(self._studies) + 1)
        within = self._series.setdefault(key[0], {})
        return study, within.setdefault(key[1], len(within) + 1)

    def several(self, study: str) -> bool:
        """Whether this study identifier came with more than one series."""
        return len(self._series.get(study, {})) > 1


def places(found: list[Study]) -> dict[int, tuple[Study, int]]:
    """Each analysed result's study and its 1-based place in that study's scan order, by ``id`` of the result:
    how the app, the CLI's table, the PDF and the SR all number a slice ("slice 1" is the lowest)."""
    return {id(result): (study, number) for study in found for number, result in enumerate(study.slices, start=1)}


def studies(results: list[SliceResult], analyzer: Analyzer) -> list[Study]:
    """One Study per (study, series) of the analysed results, numbered by study and series."""
    found = []
    groups, numbered = group(results), Numbers()
    places = [numbered(key) for key in groups]
    for (number, series), (key, slices) in zip(places, groups.items()):
        series = series if numbered.several(key[0]) else None
        probability, threshold, method, refined = verdict(slices, analyzer)
        found.append(Study(key, number, slices, probability, threshold, method, refined,
                           refined_threshold(method, analyzer.info) if refined else None, series))
    return found
