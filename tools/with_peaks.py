"""Put the bleed decoder's held-out peaks beside the head's scores of a CV run made before ``hemo cv`` kept them.

Since 6e4b853 ``hemo cv --mask-weight`` writes each fold's decoder peaks into ``fold<k>/oof.npz``
(``bleed_peak``), which ``hemo calibrate --slice-score`` reads. Earlier runs left them elsewhere:
``fold<k>/heldout-bleed-peak.npy`` (the ``--trace-heldout`` record of the final epoch, in the fold's
slice order), or a ``decoder_check --scores`` file from a checkpoint copied while the fold ran (by
patient and slice name; one epoch or so before the head's scores: say so wherever its numbers go).
This writes a copy of the run's ``oof.npz`` files with them, preferring the trace:

    python tools/with_peaks.py RUN OUT [--scores 0=fold0-peaks.npz --scores 1=fold1-peaks.npz ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def with_peaks(run: Path, out: Path, scores: dict[int, Path] | None = None) -> dict[int, str]:
    """Write OUT/fold<k>/oof.npz for every fold of RUN; returns where each fold's peaks came from."""
    scores = scores or {}
    sources = {}
    for part in sorted(run.glob("fold*/oof.npz")):
        fold = int(part.parent.name[4:])
        oof = dict(np.load(part))
        trace = part.parent / "heldout-bleed-peak.npy"
        if "bleed_peak" in oof:
            sources[fold] = "oof.npz"
        elif trace.exists():
            oof["bleed_peak"], sources[fold] = np.load(trace), "trace (final epoch)"
        elif fold in scores:
            with np.load(scores[fold]) as found:
                where = {(str(p), str(n)): i for i, (p, n) in enumerate(zip(found["patients"], found["names"]))}
                index = [where[(str(p), str(n))] for p, n in zip(oof["patients"], oof["names"])]
                oof["bleed_peak"], sources[fold] = found["peak"][index], f"checkpoint ({scores[fold].name})"
        else:
            raise FileNotFoundError(f"fold {fold} of {run} has no decoder peaks: no trace, no --scores {fold}=FILE")
        if len(oof["bleed_peak"]) != len(oof["scores"]):
            raise ValueError(f"fold {fold}: {len(oof['bleed_peak'])} peaks for {len(oof['scores'])} slices")
        (out / part.parent.name).mkdir(parents=True, exist_ok=True)
        np.savez(out / part.parent.name / "oof.npz", **oof)
    return sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the --out folder of 'hemo cv --mask-weight'")
    parser.add_argument("out", type=Path, help="where to write the folds with their peaks")
    parser.add_argument("--scores", action="append", default=[], metavar="K=FILE",
                        help="a fold's peaks from 'decoder_check --scores' (repeatable)")
    args = parser.parse_args()
    scores = {int(k): Path(v) for k, v in (item.split("=", 1) for item in args.scores)}
    for fold, source in with_peaks(args.run, args.out, scores).items():
        print(f"fold {fold}: peaks from {source}")


if __name__ == "__main__":
    main()
