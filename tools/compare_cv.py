"""Is variant B better than variant A? Two cross-validations on the same folds, compared patient by patient.

Each fold's AUC swings by about 0.1 with its 13 patients, so "higher mean AUC" alone says little.
Two runs of ``python -m hemo cv`` on the same data and folds score the same out-of-fold slices, so
the comparison can be paired: per fold (B - A, and on how many folds B is higher), and pooled over
all out-of-fold slices or studies with a 95 % interval from resampling whole patients, both runs
scored on each resample. Only the folds both runs have finished are compared, so a run still in
progress can be read against a finished one.

The interval holds the patients' variation, not the training runs': two runs of one recipe on the same
folds differed by +0.017 in fold-mean slice AUC, the same sign on 5 of 5 folds, with a patient interval
of +0.014 to +0.065 on the pooled difference (BENCHMARKS.md). A difference of that size needs more
than one run of each variant.

Study scores are those ``hemo calibrate`` reports for the top-k rule, each slice alone: the mean of the top k
calibrated slices, k and the calibration chosen on the other folds.

    python tools/compare_cv.py runs/cv-lr1e4 runs/cv-lr1e4-masks [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.calibrate import nested_top_k, read_oof, studies_of  # noqa: E402
from hemo.evaluate import bootstrap_auc_difference  # noqa: E402


def aligned(first: dict, second: dict) -> dict:
    """``second``'s out-of-fold arrays in ``first``'s slice order; the same slices and folds, or an error."""
    keys = [f"{p}/{n}" for p, n in zip(second["patients"], second["names"])]
    where = {key: i for i, key in enumerate(keys)}
    try:
        order = np.array([where[f"{p}/{n}"] for p, n in zip(first["patients"], first["names"])])
    except KeyError as missing:
        raise SystemExit(f"the runs scored different slices ({missing} is in one only): not comparable") from None
    if len(order) != len(keys) or not np.array_equal(first["fold"], second["fold"][order]):
        raise SystemExit("the runs used different slices or folds: not comparable")
    return {key: values[order] for key, values in second.items()}


def study_scores(oof: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per patient (in ``studies_of`` order): label, fold, nested top-k mean of calibrated slices."""
    labels, raw = oof["labels"].astype(int), oof["scores"].astype(float)
    studies = studies_of(oof)
    scores, _ = nested_top_k(labels, raw, oof["fold"], studies)
    return np.array([s["label"] for s in studies]), np.array([s["fold"] for s in studies]), scores


def per_fold(labels: np.ndarray, a: np.ndarray, b: np.ndarray, folds: np.ndarray) -> list[dict]:
    return [{"fold": int(k), "a": roc_auc_score(labels[folds == k], a[folds == k]),
             "b": roc_auc_score(labels[folds == k], b[folds == k])} for k in np.unique(folds)]


def common_folds(a: dict, b: dict) -> tuple[dict, dict, list[int]]:
    """Both runs restricted to the folds both have finished (a run still in progress has fewer)."""
    folds = sorted(set(a["fold"].tolist()) & set(b["fold"].tolist()))
    if not folds:
        raise SystemExit("the runs have no finished fold in common: not comparable")
    keep = [{key: values[np.isin(run["fold"], folds)] for key, values in run.items()} for run in (a, b)]
    return keep[0], keep[1], folds


def compare(run_a: Path, run_b: Path, n: int = 2000) -> dict:
    a, b, folds = common_folds(read_oof(run_a), read_oof(run_b))
    b = aligned(a, b)
    labels = a["labels"].astype(int)
    result = {"a": str(run_a), "b": str(run_b), "folds": folds}
    for level in ("slices", "studies"):
        if level == "slices":
            y, fold_of, groups, sa, sb = labels, a["fold"], a["patients"], a["scores"], b["scores"]
        else:
            (y, fold_of, sa), (_, _, sb) = study_scores(a), study_scores(b)
            groups = None  # one study per patient
        folds_auc = per_fold(y, sa, sb, fold_of)
        result[level] = {
            "folds": folds_auc, "b_higher_folds": sum(f["b"] > f["a"] for f in folds_auc),
            "fold_mean_difference": float(np.mean([f["b"] - f["a"] for f in folds_auc])),
            "pooled_a": roc_auc_score(y, sa), "pooled_b": roc_auc_score(y, sb),
            "pooled_difference": roc_auc_score(y, sb) - roc_auc_score(y, sa),
            "pooled_difference_ci": list(bootstrap_auc_difference(y, sa, sb, groups, n=n))}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="the reference run folder (fold*/oof.npz)")
    parser.add_argument("b", type=Path, help="the variant run folder, same data and folds")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = compare(args.a, args.b, args.resamples)
    print(f"A = {args.a}, B = {args.b}; folds compared: {', '.join(map(str, result['folds']))}")
    for level in ("slices", "studies"):
        r = result[level]
        folds = ", ".join(f"{f['b'] - f['a']:+.3f}" for f in r["folds"])
        low, high = r["pooled_difference_ci"]
        print(f"{level}: AUC B - A per fold {folds} (B higher on {r['b_higher_folds']} of {len(r['folds'])}, "
              f"mean {r['fold_mean_difference']:+.3f}); pooled {r['pooled_a']:.3f} -> {r['pooled_b']:.3f}, "
              f"difference {r['pooled_difference']:+.3f} (95 % CI {low:+.3f} to {high:+.3f}, patients resampled)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
