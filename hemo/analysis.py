"""From uploaded files to verdicts with their evidence: the one entry point the CLI and the app share.

Each file is its own boundary: whatever goes wrong while reading or analysing it becomes that
file's result with an ``error`` message, never an exception, so one broken upload never stops
the others. An :class:`Analyzer` may be shared by any number of threads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from hemo import sanity, seen
from hemo.errors import HemoInputError
from hemo.explain import Explainer, overlay
from hemo.imaging import Slice, read_slices, stack
from hemo.model import DEFAULT_MODEL, ModelInfo

POSITIVE, NEGATIVE, NOT_ANALYSED = "indicative of haemorrhage", "likely normal", "not analysed"


@dataclass
class SliceResult:
    """One slice's verdict and evidence, or the reason it could not be read."""

    source: str
    frame: int = 0
    error: str | None = None
    slice: Slice | None = None
    probability: float = float("nan")  # calibrated: what is shown and compared with the threshold
    threshold: float = 0.5
    cam: np.ndarray | None = None
    attention: np.ndarray | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    raw: float = float("nan")  # the paper model's own softmax output
    score: float = float("nan")  # what calibration maps to ``probability``: ``raw``, or raw with the decoder's peak
    embedding: np.ndarray | None = None
    bleed: np.ndarray | None = None  # the bleed decoder's map (32 or 64 cells square), when the model has one

    @property
    def analysed(self) -> bool:
        return self.error is None and math.isfinite(self.probability)

    @property
    def verdict(self) -> str:
        if not self.analysed:
            return NOT_ANALYSED
        return POSITIVE if self.probability >= self.threshold else NEGATIVE

    @property
    def position(self) -> float | None:
        return self.slice.position if self.slice else None

    def light(self) -> "SliceResult":
        """A copy without pictures and maps: what a study verdict needs, for long batches."""
        slice_ = None if self.slice is None else replace(self.slice, pixels=None, display=None)
        return replace(self, slice=slice_, cam=None, bleed=None)

    def overlay(self, opacity: float = 0.4) -> np.ndarray:
        """The slice with Grad-CAM x probability on a fixed 0..1 scale: a low score never looks like a finding."""
        return overlay(self.slice.shown, self.cam.astype(np.float32) * float(self.probability), opacity)

    def bleed_map(self) -> np.ndarray:
        """The decoder's map at the slice's size: each cell's own probability of blood, not rescaled."""
        size = self.slice.shown.shape[:2][::-1]
        return np.clip(cv2.resize(self.bleed.astype(np.float32), size, interpolation=cv2.INTER_LINEAR), 0, 1)

    def bleed_overlay(self, opacity: float = 0.4) -> np.ndarray:
        """The slice with the decoder's bleed probability on the same fixed 0..1 scale as the Grad-CAM overlay."""
        return overlay(self.slice.shown, self.bleed_map(), opacity)

    def write(self, folder: str | Path, stem: str) -> list[Path]:
        """Save the Grad-CAM overlay PNG, the attention weights JSON and, with a decoder, the bleed map PNG;
        never overwrites a file."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        picture, weights = folder / f"{stem}_gradcam.png", folder / f"{stem}_attention.json"
        pictures = {picture: self.overlay()}
        if self.bleed is not None:
            pictures[folder / f"{stem}_bleed.png"] = self.bleed_overlay()
        for path in (*pictures, weights):
            if path.exists():
                raise FileExistsError(f"{path} exists already; choose an empty --explain folder")
        for path, image in pictures.items():
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        weights.write_text(json.dumps(
            {"probability": self.probability, "threshold": self.threshold, "verdict": self.verdict,
             "attention": np.round(self.attention, 5).tolist()}, allow_nan=False) + "\n")
        return [*pictures, weights]


def _plain(error: Exception) -> str:
    """A message for an unexpected failure: what happened, without a traceback."""
    return f"could not be analysed ({type(error).__name__}); the other files are not affected."


class Analyzer:
    """A loaded model and its explainer; build once, analyse many files, from many threads."""

    def __init__(self, explainer: Explainer, study=None) -> None:
        self.explainer = explainer
        self.info: ModelInfo = explainer.info
        self.study_model = study
        self.trained = seen.known(self.info.trained_on)  # the model's training slices, to say so when met again

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL, warm: bool = False) -> "Analyzer":
        explainer = Explainer.load(path)
        study = None
        if explainer.info.study and explainer.info.study.get("file"):
            from hemo import study_model

            study = study_model.load(Path(path).parent / explainer.info.study["file"])
        analyzer = cls(explainer, study)
        if warm:
            analyzer.warm()
        return analyzer

    def warm(self) -> None:
        """Trace every compiled function once, before the first user waits for it."""
        self.explainer.warm()

    @property
    def model_window(self) -> tuple[float, float] | None:
        return tuple(self.info.input_window) if self.info.input_window else None

    def read(self, data: bytes, name: str, window_name: str | None = None, folder: str = "") -> list[SliceResult]:
        """Read one file into unexplained results (one per frame), or one error result."""
        try:
            slices = read_slices(data, name, window_name or self.info.window, self.info.crop, self.model_window,
                                 folder)
        except HemoInputError as error:
            return [SliceResult(name, error=str(error))]
        except Exception as error:  # noqa: BLE001 - one file's failure must never stop the batch
            return [SliceResult(name, error=f"{name}: {_plain(error)}")]
        results = []
        for s in slices:
            try:
                notes = sanity.check(s)
            except HemoInputError as error:
                results.append(SliceResult(name, s.frame, error=str(error)))
                continue
            s = replace(s, digest=seen.digest(s.pixels))
            if s.digest in self.trained:
                notes += (seen.NOTE,)
            results.append(SliceResult(name, s.frame, slice=s, threshold=self.info.threshold,
                                       warnings=s.warnings + notes))
        return results

    def _explain_batch(self, chunk: list[SliceResult], method: str) -> None:
        for result, explanation in zip(chunk, self.explainer.explain(stack([r.slice for r in chunk]), method)):
            shown = float(self.info.calibrate(explanation.score))
            if not (math.isfinite(shown) and np.isfinite(explanation.cam).all()):
                result.error = f"{result.source}: the model gave no finite score for this slice."
                continue
            result.raw, result.score, result.probability = explanation.probability, explanation.score, shown
            result.cam = explanation.cam.astype(np.float16)  # 0..1 for display: half the memory of a long series
            result.attention, result.embedding = explanation.attention, explanation.embedding
            result.bleed = None if explanation.bleed is None else explanation.bleed.astype(np.float16)

    def explain(self, results: list[SliceResult], method: str = "gradcam",
                progress: Callable[[int, int], None] | None = None, batch: int = 8) -> list[SliceResult]:
        """Fill in probability, Grad-CAM and attention for every readable result, in batches."""
        readable = [r for r in results if r.error is None]
        for start in range(0, len(readable), batch):
            chunk = readable[start : start + batch]
            try:
                self._explain_batch(chunk, method)
            except ValueError:
                raise  # a programming error such as an unknown method: not a file's fault
            except Exception:  # noqa: BLE001 - retry one by one so only the culprit fails
                for result in chunk:
                    try:
                        self._explain_batch([result], method)
                    except Exception as error:  # noqa: BLE001
                        result.error = f"{result.source}: {_plain(error)}"
            if progress:
                progress(min(start + batch, len(readable)), len(readable))
        return results

    def analyse(self, data: bytes, name: str, window_name: str | None = None,
                method: str = "gradcam", folder: str = "") -> list[SliceResult]:
        return self.explain(self.read(data, name, window_name, folder), method)

    def analyse_each(self, files: Sequence[tuple[str, bytes, str]], window_name: str | None = None,
                     method: str = "gradcam", progress: Callable[[int, int], None] | None = None,
                     reading: Callable[[int, int], None] | None = None) -> list[list[SliceResult]]:
        """Each (name, bytes, folder) file's results, as :meth:`analyse` gives them, the slices of all the files
        explained together in batches: a series costs about half as much a slice as file by file.
        ``reading(files read, files)`` follows the reading, ``progress(slices explained, slices)`` the rest."""
        read = []
        for name, data, folder in files:
            read.append(self.read(data, name, window_name, folder))
            if reading:
                reading(len(read), len(files))
        self.explain([r for results in read for r in results], method, progress)
        return read

    def analyse_files(self, files: Iterable[tuple[str, bytes]], window_name: str | None = None,
                      method: str = "gradcam", progress: Callable[[int, int], None] | None = None) -> list[SliceResult]:
        each = self.analyse_each([(name, data, "") for name, data in files], window_name, method, progress)
        return [r for results in each for r in results]
