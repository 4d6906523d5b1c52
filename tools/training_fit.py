"""A model on its own training data: which studies its verdict still misses or flags there.

Not a measure of new patients (cross-validation is, BENCHMARKS.md): a check of what the model fitted at all. A bleed
that the shipped verdict misses even on the slices it was trained on is out of reach of any threshold or study rule
chosen out of fold; a normal head it still flags is one it could not learn to clear.

    python tools/training_fit.py ctich.npz [--model models/hemo-hybrid.keras]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo import datasets  # noqa: E402
from hemo.evaluate import scored  # noqa: E402
from hemo.model import DEFAULT_MODEL, load  # noqa: E402
from hemo.seen import seen  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the data folder or 'hemo cache' file the model was trained on")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    args = parser.parse_args()
    model, info = load(args.model)
    data = datasets.load(args.data)
    trained = seen(data.images, info.trained_on)
    print(f"{int(trained.sum())} of {len(data)} slices trained this model (hemo.seen)")
    studies = scored(model, info, args.model, data)["studies"]
    bleeding = [s for s in studies if s["label"]]
    missed = [s for s in bleeding if s["score"] < s["threshold"]]
    flagged = [s for s in studies if not s["label"] and s["score"] >= s["threshold"]]
    print(f"study verdicts: {len(bleeding) - len(missed)} of {len(bleeding)} studies with haemorrhage called, "
          f"{len(flagged)} of {len(studies) - len(bleeding)} normal studies flagged")
    for s in missed:
        index = data.patients == s["patient"]
        share = ([f"{(mask > 127).mean():.2%}" for mask in data.masks[index & (data.labels == 1)]]
                 if data.masks is not None else [])
        print(f"  missed {s['patient']}: {int(data.labels[index].sum())} bleed slice(s)"
              f"{' covering ' + ', '.join(share) + ' of the crop' if share else ''}; study score {s['score']:.3f} "
              f"against {s['threshold']:.3f} ({s['method']})")
    for s in flagged:
        print(f"  flagged {s['patient']}: study score {s['score']:.3f} against {s['threshold']:.3f}")
    if len(studies):
        print(f"(each study scored as the app scores an ordered series; {np.mean([s['label'] for s in studies]):.0%} "
              "of them with haemorrhage)")


if __name__ == "__main__":
    main()
