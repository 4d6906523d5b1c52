"""How a 'highest slice at a fixed threshold' study verdict fares on out-of-fold predictions.

The verdict rule of a model without a study rule: a study is "indicative" when its highest raw slice
score reaches the threshold. This prints that rule's study sensitivity and specificity on the
out-of-fold scores of a ``hemo cv --out`` run (each patient scored by a fold model that never saw them).

    python tools/highest_slice_rule.py runs/cv-lr1e4 0.107
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.calibrate import read_oof, studies_of  # noqa: E402


def study_calls(run: str | Path, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per patient of the run: has haemorrhage, and whether its highest raw slice score reaches ``threshold``."""
    oof = read_oof(run)
    studies = studies_of(oof)
    return (np.array([s["label"] for s in studies]),
            np.array([oof["scores"][s["index"]].max() >= threshold for s in studies]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the --out folder of 'hemo cv'")
    parser.add_argument("threshold", type=float, help="on the raw (uncalibrated) slice score")
    args = parser.parse_args()
    labels, called = study_calls(args.run, args.threshold)
    print(f"highest raw slice >= {args.threshold}: study sensitivity {called[labels == 1].mean():.3f} "
          f"({called[labels == 1].sum()} of {(labels == 1).sum()}), specificity {(~called)[labels == 0].mean():.3f} "
          f"({called[labels == 0].sum()} of {(labels == 0).sum()} normal studies flagged)")


if __name__ == "__main__":
    main()
