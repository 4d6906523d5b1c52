"""Do the slice scores keep their specificity on slices that look as if from another source? CV fold models.

    python tools/shift_check.py CACHE.npz RUN [--draws 2] [--seed 0]
    python tools/shift_check.py CACHE.npz RUN --thick 0.5 [--bone-hu 700]

Each finished fold of ``hemo cv --out RUN`` keeps its model (with its bleed decoder, when trained with
``--mask-weight``) and its held-out patients' scores (``oof.npz``). This scores the same held-out slices again
after the other-source augmentation (``hemo.augment`` with ``robust=True``: another window, gamma, blur,
noise, JPEG re-compression, field of view, scale, rotation; ``--draws`` copies of each slice), and prints, for
the paper model's score ("head") and, where there is a decoder, its peak, "head+bleed" and "head+bleed-top4":
the pooled slice AUC on the original and the shifted slices, and sensitivity / specificity of both at the
threshold that is the Youden point of the original slices. A score whose specificity falls on the shifted
copies would raise false alarms on other scanners' and viewers' images. The fold model must reproduce its
``oof.npz`` scores first (else the wrong cache or run).

``--thick WEIGHT`` asks the same of another shift, the partial volume of a thicker or tilted slice: each
held-out slice that has a same-label neighbour (a cache made with ``hemo cache --neighbours``) blended with
it (``hemo.partial_volume``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from hemo.augment import TRAIN_WINDOW, augment  # noqa: E402
from hemo.bleed import SLICE_SCORES, attach, combined, load_decoder, peaks  # noqa: E402
from hemo.calibrate import rates, youden  # noqa: E402
from hemo.model import load, predict  # noqa: E402
from hemo.partial_volume import thicken  # noqa: E402
from folds import finished, heldout, read_cache  # noqa: E402


def scores_of(model, decoder, images: np.ndarray) -> dict[str, np.ndarray]:
    """Head (and, with a decoder, its peak and every slice score of ``hemo.bleed.SLICE_SCORES``, the shipped
    head+bleed-top4 among them) for a batch (N, 256, 256) of 0..255 slices."""
    batch = images.astype(np.float32)[..., np.newaxis]
    if decoder is None:
        return {"head": predict(model, batch)}
    out = attach(model, decoder).predict(batch, batch_size=32, verbose=0)
    head = np.asarray(out["probabilities"])[:, 1]
    found = {"head": head, "peak": peaks(out["bleed"])}
    found.update({name: combined(head, peaks(out["bleed"], cells)) for name, cells in SLICE_SCORES.items() if cells})
    return found


def require_reproduced(fold_dir: Path, head: np.ndarray, stored: np.ndarray) -> None:
    """Stop unless the fold model gives its stored out-of-fold scores again: a wrong cache would pass unseen."""
    if not np.allclose(head, stored, atol=1e-3):
        raise SystemExit(f"{fold_dir}: the model does not reproduce its out-of-fold scores (another cache?)")


def fold_shift(cache: dict, fold_dir: Path, draws: int, rng: np.random.Generator,
               thick: tuple[float, float] | None = None) -> tuple[np.ndarray, dict, dict]:
    """The fold's held-out labels, and their scores on the original slices and on ``draws`` shifted copies of each.

    ``thick`` (weight, bone HU): instead, one copy of each slice that has a same-label neighbour in the cache,
    blended with it (``hemo.partial_volume``); slices without one are left out of both.
    """
    oof, images = heldout(cache, fold_dir)
    labels = oof["labels"].astype(int)
    model, info = load(fold_dir / "hemo-hybrid.keras")
    decoder = load_decoder(fold_dir / info.bleed["file"]) if info.bleed else None
    original = scores_of(model, decoder, images)
    require_reproduced(fold_dir, original["head"], oof["scores"])
    if thick is not None:
        beside = heldout(cache, fold_dir, "neighbours")[1]
        has = beside.any(axis=(1, 2))
        blended = np.stack([thicken(x, n.astype(np.float32), *thick, TRAIN_WINDOW)
                            for x, n in zip(images[has], beside[has])])
        return labels[has], {k: v[has] for k, v in original.items()}, scores_of(model, decoder, blended)
    shifted = [scores_of(model, decoder, np.stack([augment(image, rng, robust=True)[0] for image in images]))
               for _ in range(draws)]
    return labels, original, {k: np.concatenate([s[k] for s in shifted]) for k in original}


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the .npz of 'hemo cache' the CV was run on")
    parser.add_argument("run", type=Path, help="the folder of 'hemo cv --out'")
    parser.add_argument("--draws", type=int, default=2, help="shifted copies of each held-out slice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thick", type=float, metavar="WEIGHT",
                        help="instead: blend each slice with its neighbour at this weight (a cache made with "
                             "'hemo cache --neighbours')")
    parser.add_argument("--bone-hu", type=float, default=700.0, help="with --thick: what the clipped bone stands for")
    args = parser.parse_args(argv)
    cache, folds = read_cache(args.cache), finished(args.run)
    if args.thick is not None and "neighbours" not in cache:
        raise SystemExit(f"{args.cache} holds no neighbours: make it with 'hemo cache DATA OUT --neighbours'")
    thick = None if args.thick is None else (args.thick, args.bone_hu)
    draws = 1 if thick else args.draws
    rng = np.random.default_rng(args.seed)
    parts = [fold_shift(cache, fold, draws, rng, thick) for fold in folds]
    labels = np.concatenate([part[0] for part in parts])
    labels_shifted = np.concatenate([np.tile(part[0], draws) for part in parts])  # each fold: draw after draw
    lines = [f"{len(folds)} folds, {len(labels)} held-out slices, {draws} shifted copies of each"]
    if thick:
        lines[0] = (f"{len(folds)} folds, {len(labels)} held-out slices with a same-label neighbour, each blended "
                    f"with it at weight {args.thick:g} (bone {args.bone_hu:g} HU)")
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
