"""How much does stopping on the held-out fold flatter a CV score? Read the traces of a fixed-epoch CV.

``python -m hemo cv DATA --out RUN --trace-heldout ...`` trains every fold for a fixed number of epochs
and records the held-out AUC after each epoch without acting on it. This prints, per fold, that curve
and three scores of the same training runs:

- last epoch: the fixed-epoch protocol (what ``RUN/fold<k>/oof.npz`` holds, unless the run averaged its
  weights with ``--ema``: then the kept model's own AUC is printed beside the last epoch's, for the head and,
  with a bleed decoder, its map's peak, so the average is judged against the weights it replaced);
- best epoch: what early stopping with best-epoch restore on the held-out fold picks (optimistic);
- nested epoch: the epoch with the best mean AUC on the *other* folds' curves, applied to this fold
  (how an epoch count chosen by CV would score on new patients).

Best and nested choose among fine-tuning epochs only: early stopping watches the fine-tuning stage, so
a warm-up epoch is never what it restores (``--warmup-epochs`` as given to ``hemo cv``).

    python tools/heldout_trace.py runs/cv-lr1e4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def curves(run: Path) -> dict[int, np.ndarray]:
    """Held-out AUC per epoch of the run (warm-up included), one array per fold; a resumed epoch counts once."""
    found = {}
    for trace in sorted(run.glob("fold*/heldout.jsonl")):
        by_epoch = {}
        for line in trace.read_text().splitlines():
            row = json.loads(line)
            by_epoch[row["epoch"]] = row["auc"]  # the last record of an epoch replayed after a resume
        fold = int(trace.parent.name.removeprefix("fold"))
        found[fold] = np.array([by_epoch[e] for e in sorted(by_epoch)])
    return found


def kept(run: Path) -> dict[int, dict[str, float]]:
    """Per finished fold, the AUC of what it kept (``oof.npz``) and of its last traced epoch, head and decoder peak."""
    from sklearn.metrics import roc_auc_score

    found = {}
    for oof_path in sorted(run.glob("fold*/oof.npz")):
        trace = oof_path.parent / "heldout.jsonl"
        if not trace.exists():
            continue
        last = json.loads(trace.read_text().splitlines()[-1])
        with np.load(oof_path) as oof:
            row = {"head": float(roc_auc_score(oof["labels"], oof["scores"])), "head_last": float(last["auc"])}
            if "bleed_peak" in oof.files and "bleed_peak_auc" in last:
                row.update(peak=float(roc_auc_score(oof["labels"], oof["bleed_peak"])),
                           peak_last=float(last["bleed_peak_auc"]))
        found[int(oof_path.parent.name.removeprefix("fold"))] = row
    return found


def summary(found: dict[int, np.ndarray], warmup: int = 1) -> dict[str, list[float]]:
    """Last, best and nested-epoch AUC per fold, over the folds whose traces have the full epoch count.

    Best and nested are chosen after the first ``warmup`` epochs (those of the frozen-backbone warm-up).
    """
    length = max(len(c) for c in found.values())
    done = {fold: c for fold, c in found.items() if len(c) == length}
    rows: dict[str, list[float]] = {"fold": [], "last": [], "best": [], "nested": [], "nested_epoch": []}
    for fold, curve in done.items():
        others = [c for f, c in done.items() if f != fold]
        start = min(warmup, length - 1)
        epoch = start + int(np.argmax(np.mean(others, axis=0)[start:])) if others else length - 1
        rows["fold"].append(fold)
        rows["last"].append(float(curve[-1]))
        rows["best"].append(float(curve[start:].max()))
        rows["nested"].append(float(curve[epoch]))
        rows["nested_epoch"].append(epoch + 1)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the --out folder of a 'hemo cv --trace-heldout' run")
    parser.add_argument("--warmup-epochs", type=int, default=1, help="as given to 'hemo cv' (never chosen)")
    args = parser.parse_args(argv)
    found = curves(args.run)
    if not found:
        raise SystemExit("no fold*/heldout.jsonl here: run 'python -m hemo cv ... --out RUN --trace-heldout'")
    for fold, curve in sorted(found.items()):
        shown = " ".join(f"{a:.3f}" for a in curve)
        print(f"fold {fold}: held-out AUC by epoch (the first {args.warmup_epochs} warm-up) {shown}")
    rows = summary(found, args.warmup_epochs)
    print(f"complete folds: {rows['fold']}; nested epochs chosen: {rows['nested_epoch']}")
    for key in ("last", "best", "nested"):
        values = np.array(rows[key])
        print(f"{key:>6} epoch: mean {values.mean():.3f} (sd {values.std():.3f}) | "
              + " ".join(f"{v:.3f}" for v in values))
    gap = np.array(rows["best"]) - np.array(rows["nested"])
    print(f"best minus nested (the flattery of stopping on the held-out fold): mean {gap.mean():.3f}")
    models = kept(args.run)
    for score in ("head", "peak"):
        pairs = [(row[score], row[f"{score}_last"]) for row in models.values() if score in row]
        if pairs and any(abs(a - b) > 1e-6 for a, b in pairs):  # the kept model is not the last epoch (--ema)
            print(f"kept model ({score}) against its last epoch, per fold: "
                  + " ".join(f"{a:.3f} / {b:.3f}" for a, b in pairs)
                  + f"; mean difference {np.mean([a - b for a, b in pairs]):+.3f}")


if __name__ == "__main__":
    main()
