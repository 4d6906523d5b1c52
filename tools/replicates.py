"""How far the shipped model's numbers move when its recipe is trained again: other CV runs beside its evaluation.

The shipped operating points and numbers come from one CV run of the recipe. Other runs of the same CV command
(another machine, another ``--seed``, which also deals the patients into other folds) score the same 66
patients; their nested study specificity ranged from 0.46 to 0.76 (BENCHMARKS.md), so one run's number alone
overstates what a new user can expect. This prints each run's numbers beside the shipped evaluation's and, with
``--write``, keeps them in it as ``replicates`` (``hemo.trust.REPLICATED``): the app, the About page and the
PDF report then say how far they moved.

    python tools/replicates.py models/evaluation.json runs/cv-a-calibrate.json runs/cv-b-calibrate.json [--write]

Each JSON after the first is what ``python -m hemo calibrate RUN --json FILE`` wrote for another run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hemo.trust import REPLICATED  # noqa: E402


def replicate(calibrate_json: Path) -> dict:
    """The numbers of one other run, from its ``hemo calibrate --json`` report."""
    report = json.loads(calibrate_json.read_text())
    evaluation = report["evaluation"]
    return {"run": report["oof_dir"], "study_method": evaluation.get("study_method"),
            **{key: evaluation.get(key) for key in REPLICATED}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluation", type=Path, help="the shipped model's evaluation.json")
    parser.add_argument("runs", type=Path, nargs="+", help="'hemo calibrate --json' reports of other runs")
    parser.add_argument("--write", action="store_true", help="keep them in the evaluation as 'replicates'")
    args = parser.parse_args(argv)
    evaluation = json.loads(args.evaluation.read_text())
    others = [replicate(path) for path in args.runs]
    print(f"{'run':<44}" + "".join(f"{key:>18}" for key in REPLICATED))
    for name, numbers in [(f"shipped ({args.evaluation})", evaluation), *((o["run"], o) for o in others)]:
        print(f"{name:<44}" + "".join(f"{numbers.get(key) or float('nan'):>18.3f}" for key in REPLICATED))
    if args.write:
        evaluation["replicates"] = others
        args.evaluation.write_text(json.dumps(evaluation, indent=1) + "\n")
        print(f"kept {len(others)} run(s) in {args.evaluation}")


if __name__ == "__main__":
    main()
