"""``python -m hemo``: train, cross-validate, evaluate, predict and benchmark from the shell."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from hemo.backbones import BACKBONES, PRETRAINED
from hemo.imaging import WINDOW_NAMES
from hemo.model import DEFAULT_MODEL


def _progress(done: int, total: int) -> None:
    if done == total or done % 100 == 0:
        print(f"\rreading slices {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in a log file."""
    return 1 if sys.stderr.isatty() else 2


def _load_data(source: str):
    from hemo import datasets

    return datasets.load(source, progress=_progress)


def _config(args):
    from hemo.train import TrainConfig

    return TrainConfig(backbone=args.backbone, pretrained=args.pretrained, epochs=args.epochs,
                       warmup_epochs=args.warmup_epochs, batch_size=args.batch_size, seed=args.seed,
                       learning_rate=args.lr, patience=args.patience, init=args.init)


def cmd_train(args) -> int:
    from hemo.evaluate import format_report
    from hemo.train import train

    metrics = train(_load_data(args.data), args.out, _config(args), args.split, args.val_fraction, str(args.data),
                    _verbosity())
    print(format_report(metrics))
    print(f"wrote {Path(args.out) / 'hemo-hybrid.keras'}, history.json, split.json, metrics.json")
    return 0


def cmd_cv(args) -> int:
    from hemo.train import cross_validate

    rows = cross_validate(_load_data(args.data), _config(args), args.folds, args.fold or None)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    aucs = [r["auc"] for r in rows]
    print(f"{args.backbone} ({args.pretrained}): mean AUC {np.mean(aucs):.3f} over {len(rows)} folds")
    return 0


def cmd_evaluate(args) -> int:
    from hemo import datasets
    from hemo.evaluate import format_report, report
    from hemo.model import load, predict

    model, info = load(args.model)
    data = _load_data(args.data)
    if args.patients:
        wanted = json.loads(Path(args.patients).read_text())
        data = data.subset(datasets.indices(data, wanted.get(args.part, [])))
        print(f"evaluating the {len(set(data.patients.tolist()))} {args.part} patients of {args.patients}")
    metrics = report(data.labels, predict(model, data.inputs()), info.threshold, data.patients)
    print(format_report(metrics))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1) + "\n")
    return 0


def _inputs(paths: list[str]) -> list[Path]:
    files = []
    for path in map(Path, paths):
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def cmd_predict(args) -> int:
    from hemo.analysis import Analyzer

    analyzer = Analyzer.load(args.model)
    out = Path(args.explain) if args.explain else None
    rows = []
    files = _inputs(args.paths)
    for number, path in enumerate(files, 1):
        print(f"[{number}/{len(files)}] {path}", file=sys.stderr, flush=True)
        try:
            data = path.read_bytes()
        except OSError as error:
            rows.append({"file": str(path), "slice": "", "probability": "", "label": "", "error": error.strerror,
                         "note": ""})
            continue
        for result in analyzer.analyse(data, path.name, args.window, args.method):
            row = {"file": str(path), "slice": result.frame, "probability": "", "label": "",
                   "error": result.error or "", "note": " ".join(result.warnings)}
            if result.error is None:
                row.update(probability=f"{result.probability:.4f}", label=result.verdict)
                if out:
                    result.write(out, f"{path.stem}_{result.frame}")
            rows.append(row)
    fields = ["file", "slice", "probability", "label", "error", "note"]
    stream = open(args.csv, "w", newline="") if args.csv else sys.stdout
    writer = csv.DictWriter(stream, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    if args.csv:
        stream.close()
    return 0


def cmd_bench(args) -> int:
    from hemo.bench import run

    print(run(args.model, args.repeats))
    return 0


def cmd_cache(args) -> int:
    _load_data(args.data).save(args.out)
    print(f"wrote {args.out}")
    return 0


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="data folder (CT-ICH, Kaggle head_ct, or class folders) or a .npz from 'hemo cache'")
    parser.add_argument("--backbone", choices=BACKBONES, default="efficientnet_lite0")
    parser.add_argument("--pretrained", choices=PRETRAINED, default="imagenet")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--warmup-epochs", type=int, default=1, help="frozen-backbone epochs first")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="start from this saved model's weights (no warm-up)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hemo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the hybrid model with a patient-level split")
    _training_options(train)
    train.add_argument("--out", required=True, help="folder for hemo-hybrid.keras and its records")
    train.add_argument("--split", choices=["patient", "slice"], default="patient",
                       help="'slice' reproduces the paper's leaky protocol")
    train.add_argument("--val-fraction", type=float, default=0.2)
    train.set_defaults(run=cmd_train)

    cv = commands.add_parser("cv", help="patient-grouped k-fold cross-validation of a configuration")
    _training_options(cv)
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--fold", type=int, action="append", help="run only this fold (repeatable)")
    cv.add_argument("--json", help="write the per-fold rows here")
    cv.set_defaults(run=cmd_cv)

    evaluate = commands.add_parser("evaluate", help="metrics of a model on labelled data")
    evaluate.add_argument("data")
    evaluate.add_argument("--model", default=str(DEFAULT_MODEL))
    evaluate.add_argument("--json", help="write the metrics here")
    evaluate.add_argument("--patients", help="a split.json: evaluate only one part of it")
    evaluate.add_argument("--part", default="validation", help="which part of --patients (default validation)")
    evaluate.set_defaults(run=cmd_evaluate)

    predict = commands.add_parser("predict", help="probabilities for slices (files or folders)")
    predict.add_argument("paths", nargs="+")
    predict.add_argument("--model", default=str(DEFAULT_MODEL))
    predict.add_argument("--window", choices=WINDOW_NAMES, default="brain")
    predict.add_argument("--explain", help="folder for Grad-CAM overlays and attention weights")
    predict.add_argument("--method", choices=["gradcam", "gradcam++"], default="gradcam")
    predict.add_argument("--csv", help="write the table here instead of the terminal")
    predict.set_defaults(run=cmd_predict)

    bench = commands.add_parser("bench", help="per-slice prediction and explanation times on this machine")
    bench.add_argument("--model", default=None, help="a saved model (default: a freshly built one)")
    bench.add_argument("--repeats", type=int, default=10)
    bench.set_defaults(run=cmd_bench)

    cache = commands.add_parser("cache", help="prepare a data folder once into a .npz for repeated training")
    cache.add_argument("data")
    cache.add_argument("out")
    cache.set_defaults(run=cmd_cache)

    args = parser.parse_args(argv)
    started = time.time()
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        print(f"({time.time() - started:.0f} s)", file=sys.stderr)
