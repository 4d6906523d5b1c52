"""Does a study's own baseline help its score? The top-k mean less a share of the study's median slice logit.

    python tools/study_baseline.py runs/cv-ema-shoulder-s36 [--slice-score auto] [--width 3]

Why: the study false alarms are normal heads whose slices all read a little high (the GE series, an older
head: 19 of 28 slices called; CT-ICH's normal studies with long runs of "positive" slices), while a bleed
raises a few slices above the rest of its own head. Score = logit(top-k mean) - alpha * median(logit of the
study's slices), each slice read with ``--width`` neighbours as the shipped study rule reads it.

Printed: for every alpha, the pooled study AUC of every k and its ceiling (the specificity at the highest
threshold that keeps sensitivity at the goal, chosen on the very studies it is measured on); then the
nested numbers, k and alpha chosen (by AUC) and the threshold set on the other folds' studies, each fold's
slices through the Platt scaling of the other folds, as ``hemo.calibrate.nested_top_k`` does for alpha 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hemo.calibrate import (STUDY_SENSITIVITY, TOP_K, at_sensitivity, auc_or_none, fit_platt, rates,  # noqa: E402
                            read_oof, slice_score, studies_of)
from hemo.context import in_series  # noqa: E402
from hemo.model import logit, platt  # noqa: E402
from hemo.study import top_k_mean  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def table(probabilities: np.ndarray, studies: list[dict], alpha: float) -> np.ndarray:
    """One row per study, one column per k: logit(top-k mean) - alpha * median slice logit of the study."""
    rows = []
    for s in studies:
        p = probabilities[s["index"]]
        base = alpha * float(np.median(logit(p)))
        rows.append([float(logit(np.array([top_k_mean(p, k)]))[0]) - base for k in TOP_K])
    return np.array(rows)


def nested(labels: np.ndarray, read: np.ndarray, folds: np.ndarray, studies: list[dict],
           alphas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, float]]]:
    """Out-of-fold study scores, each fold's own threshold (both from the other folds only) and its (k, alpha)."""
    study_labels = np.array([s["label"] for s in studies])
    study_folds = np.array([s["fold"] for s in studies])
    scores, thresholds, chosen = np.zeros(len(studies)), np.zeros(len(studies)), []
    for fold in np.unique(folds):
        probabilities = platt(read, fit_platt(read[folds != fold], labels[folds != fold]))
        mine = study_folds == fold
        best = None
        for alpha in alphas:
            values = table(probabilities, studies, alpha)
            for j, k in enumerate(TOP_K):
                auc = auc_or_none(study_labels[~mine], values[~mine, j]) or 0.0
                if best is None or auc > best[0] + 1e-12:
                    best = (auc, k, alpha, values[:, j])
        _, k, alpha, values = best
        scores[mine] = values[mine]
        thresholds[mine] = at_sensitivity(study_labels[~mine], values[~mine])
        chosen.append((k, alpha))
    return scores, thresholds, chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a 'hemo cv --out' folder")
    parser.add_argument("--slice-score", default="auto", help="as 'hemo calibrate --slice-score'")
    parser.add_argument("--width", type=int, default=3, help="neighbours on either side (0: each slice alone)")
    args = parser.parse_args(argv)
    oof = read_oof(args.run)
    name, raw, _ = slice_score(oof, args.slice_score)
    labels, folds = oof["labels"].astype(int), oof["fold"]
    studies = studies_of(oof)
    study_labels = np.array([s["label"] for s in studies])
    read = in_series(raw, [s["index"] for s in studies], args.width) if args.width else raw
    print(f"{len(studies)} studies ({int(study_labels.sum())} with haemorrhage), slice score {name}, "
          f"width {args.width}, folds {sorted(set(folds.tolist()))}")
    for alpha in ALPHAS:
        values = table(read, studies, alpha)
        cells = []
        for j, k in enumerate(TOP_K):
            r = rates(study_labels, values[:, j], at_sensitivity(study_labels, values[:, j]))
            cells.append(f"k{k} {auc_or_none(study_labels, values[:, j]):.3f} ({r['specificity']:.3f})")
        print(f"alpha {alpha:.2f} pooled AUC (ceiling specificity at sensitivity >= {STUDY_SENSITIVITY}): "
              + " ".join(cells))
    for alpha in ALPHAS:  # the same baseline taken off each slice: does it rank slices better too?
        centred = logit(read).copy()
        for s in studies:
            centred[s["index"]] -= alpha * float(np.median(centred[s["index"]]))
        print(f"alpha {alpha:.2f} slices, each less its study's median logit: AUC "
              f"{auc_or_none(labels, centred):.3f}")
    for alphas in ((0.0,), ALPHAS):
        scores, thresholds, chosen = nested(labels, read, folds, studies, alphas)
        predicted = scores >= thresholds
        print(f"nested, alpha from {alphas}: AUC {auc_or_none(study_labels, scores):.3f}, sensitivity "
              f"{predicted[study_labels == 1].mean():.3f}, specificity {(~predicted)[study_labels == 0].mean():.3f}; "
              f"(k, alpha) by fold {chosen}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
