"""Each finished fold's slice AUC by every slice score, while a CV run is still going.

    python tools/fold_scores.py runs/cv-lr1e4-masks-live2 [--width 3]

One line per ``fold*/oof.npz``: the paper model's score ("head"), and where the fold recorded its
decoder, the decoder's peak and every slice score of ``hemo.bleed.SLICE_SCORES`` the fold's map readings
allow ("head+bleed", "head+bleed-top4": the one a model ships with); each also read with its
neighbours (``hemo.context``, ``--width`` on either side). ``hemo calibrate`` does the whole calibration
once every fold is in; this only watches.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.bleed import SLICE_SCORES, combined, oof_key  # noqa: E402
from hemo.calibrate import studies_of  # noqa: E402
from hemo.context import in_series  # noqa: E402


def fold_scores(run: str | Path, width: int = 3) -> list[dict]:
    rows = []
    for part in sorted(Path(run).glob("fold*/oof.npz")):
        with np.load(part) as data:
            oof = {key: data[key] for key in ("scores", "labels", "patients", "names")}
            maps = {cells: data[oof_key(cells)] for cells in SLICE_SCORES.values()
                    if cells and oof_key(cells) in data.files}
        oof["fold"] = np.zeros(len(oof["labels"]), int)
        series = [s["index"] for s in studies_of(oof)]
        labels = oof["labels"].astype(int)
        scores = {"head": oof["scores"]}
        if 1 in maps:
            scores["peak"] = maps[1]
        scores.update({name: combined(oof["scores"], maps[cells]) for name, cells in SLICE_SCORES.items()
                       if cells in maps})
        row = {"fold": part.parent.name}
        for name, values in scores.items():  # (alone, with its neighbours)
            row[name] = (roc_auc_score(labels, values), roc_auc_score(labels, in_series(values, series, width)))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a 'hemo cv --out' folder")
    parser.add_argument("--width", type=int, default=3)
    args = parser.parse_args(argv)
    for row in fold_scores(args.run, args.width):
        print(f"{row.pop('fold')}: " + ", ".join(f"{name} {alone:.3f} ({read:.3f} with neighbours)"
                                                for name, (alone, read) in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
