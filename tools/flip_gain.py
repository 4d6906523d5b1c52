"""Does reading each slice also mirrored (left-right) rank slices better? Measured on a CV run's fold models.

    python tools/flip_gain.py CACHE.npz RUN [--width 4]

Each finished fold of ``hemo cv --out RUN`` keeps its model (``RUN/fold<k>/hemo-hybrid.keras``) and its
held-out patients' scores (``oof.npz``). This scores the same held-out slices mirrored, averages the two
logits (the model is unchanged; a head is near-symmetric, a bleed is not), and prints the pooled slice AUC of
the finished folds alone and with the mirror, each slice alone and read with its neighbours, with the 95 %
interval of the difference, whole patients resampled together. It first checks that the fold model scores the
unmirrored slices as its ``oof.npz`` says: a mismatch means the wrong cache or run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.calibrate import studies_of  # noqa: E402
from hemo.context import in_series  # noqa: E402
from hemo.evaluate import bootstrap_auc_difference  # noqa: E402
from hemo.model import load, mean_logit, predict  # noqa: E402
from folds import heldout, rescored  # noqa: E402


def fold_scores(cache: dict, fold_dir: Path) -> dict[str, np.ndarray]:
    """The fold's out-of-fold rows with ``mirrored``: the fold model's score of each slice flipped left-right."""
    oof, slices = heldout(cache, fold_dir)
    oof["fold"] = np.full(len(oof["scores"]), int(fold_dir.name[4:]))
    images = slices.astype(np.float32)[..., np.newaxis]
    model = load(fold_dir / "hemo-hybrid.keras")[0]
    again = predict(model, images)
    if not np.allclose(again, oof["scores"], atol=1e-3):
        raise SystemExit(f"{fold_dir}: the model does not reproduce its out-of-fold scores (another cache?)")
    return {**oof, "mirrored": predict(model, images[:, :, ::-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the .npz of 'hemo cache' the CV was run on")
    parser.add_argument("run", type=Path, help="the folder of 'hemo cv --out'")
    parser.add_argument("--width", type=int, default=4, help="neighbours on either side for the second reading")
    args = parser.parse_args(argv)
    oof, folds = rescored(args.cache, args.run, fold_scores)
    alone = oof["scores"]
    both = mean_logit(alone, oof["mirrored"])
    series = [s["index"] for s in studies_of(oof)]
    labels, patients = oof["labels"].astype(int), oof["patients"]
    print(f"{len(folds)} folds ({', '.join(f.name for f in folds)}), {len(labels)} slices")
    for name, first, second in (("alone", alone, both),
                                (f"with {args.width} neighbours", in_series(alone, series, args.width),
                                 in_series(both, series, args.width))):
        low, high = bootstrap_auc_difference(labels, first, second, patients)
        print(f"{name}: {roc_auc_score(labels, first):.3f} -> {roc_auc_score(labels, second):.3f} with the mirror "
              f"(95 % CI of the difference {low:+.3f} to {high:+.3f}, patients resampled)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
