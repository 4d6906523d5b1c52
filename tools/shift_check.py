"""Do the slice scores keep their specificity on slices that look as if from another source? CV fold models.

    python tools/shift_check.py CACHE.npz RUN [--draws 2] [--seed 0]

Each finished fold of ``hemo cv --out RUN`` keeps its model (with its bleed decoder, when trained with
``--mask-weight``) and its held-out patients' scores (``oof.npz``). This scores the same held-out slices
again after the other-source augmentation (``hemo.augment`` with ``robust=True``: another window, gamma,
blur, noise, JPEG re-compression, field of view, scale, rotation; ``--draws`` copies of each slice), and
prints, for the paper model's score ("head") and, where there is a decoder, its peak and "head+bleed":
the pooled slice AUC on the original and the shifted slices, and sensitivity / specificity of both at the
threshold that is the Youden point of the original slices. A score whose specificity falls on the shifted
copies would raise false alarms on other scanners' and viewers' images. The fold model must reproduce its
``oof.npz`` scores first (else the wrong cache or run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.augment import augment  # noqa: E402
from hemo.bleed import attach, combined, load_decoder, peaks  # noqa: E402
from hemo.calibrate import rates, youden  # noqa: E402
from hemo.model import load, predict  # noqa: E402
from folds import finished, heldout, read_cache  # noqa: E402


def scores_of(model, decoder, images: np.ndarray) -> dict[str, np.ndarray]:
    """Head (and, with a decoder, peak and head+bleed) for a batch (N, 256, 256) of 0..255 slices."""
    batch = images.astype(np.float32)[..., np.newaxis]
    if decoder is None:
        return {"head": predict(model, batch)}
    out = attach(model, decoder).predict(batch, batch_size=32, verbose=0)
    head, peak = np.asarray(out["probabilities"])[:, 1], peaks(out["bleed"])
    return {"head": head, "peak": peak, "head+bleed": combined(head, peak)}


def fold_shift(cache: dict, fold_dir: Path, draws: int, rng: np.random.Generator) -> tuple[dict, dict, np.ndarray]:
    """The fold's held-out labels, and their scores on the original slices and on ``draws`` shifted copies of each."""
    oof, images = heldout(cache, fold_dir)
    model, info = load(fold_dir / "hemo-hybrid.keras")
    decoder = load_decoder(fold_dir / info.bleed["file"]) if info.bleed else None
    original = scores_of(model, decoder, images)
    if not np.allclose(original["head"], oof["scores"], atol=1e-3):
        raise SystemExit(f"{fold_dir}: the model does not reproduce its out-of-fold scores (another cache?)")
    shifted = [scores_of(model, decoder, np.stack([augment(image, rng, robust=True)[0] for image in images]))
               for _ in range(draws)]
    return oof["labels"].astype(int), original, {k: np.concatenate([s[k] for s in shifted]) for k in original}


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the .npz of 'hemo cache' the CV was run on")
    parser.add_argument("run", type=Path, help="the folder of 'hemo cv --out'")
    parser.add_argument("--draws", type=int, default=2, help="shifted copies of each held-out slice")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cache, folds = read_cache(args.cache), finished(args.run)
    rng = np.random.default_rng(args.seed)
    parts = [fold_shift(cache, fold, args.draws, rng) for fold in folds]
    labels = np.concatenate([part[0] for part in parts])
    labels_shifted = np.concatenate([np.tile(part[0], args.draws) for part in parts])  # each fold: draw after draw
    lines = [f"{len(folds)} folds, {len(labels)} held-out slices, {args.draws} shifted copies of each"]
    for name in parts[0][1]:
        original = np.concatenate([part[1][name] for part in parts])
        shifted = np.concatenate([part[2][name] for part in parts])
        threshold = youden(labels, original)
        before, after = rates(labels, original, threshold), rates(labels_shifted, shifted, threshold)
        lines.append(f"{name}: AUC {roc_auc_score(labels, original):.3f} -> "
                     f"{roc_auc_score(labels_shifted, shifted):.3f} shifted; at {threshold:.3f} "
                     f"sensitivity {before['sensitivity']:.3f} -> {after['sensitivity']:.3f}, "
                     f"specificity {before['specificity']:.3f} -> {after['specificity']:.3f}")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
