"""Does the bleed decoder learn the bleed? Its map on a fold's held-out patients, against their masks.

``hemo cv --mask-weight W --out RUN`` trains a bleed decoder beside the paper's head and keeps each
fold's model with its decoder (``RUN/fold<k>/hemo-hybrid.keras``; runs before that kept none, but a
fine-tuning checkpoint ``RUN/fold<k>/fine-tune/latest.weights.h5`` copied while the fold ran holds
both). This loads the fold's model, or such a checkpoint, and, on the fold's held-out slices (the
patients of ``RUN/fold<k>/oof.npz``), reports:

- soft Dice of the map against the mask at the map's size (the share of each cell the bleed covers, as
  the decoder was trained) on the haemorrhage slices, median and mean;
- how much of the map's probability lies in cells the bleed touches (median), against those cells'
  share of the slice;
- the slice AUC of the map's highest pixel, beside the head's out-of-fold AUC: is the decoder's map a
  second piece of evidence worth showing?

Given a trained model's folder without ``oof.npz`` (``models``), it reads every slice of the cache: the
model's own training slices, so a check of where its map lies, not of its accuracy.

    python tools/decoder_check.py CACHE.npz RUN/fold0 [fold0.weights.h5 [--map-size 64]] [--scores fold0-decoder.npz]
    python tools/decoder_check.py CACHE.npz models

``--scores`` keeps each held-out slice's peak (patients, names, labels, peak), to be read beside the
head's out-of-fold scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.bleed import (MAP_SIZE, MAP_SIZES, attach, evidence, load_decoder, probabilities,  # noqa: E402
                        targets, with_decoder)
from hemo.model import build, load  # noqa: E402


def hybrid_of(fold_dir: Path, weights: Path | None, backbone: str = "efficientnet_lite0", map_size: int = MAP_SIZE):
    """The fold's paper model with its decoder: from the fold's saved model, or from a checkpoint.

    A checkpoint holds weights only, so its decoder's size (``hemo cv --map-size``) must be given; a saved
    model tells its own."""
    if weights is None:
        model, info = load(fold_dir / "hemo-hybrid.keras")
        return attach(model, load_decoder(fold_dir / info.bleed["file"]))
    hybrid = with_decoder(build(backbone, "none"), map_size)
    hybrid.load_weights(str(weights))
    return hybrid


def check(cache: Path, fold_dir: Path, weights: Path | None = None, backbone: str = "efficientnet_lite0",
          scores: Path | None = None, map_size: int = MAP_SIZE) -> dict:
    oof = fold_dir / "oof.npz"
    if oof.exists():
        with np.load(oof) as found:
            held_out, head_scores, head_labels = set(found["patients"].tolist()), found["scores"], found["labels"]
    else:  # a trained model's folder (models/): every slice of the cache, its own training slices
        held_out, head_scores, head_labels = None, None, None
    with np.load(cache) as data:
        index = np.arange(len(data["labels"])) if held_out is None else \
            np.flatnonzero(np.isin(data["patients"], list(held_out)))
        images, labels, masks = data["images"][index], data["labels"][index], data["masks"][index]
        patients, names = data["patients"][index], data["names"][index]
    hybrid = hybrid_of(fold_dir, weights, backbone, map_size)
    logits = hybrid.predict(images[..., np.newaxis].astype(np.float32), batch_size=32, verbose=0)["bleed"]
    truth = targets(masks, size=logits.shape[1])
    peak, dice = evidence(logits, truth)
    maps = probabilities(logits)
    bleeding = np.flatnonzero(labels == 1)
    dices = dice[bleeding]
    inside = [float(maps[i][truth[i] > 0].sum() / maps[i].sum()) for i in bleeding]
    if scores is not None:
        np.savez(scores, patients=patients, names=names, labels=labels, peak=peak)
    report = {"fold": fold_dir.name, "held_out_slices": 0 if held_out is None else int(len(index)),
              "bleed_slices": int(len(bleeding)),
              "dice_median": float(np.median(dices)), "dice_mean": float(np.mean(dices)),
              "map_inside_median": float(np.median(inside)),
              "mask_share_median": float(np.median([(truth[i] > 0).mean() for i in bleeding])),
              "map_peak_auc": float(roc_auc_score(labels, peak))}
    if held_out is None:
        return {**report, "training_slices": int(len(index))}
    return {**report, "head_auc": float(roc_auc_score(head_labels, head_scores))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the .npz of 'hemo cache' the CV was run on")
    parser.add_argument("fold", type=Path,
                        help="RUN/fold<k> (its oof.npz names the held-out patients), or a model's folder: every slice")
    parser.add_argument("weights", type=Path, nargs="?",
                        help="a fine-tuning checkpoint of that fold with the decoder (default: the fold's model)")
    parser.add_argument("--scores", type=Path, help="write each held-out slice's map peak here (.npz)")
    parser.add_argument("--map-size", type=int, choices=MAP_SIZES, default=MAP_SIZE,
                        help="with a checkpoint: the --map-size the fold was trained with")
    args = parser.parse_args()
    print(json.dumps(check(args.cache, args.fold, args.weights, scores=args.scores, map_size=args.map_size), indent=1))


if __name__ == "__main__":
    main()
