"""Two CV runs' slice AUC on the same slices, each with its own slice score and neighbour width, paired by patient.

    python tools/pair_runs.py runs/cv-lr1e4-masks head 4 runs/cv-live-merged head+bleed 3

Prints both runs' pooled AUC, each slice alone and read with its neighbours (``hemo.context``), and the
95 % interval of the difference, whole patients resampled together (``bootstrap_auc_difference``); then the
study AUC of ``hemo calibrate``'s top-k rule on the slices read with their neighbours (each fold calibrated and
its k chosen on the other folds), the studies resampled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.calibrate import nested_top_k, read_oof, slice_score, studies_of  # noqa: E402
from hemo.context import in_series  # noqa: E402
from hemo.evaluate import bootstrap_auc_difference  # noqa: E402


def scores(run: str, score: str, width: int) -> tuple[np.ndarray, ...]:
    """(slice keys, labels, alone, with neighbours, patients), sorted by patient and file name."""
    oof = read_oof(run)
    _, alone = slice_score(oof, score)[:2]
    read = in_series(alone, [s["index"] for s in studies_of(oof)], width)
    keys = np.array([f"{p}/{n}" for p, n in zip(oof["patients"], oof["names"])])
    order = np.argsort(keys)
    return keys[order], oof["labels"][order].astype(int), alone[order], read[order], oof["patients"][order]


def study_scores(run: str, score: str, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patients, labels, nested top-k study scores), as ``hemo calibrate`` scores the top-k rule (``width``
    neighbours on every fold, where calibrate takes each fold's width from the other folds)."""
    oof = read_oof(run)
    labels = oof["labels"].astype(int)
    studies = studies_of(oof)
    folds = oof["fold"]
    top_k = nested_top_k(labels, slice_score(oof, score)[1], folds, studies, [width] * len(np.unique(folds)))[0]
    return np.array([s["patient"] for s in studies]), np.array([s["label"] for s in studies]), top_k


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for which in ("first", "second"):
        parser.add_argument(f"{which}_run", help=f"the {which} run: the --out folder of 'python -m hemo cv'")
        parser.add_argument(f"{which}_score", help="its slice score: head, head+bleed or head+bleed-top4")
        parser.add_argument(f"{which}_width", type=int, help="neighbours on either side it is read with")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    one, two = (args.first_run, args.first_score, args.first_width), (args.second_run, args.second_score,
                                                                       args.second_width)
    first, second = scores(*one), scores(*two)
    if not np.array_equal(first[0], second[0]):
        raise SystemExit("the two runs did not score the same slices")
    labels, patients = first[1], first[4]
    for name, column in (("alone", 2), ("with neighbours", 3)):
        low, high = bootstrap_auc_difference(labels, first[column], second[column], patients)
        print(f"{name}: {roc_auc_score(labels, first[column]):.3f} -> {roc_auc_score(labels, second[column]):.3f} "
              f"(95 % CI of the difference {low:+.3f} to {high:+.3f}, patients resampled)")
    patients, study_labels, before = study_scores(*one)
    after = study_scores(*two)[2]
    if len(set(study_labels.tolist())) < 2:
        print(f"studies: {len(patients)}, all of one kind (no study AUC)")
        return 0
    low, high = bootstrap_auc_difference(study_labels, before, after)
    print(f"studies, top-k mean: {roc_auc_score(study_labels, before):.3f} -> {roc_auc_score(study_labels, after):.3f} "
          f"(95 % CI of the difference {low:+.3f} to {high:+.3f}, studies resampled)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
