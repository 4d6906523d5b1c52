"""Does the slice score gain from weighing the paper model and the bleed decoder other than equally?

    python tools/score_weight.py runs/cv-ema-shoulder-e8-amd [RUN ...]

The shipped slice score is the mean of two logits, the paper model's probability and the mean of the
decoder's 4 highest map cells (``head+bleed-top4``). For weights w of the decoder's logit (0: the paper
model alone, 0.5: the shipped mean, 1: the decoder alone), each run's pooled out-of-fold slice AUC, and
the nested AUC where each fold is scored with the weight that ranked the other four folds best.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.calibrate import read_oof  # noqa: E402
from hemo.model import logit  # noqa: E402  (the clip the shipped slice score uses)

WEIGHTS = (0.0, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0)


def load(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(head logit, decoder logit, label, fold) of every out-of-fold slice of a `hemo cv --out` run."""
    try:
        oof = read_oof(run)
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    if "bleed_top4" not in oof:
        raise SystemExit(f"{run}: no bleed_top4 in its folds (a `hemo cv --out` run with --mask-weight)")
    return logit(oof["scores"]), logit(oof["bleed_top4"]), oof["labels"], oof["fold"]


def by_weight(head: np.ndarray, bleed: np.ndarray, labels: np.ndarray, folds: np.ndarray,
              weights=WEIGHTS) -> tuple[dict[float, float], float, list[float]]:
    """Pooled AUC per weight; nested AUC (each fold at the weight best on the others) and those weights."""
    score = {w: (1 - w) * head + w * bleed for w in weights}
    pooled = {w: float(roc_auc_score(labels, s)) for w, s in score.items()}
    nested, chosen = np.empty(len(labels)), []
    for fold in np.unique(folds):
        rest = folds != fold
        best = max(weights, key=lambda w: roc_auc_score(labels[rest], score[w][rest]))
        nested[~rest] = score[best][~rest]
        chosen.append(best)
    return pooled, float(roc_auc_score(labels, nested)), chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for run in args.runs:
        pooled, nested, chosen = by_weight(*load(run))
        cells = ", ".join(f"{w:g}: {auc:.3f}" for w, auc in pooled.items())
        print(f"{run}: pooled slice AUC by decoder weight {cells}; nested {nested:.3f} (weights {chosen})")


if __name__ == "__main__":
    main()
