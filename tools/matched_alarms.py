"""How many slices of an unlabelled series each slice score flags at the same specificity on CT-ICH normals.

    python tools/matched_alarms.py ../shared/data/dicom/ge-head-ct runs/cv-ema-shoulder-e8-rerun \
        [--model models/hemo-hybrid.keras] [--width 3]

Changing the slice score moves its Youden point, so "slices above the stored threshold" compares two
operating points, not two scores. Here each score (the paper model alone, head+bleed, head+bleed-top4) gets
the threshold at which the CV run's out-of-fold normal slices have a fixed specificity (0.80-0.95); the
series, scored by ``--model``, is counted against it, and the out-of-fold sensitivity at that point is
printed beside it. Each slice alone and read with ``--width`` neighbours on either side (``hemo.context``,
the CT-ICH studies in file-name order, the series in scan order). A score that flags more of a series
thought normal at the same specificity is more alarmed by it, not merely more sensitive. Slices are never
named.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hemo.bleed import SLICE_SCORES, load_decoder  # noqa: E402
from hemo.calibrate import read_oof, slice_score, studies_of  # noqa: E402
from hemo.context import in_series  # noqa: E402
from hemo.model import DEFAULT_MODEL, load  # noqa: E402
from shift_check import scores_of  # noqa: E402
from source_probe import read_series  # noqa: E402

SPECIFICITIES = (0.80, 0.85, 0.90, 0.95)


def series_scores(folder: Path, model_path: Path) -> dict[str, np.ndarray]:
    """Every slice score of the series' slices in scan order, as the model reads them."""
    model, info = load(model_path)
    found = scores_of(model, load_decoder(model_path.with_name(info.bleed["file"])), read_series(folder, info))
    return {name: found[name] for name in SLICE_SCORES}


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("series", type=Path, help="folder of one ordered series")
    parser.add_argument("oof", help="the --out folder of 'python -m hemo cv' (with --mask-weight)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--width", type=int, default=3, help="neighbours on either side")
    args = parser.parse_args(argv)
    oof = read_oof(args.oof)
    normal, order = oof["labels"] == 0, [s["index"] for s in studies_of(oof)]
    lines = []
    for name, series in series_scores(args.series, args.model).items():
        scored = slice_score(oof, name)[1]
        for label, cv, here in (("alone", scored, series),
                                (f"{args.width} neighbours", in_series(scored, order, args.width),
                                 in_series(series, [np.arange(len(series))], args.width))):
            points = []
            for specificity in SPECIFICITIES:
                threshold = np.quantile(cv[normal], specificity)
                points.append(f"{specificity:.2f}: {int(np.sum(here > threshold))}/{len(here)} "
                              f"(sensitivity {np.mean(cv[~normal] > threshold):.3f})")
            lines.append(f"{name}, {label}: slices flagged at out-of-fold specificity " + "; ".join(points))
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
