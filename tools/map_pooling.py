"""Is the decoder's peak the best way to read its bleed map as a slice score? Measured on a CV run's fold models.

    python tools/map_pooling.py CACHE.npz RUN [--width 3]

The decoder's slice score is its map's highest cell (``hemo.bleed.peaks``), averaged with the paper model's
score in logits (``head+bleed``). A peak is one cell: a thin bleed spread over several cells, each partly
bleed, may read weaker than its area says, and one bright cell at the skull may read stronger. This reads
each finished fold's held-out slices through the fold's model and decoder and scores the map several ways:
the peak, the mean of its top 2, 4 and 8 cells, and the expected bleed area (the sum of the cells'
probabilities, as a logit of its share of the map), and the top 4 of its left-right asymmetry (each cell less
the highest of the 3 x 3 cells around its mirror image, at least 0: a head is near-symmetric, a bleed seldom
is, so a rim the model lights on both sides would drop out; the 3 x 3 forgives a head a little off the crop's
centre). Each is joined with the head as ``head+bleed`` is and
printed as a pooled slice AUC of the finished folds, alone and read with ``--width`` neighbours, with the
patient-paired 95 % interval of its difference from the peak. Several variants on the same slices: the
highest is chosen on these slices, so read it as a lead to confirm on another run, not as a result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.bleed import attach, combined, load_decoder, peaks, probabilities, top_cells  # noqa: E402
from hemo.calibrate import studies_of  # noqa: E402
from hemo.context import in_series  # noqa: E402
from hemo.evaluate import bootstrap_auc_difference  # noqa: E402
from hemo.model import load  # noqa: E402
from folds import heldout, rescored  # noqa: E402

TOP = (2, 4, 8)


def poolings(logits: np.ndarray) -> dict[str, np.ndarray]:
    """Slice scores in (0, 1) from decoder logit maps (N, S, S, 1): peak, top-k means, the area share and the top 4
    of the left-right asymmetry."""
    found = {"peak": peaks(logits)}
    found.update({f"top{k}": peaks(logits, k) for k in TOP})
    maps = probabilities(logits)[..., 0]
    found["area"] = maps.reshape(len(maps), -1).mean(axis=1)
    found["top4-asymmetry"] = top_cells(np.clip(maps - maximum_filter(maps[:, :, ::-1], size=(1, 3, 3)), 0, 1), 4)
    return found


def fold_maps(cache: dict, fold_dir: Path) -> dict[str, np.ndarray]:
    """The fold's out-of-fold rows with every pooling of its decoder's map, checked against its recorded peaks."""
    oof, slices = heldout(cache, fold_dir)
    oof["fold"] = np.full(len(oof["scores"]), int(fold_dir.name[4:]))
    model, info = load(fold_dir / "hemo-hybrid.keras")
    if not info.bleed:
        raise SystemExit(f"{fold_dir}: the fold kept no bleed decoder (a run without --mask-weight)")
    hybrid = attach(model, load_decoder(fold_dir / info.bleed["file"]))
    logits = hybrid.predict(slices.astype(np.float32)[..., np.newaxis], batch_size=32, verbose=0)["bleed"]
    with np.load(fold_dir / "oof.npz") as done:
        if "bleed_peak" in done.files and not np.allclose(peaks(logits), done["bleed_peak"], atol=1e-3):
            raise SystemExit(f"{fold_dir}: the decoder does not reproduce its recorded peaks (another cache?)")
    return {**oof, **poolings(logits)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the .npz of 'hemo cache' the CV was run on")
    parser.add_argument("run", type=Path, help="the folder of 'hemo cv --out' (with --mask-weight)")
    parser.add_argument("--width", type=int, default=3, help="neighbours on either side for the second reading")
    args = parser.parse_args(argv)
    oof, folds = rescored(args.cache, args.run, fold_maps)
    labels, patients = oof["labels"].astype(int), oof["patients"]
    series = [s["index"] for s in studies_of(oof)]
    print(f"{len(folds)} folds ({', '.join(f.name for f in folds)}), {len(labels)} slices; "
          f"head alone {roc_auc_score(labels, oof['scores']):.3f}")
    for width in (0, args.width):  # width 0: each slice alone
        def read(values):
            return in_series(values, series, width)

        base = read(combined(oof["scores"], oof["peak"]))
        print(f"head+bleed, {'each slice alone' if not width else f'with {width} neighbours'}: "
              f"peak {roc_auc_score(labels, base):.3f}")
        for name in (*(f"top{k}" for k in TOP), "area", "top4-asymmetry"):
            other = read(combined(oof["scores"], oof[name]))
            low, high = bootstrap_auc_difference(labels, base, other, patients)
            print(f"  {name}: {roc_auc_score(labels, other):.3f} (difference {low:+.3f} to {high:+.3f}); "
                  f"decoder alone {roc_auc_score(labels, read(oof[name])):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
