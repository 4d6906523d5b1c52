"""Several CV runs of one fold split averaged: what an ensemble of their models would score, out of fold.

    python tools/ensemble_runs.py OUT RUN RUN [RUN ...]
    python -m hemo calibrate OUT --json OUT-calibrate.json

Writes OUT/fold<k>/oof.npz for every fold the runs share: the head's score and the decoder's peak each the
mean of the runs' logits (``hemo.model.mean_logit``, so head+bleed of the ensemble is the mean of the runs'
head+bleed logits); labels, patients and names as the runs have them; the first run's embeddings (the study
model reads one 256-wide embedding, and two models' embeddings share no axes to average). The runs must have
scored the same slices in the same folds; anything else stops it, since averaging two splits would mix a
slice's out-of-fold score with an in-fold one. Two runs of one recipe differ by about as much as the
variants compared here: this says how much of that is noise an average removes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hemo.model import mean_logit  # noqa: E402


def ensemble(runs: list[Path], out: Path) -> list[int]:
    """Write the averaged folds of ``runs`` under ``out``; returns the folds written."""
    folds = sorted({p.parent.name for p in runs[0].glob("fold*/oof.npz")}, key=lambda name: int(name[4:]))
    if not folds:
        raise SystemExit(f"{runs[0]} has no fold*/oof.npz")
    for fold in folds:
        parts = []
        for run in runs:
            if not (run / fold / "oof.npz").exists():
                raise SystemExit(f"{run} has no {fold}: every run must have the same folds")
            with np.load(run / fold / "oof.npz") as data:
                parts.append({key: data[key] for key in data.files})
        first = parts[0]
        for run, part in zip(runs[1:], parts[1:]):
            for key in ("labels", "patients", "names"):
                if not np.array_equal(part[key], first[key]):
                    raise SystemExit(f"{run}/{fold} did not score the same slices as {runs[0]}/{fold} ({key})")
        merged = {key: first[key] for key in ("labels", "patients", "names")}
        merged["scores"] = mean_logit(*(part["scores"] for part in parts))
        merged["embeddings"] = first["embeddings"]
        if all("bleed_peak" in part for part in parts):
            merged["bleed_peak"] = mean_logit(*(part["bleed_peak"] for part in parts))
        (out / fold).mkdir(parents=True, exist_ok=True)
        np.savez(out / fold / "oof.npz", **merged)
    return [int(name[4:]) for name in folds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the averaged folds")
    parser.add_argument("runs", type=Path, nargs="+", help="the --out folders of 'hemo cv' (the same split)")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs")
    folds = ensemble(args.runs, args.out)
    print(f"{len(args.runs)} runs averaged on folds {', '.join(map(str, folds))} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
