"""Does the top-k study rule's choice of k matter? Study AUC by k, fold by fold, on a CV run.

    python tools/study_k.py runs/cv-ema-shoulder-mw2 [--slice-score auto] [--width 3]

``hemo calibrate`` picks each fold's k on the other folds' studies (``nested_top_k``). This prints, per
held-out fold, the study AUC of every k of ``TOP_K`` on those other folds (what the choice sees) and on the
fold itself (what it costs), each fold's slices read with ``--width`` neighbours through the Platt scaling
fitted on the other folds, as ``nested_top_k`` reads them; then every k on all studies pooled. When the
rows are flat, a nested k that jumps between folds is noise, and a study AUC lost or won lies elsewhere.

Last, a ceiling: for every k, the specificity at the highest threshold that keeps the pooled study
sensitivity at the goal (``STUDY_SENSITIVITY``), chosen on the very studies it is measured on. No operating
point of that rule does better out of fold; when every k stays below the specificity goal, the study goal
needs better slice scores, not another threshold or k.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hemo.calibrate import (STUDY_SENSITIVITY, TOP_K, at_sensitivity, auc_or_none, fit_platt, rates,  # noqa: E402
                            read_oof, slice_score, studies_of, top_k_table)
from hemo.context import in_series  # noqa: E402
from hemo.model import platt  # noqa: E402


def by_fold(run: str | Path, score: str = "auto", width: int = 3) -> tuple[list[dict], dict[int, float | None],
                                                                          dict[int, dict]]:
    """Per held-out fold: {fold, others: {k: AUC}, own: {k: AUC}}; every k's AUC on all studies; and every k's
    sensitivity and specificity at its own best threshold for the study sensitivity goal, on all studies."""
    oof = read_oof(run)
    _, raw, _ = slice_score(oof, score)
    labels, folds = oof["labels"].astype(int), oof["fold"]
    studies = studies_of(oof)
    study_labels = np.array([s["label"] for s in studies])
    study_folds = np.array([s["fold"] for s in studies])
    read = in_series(raw, [s["index"] for s in studies], width) if width else raw
    rows = []
    for fold in np.unique(folds):
        probabilities = platt(read, fit_platt(read[folds != fold], labels[folds != fold]))
        table = top_k_table(probabilities, studies)
        mine = study_folds == fold
        rows.append({"fold": int(fold),
                     "others": {k: auc_or_none(study_labels[~mine], table[~mine, j]) for j, k in enumerate(TOP_K)},
                     "own": {k: auc_or_none(study_labels[mine], table[mine, j]) for j, k in enumerate(TOP_K)}})
    pooled = top_k_table(read, studies)
    ceiling = {k: rates(study_labels, pooled[:, j], at_sensitivity(study_labels, pooled[:, j]))
               for j, k in enumerate(TOP_K)}
    return rows, {k: auc_or_none(study_labels, pooled[:, j]) for j, k in enumerate(TOP_K)}, ceiling


def _line(aucs: dict[int, float | None]) -> str:
    return " ".join(f"k{k} " + ("—" if value is None else f"{value:.3f}") for k, value in aucs.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a 'hemo cv --out' folder")
    parser.add_argument("--slice-score", default="auto", help="as 'hemo calibrate --slice-score'")
    parser.add_argument("--width", type=int, default=3, help="neighbours on either side (0: each slice alone)")
    args = parser.parse_args(argv)
    rows, pooled, ceiling = by_fold(args.run, args.slice_score, args.width)
    for row in rows:
        print(f"fold {row['fold']}: other folds {_line(row['others'])} | this fold {_line(row['own'])}")
    print(f"all studies (uncalibrated): {_line(pooled)}")
    print(f"at sensitivity >= {STUDY_SENSITIVITY} on all studies, threshold chosen on them (a ceiling): "
          + " ".join(f"k{k} {r['sensitivity']:.3f}/{r['specificity']:.3f}" for k, r in ceiling.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
