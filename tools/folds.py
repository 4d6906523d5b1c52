"""What the tools that rescore a CV run share: its finished folds, its cache, a fold's held-out slices.

``hemo cv --out RUN`` keeps, per finished fold, the fold's model (``RUN/fold<k>/hemo-hybrid.keras``) and its
held-out patients' scores in the fold's own order (``oof.npz``); the slices themselves are in the cache the
CV was trained on (``hemo cache``), found again by patient and name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_cache(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in ("images", "patients", "names", "neighbours") if key in data}


def finished(run: Path) -> list[Path]:
    """The run's folds that have both their model and their out-of-fold scores."""
    folds = sorted(p for p in run.glob("fold*") if (p / "oof.npz").exists() and (p / "hemo-hybrid.keras").exists())
    if not folds:
        raise SystemExit(f"{run}: no finished fold with its model")
    return folds


def rescored(cache_path: Path, run: Path, score) -> tuple[dict[str, np.ndarray], list[Path]]:
    """``score(cache, fold_dir)`` (a fold's out-of-fold rows with what a tool adds) over the run's finished folds,
    joined into one table of rows, and the folds it read."""
    cache, folds = read_cache(cache_path), finished(run)
    parts = [score(cache, fold) for fold in folds]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}, folds


def heldout(cache: dict, fold_dir: Path, field: str = "images") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The fold's out-of-fold rows (scores, labels, patients, names) and their slices (or the cache's ``field``,
    e.g. their neighbours), in the same order."""
    with np.load(fold_dir / "oof.npz") as done:
        oof = {key: done[key] for key in ("scores", "labels", "patients", "names")}
    return oof, cache[field][rows(cache, oof)]


def rows(cache, oof: dict) -> np.ndarray:
    """Where each out-of-fold slice is in the cache, found by patient and name."""
    where = {key: i for i, key in enumerate(zip(cache["patients"].tolist(), cache["names"].tolist()))}
    return np.array([where[key] for key in zip(oof["patients"].tolist(), oof["names"].tolist())])
