"""What reading each slice with its neighbours gains on a CV run's out-of-fold predictions, paired by patient.

    python tools/context_gain.py runs/cv-lr1e4-masks [--slice-score head|head+bleed] [--width N]

Prints the pooled slice AUC of every width (``hemo.context.WIDTHS``) and, for the chosen width (the
best out of fold unless given), the 95 % interval of the gain over each slice alone, whole patients
resampled together (``hemo.evaluate.bootstrap_auc_difference``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hemo.calibrate import choose_context, read_oof, slice_score, studies_of  # noqa: E402
from hemo.context import in_series  # noqa: E402
from hemo.evaluate import bootstrap_auc_difference  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a 'hemo cv --out' folder")
    parser.add_argument("--slice-score", default="head", choices=("head", "head+bleed"))
    parser.add_argument("--width", default="auto")
    args = parser.parse_args(argv)
    oof = read_oof(args.run)
    _, scores, _ = slice_score(oof, args.slice_score)
    labels, series = oof["labels"].astype(int), [s["index"] for s in studies_of(oof)]
    width, report = choose_context(labels, scores, oof["fold"], series, args.width)
    print("pooled out-of-fold slice AUC by width: " + ", ".join(f"{w}: {a:.3f}" for w, a in report["auc"].items()))
    print(f"nested (each fold's width chosen on the others {report['width_per_fold']}): "
          f"{report['auc_nested']['auc']:.3f}")
    low, high = bootstrap_auc_difference(labels, scores, in_series(scores, series, width), oof["patients"])
    print(f"width {width} against each slice alone: {report['auc'][str(width)] - report['auc']['0']:+.3f} "
          f"(95 % CI {low:+.3f} to {high:+.3f}, patients resampled)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
