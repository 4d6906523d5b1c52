"""Whole archives on Ray Data: the same Analyzer as the CLI and the app, on one machine or a cluster.

Files are listed here and read by the workers as a Ray dataset; a pool of actors each loads the
model once; one row per slice streams to Parquet; study verdicts are aggregated after the slice
pass. Without an address Ray starts on this machine; with one it joins that cluster, and nothing
else changes. A re-run skips every file already in the output, so a crashed job resumes; every row names
the model that scored it, and a run with another model refuses to add to that output.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from hemo.model import ModelInfo

COLUMNS = ["file", "frame", "study_uid", "series_uid", "position", "score", "probability", "verdict", "threshold",
           "error", "note", "model"]


class SliceWorker:
    """One Ray actor: loads and warms the model once, then analyses batches of file paths."""

    def __init__(self, model: str, window: str | None, model_version: str) -> None:
        from hemo.analysis import Analyzer
        from hemo.runtime import quiet_tensorflow

        quiet_tensorflow()
        self.analyzer = Analyzer.load(model, warm=True)
        self.window, self.model_version = window, model_version

    def __call__(self, batch: dict[str, np.ndarray]) -> pd.DataFrame:
        from hemo.inputs import results_of

        rows = []
        for _, path, _, result in results_of(map(Path, batch["file"]), self.analyzer, self.window):  # zip: <zip>/<m>
            slice_, done = result.slice, result.analysed
            rows.append(_row(str(path.parent / result.source), result.frame, slice_.study if slice_ else "",
                             slice_.series if slice_ else "", result.position,
                             result.score if done else None, result.probability if done else None,
                             result.verdict if done else "error", result.threshold if done else None,
                             result.error or "", " ".join(result.warnings), self.model_version))
        return pd.DataFrame(rows, columns=COLUMNS)


def _row(file: str, frame: int, study: str, series: str, position=None, score=None, probability=None,
         verdict="error", threshold=None, error="", note="", model="") -> dict:
    return {"file": file, "frame": int(frame), "study_uid": study, "series_uid": series,
            "position": None if position is None else float(position), "score": None if score is None else float(score),
            "probability": None if probability is None else float(probability), "verdict": verdict,
            "threshold": None if threshold is None else float(threshold), "error": error, "note": note, "model": model}


def done_files(out: Path) -> set[str]:
    """Files that already have rows in the output (a previous, maybe interrupted, run); a zip is done when
    its files are (they are written together, in one batch)."""
    if not out.exists() or not any(out.glob("*.parquet")):
        return set()
    done = set(pd.read_parquet(out, columns=["file"])["file"].tolist())
    return done | {str(parent) for file in done for parent in PurePath(file).parents}


def check_same_model(out: Path, model_version: str) -> None:
    """Refuse to add one model's rows to another's: a resumed run would skip the files the first model read,
    and the study verdicts would judge its scores at the second model's operating points."""
    if not out.exists() or not any(out.glob("*.parquet")):
        return
    try:
        held = set(pd.read_parquet(out, columns=["model"])["model"].tolist())
    except (KeyError, ValueError):  # pyarrow says a missing column either way, by version
        held = {"a model it did not record (an older hemo)"}
    if held - {model_version}:
        raise ValueError(f"{out} holds results of {', '.join(sorted(held))}; this run uses {model_version}. Scores of "
                         "two models are never mixed in one output: choose another --out, or run that model again")


def studies(out: Path, info: ModelInfo) -> pd.DataFrame:
    """One row per series (StudyInstanceUID and SeriesInstanceUID, else folder): slices, highest probability,
    the study verdict. A study's thick, thin and bone series are judged apart, as the app judges them:
    read as one, their slices would interleave along the scan axis.

    Judged as the app judges a study (``hemo.study.series_score``, slices in scan order, read with their
    neighbours when the model carries a context), except that the study model needs
    the slices' embeddings, which an archive run does not keep: a model whose study rule is the study
    model falls back to the highest slice at the slice operating point; the top-k mean needs none.
    """
    from hemo.imaging import scan_key
    from hemo.study import series_score

    table = pd.read_parquet(out)
    scored = table[table["probability"].notna()]
    rows = []
    for (study, series), members in scored.groupby(["study_uid", "series_uid"], sort=False):
        if "position" in members:  # scan order, as the app orders a series (older outputs have no positions)
            where = [None if pd.isna(p) else float(p) for p in members["position"]]
            members = members.iloc[sorted(range(len(members)), key=lambda i: scan_key(
                where[i], members["file"].iloc[i], int(members["frame"].iloc[i])))]
        shown = members["probability"].to_numpy(dtype=np.float64)
        probability, threshold, method, _ = series_score(shown, members["score"].to_numpy(dtype=np.float64), None,
                                                         info)
        rows.append({"study_uid": study, "series_uid": series, "slices": len(members), "highest": float(shown.max()),
                     "probability": probability, "threshold": threshold, "method": method,
                     "verdict": "indicative of haemorrhage" if probability >= threshold else "likely normal"})
    return pd.DataFrame(rows)


def run(inputs: list[str], out: str | Path, model: str, workers: int = 1, address: str | None = None,
        window: str | None = None, batch_size: int = 16) -> dict:
    """Analyse every file under ``inputs`` not yet in ``out``; returns counts."""
    import ray

    from hemo.inputs import find_files
    from hemo.model import load
    from hemo.options import version

    out = Path(out)
    model_version = version(model)
    check_same_model(out, model_version)
    files = [str(f) for f in find_files(inputs)]
    skipped = done_files(out)
    todo = [f for f in files if f not in skipped]
    info = load(model)[1]
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 runtime_env={"env_vars": {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}}
                 if address is None else None)
    try:
        if todo:
            dataset = ray.data.from_items([{"file": f} for f in todo],
                                          override_num_blocks=max(1, len(todo) // batch_size))
            dataset = dataset.map_batches(SliceWorker, fn_constructor_args=(str(Path(model).resolve()), window,
                                                                            model_version),
                                          batch_size=batch_size, concurrency=workers, num_cpus=1, batch_format="numpy")
            dataset.write_parquet(str(out))
    finally:
        if started_here:
            ray.shutdown()
    found = studies(out, info) if out.exists() else pd.DataFrame()
    if len(found):
        found.to_csv(out.with_name(out.stem + "-studies.csv"), index=False)
    return {"files": len(files), "skipped": len(files) - len(todo), "analysed": len(todo), "studies": len(found)}
