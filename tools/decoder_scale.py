"""Would the bleed decoder find small bleeds better on a larger input? Measured on a CV run's fold models.

    python tools/decoder_scale.py DATA RUN CACHE.npz [--sizes 384 512]

The paper's model reads 256 x 256 and stays so; its decoder is fully convolutional, so the same fold model can
read the same head crop at 384 or 512 pixels, where a bleed of 0.2 % of the crop covers 2.25 or 4 times as many
map cells. For each finished fold of ``hemo cv --out RUN`` (run on ``hemo cache DATA CACHE.npz``) this reads its
held-out slices again from DATA at each size (the crop as the app makes it, resized larger), runs the fold
model's decoder, and prints, for the decoder's top 1/4/9/16 cells at that size alone and joined with the 256
reading (the mean of the two logits): the decoder's own slice AUC; the shipped slice score head+bleed-top4
with the decoder reading in its place, alone / with neighbours (width as ``hemo calibrate --context auto``):
its AUC, its sensitivity-specificity at each fold's Youden point chosen on the other folds, and its ceiling,
the best min(sensitivity, specificity) of any threshold chosen on the slices themselves; its AUC on the
smallest third of the bleeds against every normal slice; and the top-k study score with its nested calls at
sensitivity >= 0.95 (``tools/error_anatomy.py``). It first checks that the 256 reading
reproduces the run's ``bleed_top4``. A larger read puts 2.25 (384) or 4 (512) times the pixels through the
backbone.

    python tools/decoder_scale.py --external FOLDER [--model models/hemo-hybrid.keras] [--sizes 512]

reads a folder of slices without labels (another scanner's series) with one model instead, and prints how many
slices it calls at its slice operating point with the decoder reading 256 pixels, the larger size, and both, and
what a slice costs through the model at each size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from hemo.bleed import combined  # noqa: E402
from hemo.calibrate import nested_predicted, read_oof, youden  # noqa: E402
from hemo.evaluate import bootstrap_auc_difference  # noqa: E402
from hemo.model import mean_logit  # noqa: E402
from error_anatomy import bleed_area, slice_readings, study_calls  # noqa: E402

CELLS = (1, 4, 9, 16)


def read_at(size: int, files: list[Path], model_path: Path, repeats: int = 1) -> dict[str, np.ndarray]:
    """``files`` read at ``size`` pixels through the model at ``model_path`` (its decoder beside it; DICOM through
    its input window): the head's probability ("head"), the decoder's top cells ("top<n>"), and the seconds a
    slice took through the model, best of ``repeats`` reads ("seconds"; batches of 16, head and decoder together).

    ``hemo.imaging.SIZE`` is the size the app crops and resizes to, and the size the model is built for:
    set to ``size`` while the slices are read and the model built, and set back afterwards.
    """
    import keras

    from hemo import bleed, imaging
    from hemo import model as paper

    window = paper.read_info(model_path).input_window
    shipped = imaging.SIZE
    imaging.SIZE = paper.SIZE = size
    try:
        images = np.stack([imaging.read_file(path, model_window=window and tuple(window))[0].pixels
                           for path in files])[..., np.newaxis]
        larger = paper.build("efficientnet_lite0", "none")
    finally:
        imaging.SIZE = paper.SIZE = shipped
    paper.copy_weights(keras.models.load_model(model_path, compile=False), larger)
    decoder = bleed.load_decoder(model_path.with_name(model_path.stem + "-bleed.keras"))
    hybrid = bleed.attach(larger, decoder)
    times = []
    for _ in range(repeats):  # the first call traces the graph: the best of several is the cost of a slice
        started = time.perf_counter()
        read = hybrid.predict(images, batch_size=16, verbose=0)
        times.append(time.perf_counter() - started)
    seconds = min(times) / len(images)
    maps = bleed.probabilities(read["bleed"])
    return {"head": read["probabilities"][:, 1], "seconds": np.array(seconds),
            **{f"top{cells}": bleed.top_cells(maps, cells) for cells in CELLS}}


def readings(data: Path, run: Path, size: int) -> dict[str, np.ndarray]:
    """Every fold's readings at ``size``, concatenated in ``read_oof``'s order (kept in ``fold<k>/scale<size>.npz``)."""
    parts = []
    for fold in sorted(run.glob("fold*/oof.npz")):
        kept = fold.parent / f"scale{size}.npz"
        if not kept.exists():
            with np.load(fold) as oof:
                files = [data / name for name in oof["names"]]
            np.savez(kept, **read_at(size, files, fold.parent / "hemo-hybrid.keras"))
        with np.load(kept) as part:
            parts.append(dict(part))
    return {f"top{cells}": np.concatenate([part[f"top{cells}"] for part in parts]) for cells in CELLS}


def balanced_ceiling(labels: np.ndarray, scores: np.ndarray) -> float:
    """The highest min(sensitivity, specificity) of any threshold, chosen on the very slices it is measured on:
    no operating point of this score, chosen out of fold, does better (the slice goal asks 0.90)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.max(np.minimum(tpr, 1.0 - fpr)))


def summary(oof: dict, top4: np.ndarray, small: np.ndarray) -> str:
    """The shipped slice and study readings with ``top4`` as the decoder's."""
    labels = oof["labels"].astype(int)
    _, width, scores, widths = slice_readings({**oof, "bleed_top4": top4}, "head+bleed-top4")
    studies, study_scores, flagged = study_calls({**oof, "bleed_top4": top4}, scores["alone"], widths)
    truth, normal = np.array([s["label"] for s in studies]), labels == 0
    against = np.r_[np.ones(small.sum()), np.zeros(normal.sum())]
    called = [nested_predicted(labels, scores[how], oof["fold"], youden) for how in ("alone", "with neighbours")]
    rates = " / ".join(f"{c[labels == 1].mean():.3f}-{(~c[normal]).mean():.3f}" for c in called)
    ceiling = " / ".join(f"{balanced_ceiling(labels, scores[how]):.3f}" for how in ("alone", "with neighbours"))
    return (f"decoder {roc_auc_score(labels, top4):.3f}; slices {roc_auc_score(labels, scores['alone']):.3f} / "
            f"{roc_auc_score(labels, scores['with neighbours']):.3f} (width {width}), sensitivity-specificity "
            f"{rates} (ceiling {ceiling}), smallest third "
            f"{roc_auc_score(against, np.r_[scores['alone'][small], scores['alone'][normal]]):.3f}; studies "
            f"{roc_auc_score(truth, study_scores):.3f}, {flagged[truth == 1].sum()} of {(truth == 1).sum()} called, "
            f"{flagged[truth == 0].sum()} of {(truth == 0).sum()} flagged; missed "
            + (", ".join(s["patient"] for s, call in zip(studies, flagged) if s["label"] == 1 and not call) or "none"))


def external(folder: Path, model_path: Path, sizes: list[int]) -> None:
    """How many of ``folder``'s slices (read alone) the model at ``model_path`` calls at its slice operating point
    with the decoder reading 256 pixels, reading ``size``, and the two joined: data without labels (another
    scanner) shows whether a larger read raises the alarms."""
    from hemo import imaging
    from hemo.errors import HemoInputError
    from hemo.model import platt, read_info

    info = read_info(model_path)
    files = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            imaging.read_file(path, model_window=info.input_window and tuple(info.input_window))
            files.append(path)
        except HemoInputError:
            pass
    base = read_at(256, files, model_path, repeats=3)

    def called(top4: np.ndarray) -> str:
        probability = platt(combined(base["head"], top4, info.decoder_weight), info.calibration)
        return f"{(probability >= info.threshold).sum()} of {len(files)} (highest {probability.max():.3f})"

    print(f"{folder}: {len(files)} slices read alone, {model_path}, slice threshold {info.threshold:.3f}")
    def line(size: int, read: dict) -> str:
        return (f"  {size} ({1000 * read['seconds']:.0f} ms a slice): decoder top 4 >= 0.5 on "
                f"{(read['top4'] >= 0.5).sum()}; slices called {called(read['top4'])}")

    print(line(256, base))
    for size in sizes:
        read = read_at(size, files, model_path, repeats=3)
        print(f"{line(size, read)}; joined with 256: {called(mean_logit(base['top4'], read['top4']))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="?", help="the data folder the cache was made from (CT-ICH)")
    parser.add_argument("run", type=Path, nargs="?", help="the folder of 'hemo cv --out'")
    parser.add_argument("cache", type=Path, nargs="?", help="the .npz of 'hemo cache' the CV was run on (its masks)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[384, 512])
    parser.add_argument("--external", type=Path, metavar="FOLDER",
                        help="instead: a folder of slices without labels (one series), read by --model")
    parser.add_argument("--model", type=Path, default=Path(__file__).resolve().parents[1] / "models/hemo-hybrid.keras",
                        help="the model --external reads with (default: the shipped one)")
    args = parser.parse_args(argv)
    if args.external:
        external(args.external, args.model, args.sizes)
        return 0
    if args.cache is None:
        parser.error("DATA, RUN and CACHE are needed (or --external FOLDER)")
    oof = read_oof(args.run)
    labels, base = oof["labels"].astype(int), oof["bleed_top4"]
    area, edges = bleed_area(args.cache, oof)
    small = (labels == 1) & (area <= edges[0])
    again = readings(args.data, args.run, 256)["top4"]
    if np.abs(again - base).max() > 0.1:
        raise SystemExit(f"{args.run}: the 256 reading does not reproduce bleed_top4 (another data folder?)")
    print(f"{args.run}: {len(labels)} slices of {len(set(oof['patients']))} patients; alone / with neighbours")
    print(f"  256, top 4 (the run's): {summary(oof, base, small)}")
    for size in args.sizes:
        read = readings(args.data, args.run, size)
        for cells in CELLS:
            top = read[f"top{cells}"]
            print(f"  {size}, top {cells}: {summary(oof, top, small)}")
            print(f"  256 top 4 + {size} top {cells}: {summary(oof, mean_logit(base, top), small)}")
        shipped, joined = (combined(oof["scores"], top4) for top4 in (base, mean_logit(base, read["top4"])))
        low, high = bootstrap_auc_difference(labels, shipped, joined, oof["patients"])
        print(f"  slices alone, 256 top 4 -> joined with {size} top 4: {roc_auc_score(labels, shipped):.3f} -> "
              f"{roc_auc_score(labels, joined):.3f} (95 % CI of the difference {low:+.3f} to {high:+.3f}, "
              "patients resampled)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
