"""``python -m hemo``: train, cross-validate, evaluate, predict and benchmark from the shell."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from hemo.distribution import CHOICES as DISTRIBUTE
from hemo.imaging import WINDOW_NAMES
from hemo.options import BACKBONES, DEFAULT_MODEL, MAP_SIZE, MAP_SIZES, PRETRAINED, SLICE_SCORES


def _progress(done: int, total: int) -> None:
    if done == total or done % 100 == 0:
        print(f"\rreading slices {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _files_read(done: int, total: int) -> None:
    """One line that counts up on a terminal; in a log, a line per file (where an interrupted run stopped)."""
    if sys.stderr.isatty():
        print(f"\rread {done} of {total} files", end="", file=sys.stderr, flush=True)
    else:
        print(f"[{done}/{total}]", file=sys.stderr, flush=True)


def _verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in a log file."""
    return 1 if sys.stderr.isatty() else 2


def _load_data(source: str, neighbours: bool = False):
    from hemo import datasets

    return datasets.load(source, progress=_progress, neighbours=neighbours)


def _config(args):
    from hemo import distribution
    from hemo.train import TrainConfig

    if args.mask_weight <= 0 and (args.mask_target != "share" or args.map_size != MAP_SIZE):
        raise SystemExit("--mask-target and --map-size shape the bleed decoder, which only --mask-weight trains")
    if args.mask_weight <= 0 and args.map_score_weight > 0:
        raise SystemExit("--map-score-weight trains the bleed decoder's slice score, which only --mask-weight trains")
    if args.focal > 0 and args.label_smoothing > 0:  # smoothed targets make focal loss punish confident slices
        raise SystemExit("--focal needs hard labels: add --label-smoothing 0 (focal loss already keeps the head "
                         "from overconfidence, and on smoothed targets it penalises every sure slice)")
    if args.cpu_devices:
        distribution.split_cpu(args.cpu_devices)
    return TrainConfig(backbone=args.backbone, pretrained=args.pretrained, epochs=args.epochs,
                       warmup_epochs=args.warmup_epochs, batch_size=args.batch_size, seed=args.seed,
                       learning_rate=args.lr, patience=args.patience, init=args.init, mask_weight=args.mask_weight,
                       robust=args.robust, thick=args.thick, mask_target=args.mask_target, map_size=args.map_size,
                       shoulder=args.shoulder, transplant=args.transplant,
                       freeze_below=args.freeze_below, train_bn=args.train_bn, schedule=args.schedule,
                       distribute=args.distribute, ema=args.ema, size_weight=args.size_weight,
                       label_smoothing=args.label_smoothing, focal=args.focal, map_score_weight=args.map_score_weight)


def cmd_train(args) -> int:
    from hemo.evaluate import format_report
    from hemo.train import train

    config = _config(args)  # before any data: splitting the CPU must precede TensorFlow's start
    # the record names the data, not where it lay on the training machine (a local path travels with the model)
    metrics = train(_load_data(args.data), args.out, config, args.split, args.val_fraction, Path(args.data).name,
                    _verbosity())
    if "per_class" in metrics:
        print(format_report(metrics))
    records = "history.json, split.json, metrics.json" if "per_class" in metrics else "history.json"
    print(f"wrote {Path(args.out) / 'hemo-hybrid.keras'}, {records}")
    return 0


def cmd_cv(args) -> int:
    from hemo.train import cross_validate

    config = _config(args)
    if args.trace_heldout and not args.out:
        raise SystemExit("--trace-heldout needs --out (the fixed-epoch protocol)")
    rows = cross_validate(_load_data(args.data), config, args.folds, args.fold or None, out_dir=args.out,
                          trace=args.trace_heldout)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    aucs = [r["auc"] for r in rows]
    print(f"{args.backbone} ({args.pretrained}): mean AUC {np.mean(aucs):.3f} over {len(rows)} folds")
    return 0


def cmd_evaluate(args) -> int:
    from hemo import datasets
    from hemo.evaluate import format_report, study_report
    from hemo.model import load

    model, info = load(args.model)
    data = _load_data(args.data)
    if args.patients:
        wanted = json.loads(Path(args.patients).read_text())
        data = data.subset(datasets.indices(data, wanted.get(args.part, [])))
        print(f"evaluating the {len(set(data.patients.tolist()))} {args.part} patients of {args.patients}")
    if args.unseen:
        from hemo.seen import seen

        if not info.trained_on:
            raise ValueError(f"{Path(args.model).name} does not record what it was trained on (a model from before "
                             "'hemo train' recorded it): --unseen cannot tell its training slices apart")
        taught = set(data.patients[seen(data.images, info.trained_on)].tolist())  # a patient with any such slice
        data = data.subset(np.flatnonzero(~np.isin(data.patients, list(taught))))
        if not len(data):
            raise ValueError(f"every patient of {args.data} has slices this model was trained on: nothing is unseen")
        print(f"evaluating the {len(set(data.patients.tolist()))} patients none of whose slices trained the model "
              f"({len(taught)} left out)")
    metrics = study_report(model, info, Path(args.model), data)
    print(format_report(metrics))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1) + "\n")
    return 0


def cmd_audit(args) -> int:
    from hemo.audit import audit, format_audit

    metrics = audit(args.results, args.labels, args.model)
    print(format_audit(metrics))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1) + "\n")
    return 0


def cmd_calibrate(args) -> int:
    from hemo.calibrate import run

    report = run(args.oof, args.model if args.write else None, args.epochs, args.study_score, args.slice_score,
                 args.context, args.decoder_weight)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.evaluation:
        Path(args.evaluation).write_text(json.dumps(report["evaluation"], indent=1) + "\n")
    slices, studies, score = report["slice_calibrated"], report["study_model"], report["slice_score"]
    if "head+bleed" in score["auc"]:
        low, high = score["difference_ci"]
        print(f"slice score: {score['chosen']} (out-of-fold AUC: head {score['auc']['head']:.3f}, head+bleed "
              f"{score['auc']['head+bleed']:.3f}, difference 95% CI {low:+.3f} to {high:+.3f} by patient; "
              f"the decoder's peak alone {score['bleed_peak_auc']:.3f})")
    if "head+bleed-top4" in score["auc"]:
        low, high = score["top4_difference_ci"]
        print(f"  head+bleed-top4 (the map's 4 highest cells in place of its peak) "
              f"{score['auc']['head+bleed-top4']:.3f}, difference from head+bleed 95% CI {low:+.3f} to {high:+.3f}")
    if score.get("weights"):
        weights = score["weights"]
        by_weight = ", ".join(f"{w}: {auc:.3f}" for w, auc in weights["auc"].items())
        nested = (f"; nested, each fold's weight chosen on the others {weights['weight_per_fold']}: "
                  f"{weights['auc_nested']:.3f}" if "auc_nested" in weights else "")
        print(f"  the decoder's weight in {score['chosen']}: {weights['weight']:g} (out-of-fold AUC by weight "
              f"{by_weight}{nested})")
    raw = report["slice_raw"]
    print(f"slices: out-of-fold AUC {raw['auc']:.3f} (fold mean {raw['fold_auc_mean']:.3f}"
          f" sd {raw['fold_auc_sd']:.3f}); threshold {slices['threshold']:.3f}: sensitivity "
          f"{slices['sensitivity']:.3f}, specificity {slices['specificity']:.3f} "
          f"(nested {slices['nested']['sensitivity']:.3f} / {slices['nested']['specificity']:.3f}); "
          f"Brier {raw['brier']:.3f} raw, "
          f"{slices['brier_nested']:.3f} calibrated (nested)")
    context = report["context"]
    widths = ", ".join(f"{w}: {auc:.3f}" for w, auc in context["auc"].items())
    print(f"slices of a series, read with their neighbours: width {context['width']} (out-of-fold AUC by width "
          f"{widths}; nested, each fold's width chosen on the others {context['width_per_fold']}: "
          f"{context['auc_nested']['auc']:.3f})")
    if context["width"]:
        print(f"  threshold {context['threshold']:.3f}: sensitivity {context['sensitivity']:.3f}, specificity "
              f"{context['specificity']:.3f} (nested {context['nested']['sensitivity']:.3f} / "
              f"{context['nested']['specificity']:.3f}); Brier {context['brier_nested']:.3f} calibrated (nested)")
    print(f"studies: highest slice AUC {report['study_highest_slice']['auc']:.3f}; study model AUC {studies['auc']:.3f}"
          f"; threshold {studies['threshold']:.3f}: sensitivity {studies['sensitivity']:.3f}, specificity "
          f"{studies['specificity']:.3f} (nested {studies['nested']['sensitivity']:.3f} / "
          f"{studies['nested']['specificity']:.3f})")
    top = report["study_top_k_mean"]
    print(f"studies: mean of the top k slices (k, neighbour width and calibration chosen on the other folds; k: "
          f"{top['k_per_fold']}) AUC {top['auc']:.3f}; "
          f"nested sensitivity {top['nested']['sensitivity']:.3f}, specificity {top['nested']['specificity']:.3f}")
    chosen_k = f" (k = {top['k']})" if report["study_rule"] == "top_k_mean" else ""
    print(f"study rule: {report['study_rule']}{chosen_k}")
    if args.write:
        print(f"stored the operating points, calibration and study rule beside {args.model}")
    return 0


def _ordered_rows(found, kept: list, written: dict, model: str) -> list[dict]:
    """The results table once every file is read: each study's slices in scan order, with their reading alone and
    with their neighbours; then what could not be read, in the order it came. ``written``: each result's file
    column and explanation stem, by ``id``."""
    from hemo.table import slice_rows

    in_studies = {id(r) for study in found for r in study.slices}
    ordered = [r for study in found for r in study.slices] + [r for r in kept if id(r) not in in_studies]
    rows = slice_rows(found, ordered, lambda result: written[id(result)][0], model)
    return [{**line, "explanation": written[id(result)][1]} for line, result in zip(rows, ordered)]


def _read_all(args, analyzer, files: list[Path], out: Path | None, partial, model: str) -> tuple[list, dict]:
    """Every result of ``files`` (light, unless a report needs the maps) and, by ``id``, its file column and
    explanation stem. ``partial`` (a text file or None) gets each row as its file is done, numbered by study and
    series but not yet by slice, so that an interruption keeps what was read."""
    from hemo.inputs import results_of
    from hemo.study import Numbers, alone
    from hemo.table import FIELDS, row

    writer = csv.DictWriter(partial, fieldnames=[*FIELDS, "explanation"]) if partial else None
    if writer:
        writer.writeheader()
    kept, written, numbers, last = [], {}, Numbers(), 0
    for index, path, member, result in results_of(files, analyzer, args.window, args.method):
        if args.each:
            [result] = alone([result], f"\0file {index}.{member or 0}")
        if index != last:  # a file's results come together, files in order, several files analysed at once
            if partial:
                partial.flush()
            _files_read(index, len(files))
            last = index
        stem = ""
        if out and result.analysed:
            stem = f"{index:05d}{f'_{member:05d}' if member else ''}_f{result.frame}"
            result.write(out, stem)
        kept.append(result if args.report or args.dicom_out else result.light())
        written[id(kept[-1])] = (str(path.parent / result.source) if args.names else "", stem)  # zip/member
        if writer:
            place = (*numbers((result.slice.study, result.slice.series)), None) if result.analysed else (None,) * 3
            writer.writerow({**row(result, *place, written[id(kept[-1])][0], model=model), "explanation": stem})
    if last and sys.stderr.isatty():
        print(file=sys.stderr)  # ends the counting line
    return kept, written


def cmd_predict(args) -> int:
    from hemo.inputs import find_files
    from hemo.options import version

    files = find_files(args.paths)  # before the table is opened (it may lie in a folder being read), before Keras
    if not files:
        raise ValueError(f"no files to read in {', '.join(args.paths)}")
    out = Path(args.explain) if args.explain else None
    if out is not None and out.exists() and any(out.iterdir()):
        raise ValueError(f"--explain folder {out} is not empty; hemo never overwrites explanation files")
    from hemo.analysis import Analyzer
    from hemo.model import evaluation
    from hemo.study import HIGHEST, min_series, once, studies
    from hemo.table import FIELDS, terminal
    from hemo.trust import slice_trust, study_trust

    analyzer = Analyzer.load(args.model)
    model_version = version(args.model)
    with open(args.csv, "w", newline="") if args.csv else contextlib.nullcontext() as partial:
        read, written = _read_all(args, analyzer, files, out, partial, model_version)
    kept = once(read)  # a file given twice is one slice, its copy an error row
    written.update({id(copy): written[id(first)] for first, copy in zip(read, kept) if copy is not first})
    found = studies(kept, analyzer)
    rows = _ordered_rows(found, kept, written, model_version)
    if not args.csv and sys.stdout.isatty():  # a person reading: aligned columns; a pipe or a file gets the CSV
        terminal(rows, sys.stdout)
    else:
        final = Path(f"{args.csv}.part") if args.csv else None
        with open(final, "w", newline="") if final else contextlib.nullcontext(sys.stdout) as stream:
            writer = csv.DictWriter(stream, fieldnames=[*FIELDS, "explanation"])
            writer.writeheader()
            writer.writerows(rows)
        if final:
            final.replace(args.csv)  # in one step: the file holds the rows read so far or the whole table, never half
    measured = evaluation(args.model)
    for study in found:
        count = len(study.slices)
        print(f"{study.label.lower()}: {count} slice{'s' if count != 1 else ''}, {study.method}: {study.verdict} "
              f"(probability {study.probability:.3f}, threshold {study.threshold:.3f})", file=sys.stderr)
        if said := study_trust(measured, study.method):
            print(f"  {said}", file=sys.stderr)
        if study.refined_threshold is not None:  # each row has both readings; the count, once
            above = sum(p >= study.refined_threshold for p in study.refined)
            print(f"  slices read with their neighbours: {above} of {len(study.refined)} at or above "
                  f"{study.refined_threshold:.3f} (highest {max(study.refined):.3f})", file=sys.stderr)
        for note in sorted(study.notes):  # also in every slice's row; said once here, as the app and the PDF do
            print(f"  every slice: {note}", file=sys.stderr)
    judged = [study for study in found if study.method == HIGHEST]  # as the app says it: once, under the verdicts
    if judged and (said := slice_trust(measured, several=any(len(study.slices) > 1 for study in judged),
                                       series=min_series(analyzer.info) if analyzer.info.study else None)):
        print(said, file=sys.stderr)
    if args.studies:
        from hemo.table import STUDY_FIELDS, study_row

        with open(args.studies, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=STUDY_FIELDS)
            writer.writeheader()
            writer.writerows(study_row(study, model_version) for study in found)
    failed = sum(not r.analysed for r in kept)
    if failed and not args.names:
        print(f"{failed} file(s) or frame(s) not analysed (verdict 'error'); --names shows which", file=sys.stderr)
    _take_away(args, found, analyzer, model_version, measured)
    return 0


def _take_away(args, found, analyzer, model_version: str, measured: dict | None) -> None:
    """--report (one PDF page per study) and --dicom-out (key-slice Secondary Captures and an SR per study)."""
    if not (args.report or args.dicom_out) or not found:
        return
    if args.report:
        from hemo.report import studies_pdf

        Path(args.report).write_bytes(studies_pdf(found, model_version, measured,
                                                  analyzer.info.provenance))
        print(f"wrote {args.report}", file=sys.stderr)
    if args.dicom_out:
        from hemo.dicom_export import export

        folder = Path(args.dicom_out)
        folder.mkdir(parents=True, exist_ok=True)
        for study in found:
            for name, data in export(study, model_version).items():
                if (folder / name).exists():
                    raise FileExistsError(f"{folder / name} exists already; choose an empty --dicom-out folder")
                (folder / name).write_bytes(data)
        print(f"wrote DICOM results to {folder}", file=sys.stderr)


def cmd_explain_check(args) -> int:
    from hemo.annotation import faithfulness, overlap
    from hemo.explain import Explainer
    from hemo.seen import seen

    data = _load_data(args.data)
    if data.masks is None:
        raise ValueError(f"{args.data} has no bleed annotations (CT-ICH's <n>_HGE_Seg.jpg beside <n>.jpg)")
    annotated = data.subset(np.flatnonzero(data.masks.reshape(len(data), -1).max(1) > 127))
    explainer = Explainer.load(args.model)
    if trained := int(seen(annotated.images, explainer.info.trained_on).sum()):
        print(f"WARNING: {trained} of these {len(annotated)} annotated slices trained this model: its maps on them "
              "show what it learnt from them, not where it looks on a new patient's scan.")
    rows = []
    for start in range(0, len(annotated), 16):
        part = annotated.subset(np.arange(start, min(start + 16, len(annotated))))
        explained = explainer.explain(part.inputs())
        cams = np.stack([e.cam for e in explained])
        salient, random = faithfulness(explainer.predict, part.inputs(), cams, seed=start)
        for i, e in enumerate(explained):
            found = overlap(e.cam, part.masks[i] > 127)
            rows.append({"slice": str(part.names[i]), "patient": str(part.patients[i]),
                         "probability": round(float(explainer.info.calibrate(e.score)), 4),
                         "energy_inside": round(found.energy_inside, 4), "mask_fraction": round(found.mask_fraction, 4),
                         "peak_inside": int(found.peak_inside), "drop_salient": round(float(salient[i]), 4),
                         "drop_random": round(float(random[i]), 4)})
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    column = {key: np.array([r[key] for r in rows], float) for key in rows[0] if key not in ("slice", "patient")}
    print(f"{len(rows)} annotated slices: Grad-CAM energy inside the bleed median "
          f"{np.median(column['energy_inside']):.3f}"
          f" (the bleed is a median {np.median(column['mask_fraction']):.3f} of the slice); peak inside on "
          f"{int(column['peak_inside'].sum())} of {len(rows)}")
    print(f"faithfulness: hiding the most salient 5% drops the score by a median "
          f"{np.median(column['drop_salient']):.3f}"
          f", hiding a random region of the same shape by {np.median(column['drop_random']):.3f}; salient > random on "
          f"{int((column['drop_salient'] > column['drop_random']).sum())} of {len(rows)}")
    print(f"wrote {args.csv}")
    return 0


def cmd_batch(args) -> int:
    try:
        from hemo.batch import run
    except ImportError as error:
        raise ValueError("hemo batch needs Ray Data: pip install 'ray[data]'") from error

    counts = run(args.inputs, args.out, args.model, args.workers, args.address, args.window)
    verdicts = Path(args.out).with_name(Path(args.out).stem + "-studies.csv")  # where hemo.batch.run writes them
    print(f"{counts['files']} file{'s' * (counts['files'] != 1)}: {counts['analysed']} analysed, {counts['skipped']} "
          f"already in {args.out}; {counts['studies']} stud{'y' if counts['studies'] == 1 else 'ies'} in {verdicts}",
          file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    from hemo.bench import run

    print(run(args.model, args.repeats))
    return 0


def cmd_app(args) -> int:
    """The Streamlit app, wherever hemo is installed: ``streamlit run`` on its entry point, with the options given."""
    import os
    import subprocess

    from hemo.app import main as entry

    extra = args.streamlit[1:] if args.streamlit[:1] == ["--"] else args.streamlit
    env = {**os.environ, **({"HEMO_MODEL": str(Path(args.model).resolve())} if args.model else {})}
    try:
        return subprocess.call([sys.executable, "-m", "streamlit", "run", entry.__file__, *extra], env=env)
    except KeyboardInterrupt:  # Ctrl-C reaches the server too, which stops; no traceback for it
        return 0


def cmd_cache(args) -> int:
    _load_data(args.data, args.neighbours).save(args.out)
    print(f"wrote {args.out}")
    return 0


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data",
                        help="data folder (CT-ICH, Kaggle head_ct, or class folders) or a .npz from 'hemo cache'")
    parser.add_argument("--backbone", choices=BACKBONES, default="efficientnet_lite0")
    parser.add_argument("--pretrained", choices=PRETRAINED, default="imagenet")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--warmup-epochs", type=int, default=1, help="frozen-backbone epochs first")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0,
                        help="training's randomness (weights, augmentation, batch order), and for cv and "
                             "'train --split patient' also how patients are dealt into folds or the split: runs "
                             "with other seeds pair by patient, not fold by fold")
    parser.add_argument("--init", help="start from this saved model's weights (no warm-up)")
    parser.add_argument("--mask-weight", type=float, default=0.0,
                        help="> 0: learn the bleed masks too (auxiliary decoder), with this loss weight")
    parser.add_argument("--mask-target", choices=["share", "any"], default="share",
                        help="what each cell of the bleed map learns (with --mask-weight): the share of it that is "
                             "bleed, or whether any of it is (small bleeds then ask for a sure peak)")
    parser.add_argument("--map-size", type=int, choices=MAP_SIZES, default=MAP_SIZE,
                        help="cells across the bleed map (with --mask-weight): 32, cells of 8 x 8 pixels of the "
                             "256 crop, or 64, cells of 4 x 4 (the decoder then reads one more EfficientNet stage)")
    parser.add_argument("--robust", action="store_true",
                        help="other-source augmentation: window, gamma, noise, blur, scale, rotation, JPEG")
    parser.add_argument("--shoulder", action="store_true",
                        help="draw a partial-volume band inside the skull (a tilted or thick slice) on 30 %% of draws, "
                             "whatever the label: a band at the inner table is not, by itself, blood")
    parser.add_argument("--transplant", action="store_true",
                        help="paste a bleed of another training patient (its mask) into 20 %% of the normal slices "
                             "drawn, labelled bleed for the paper's head (the same anatomy with and without blood); "
                             "the bleed decoder learns from real bleeds only")
    parser.add_argument("--thick", action="store_true",
                        help="blend each slice with its neighbour on some draws (partial volume of thicker or "
                             "tilted slices); needs a cache made with 'hemo cache --neighbours'")
    parser.add_argument("--freeze-below", help="keep EfficientNet layers before this one frozen, e.g. block4a")
    parser.add_argument("--train-bn", action="store_true",
                        help="fine-tune the EfficientNet's batch norms too, statistics and scales (frozen at "
                             "ImageNet's by default)")
    parser.add_argument("--schedule", choices=["plateau", "cosine"], default="plateau",
                        help="learning rate: halve on a validation-loss plateau (without validation patients, "
                             "as in 'cv --out' and 'train --split none', it stays constant) or cosine over --epochs")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="> 0: end fine-tuning on the moving average of its weights (momentum per step, "
                             "e.g. 0.995, about the last two epochs of CT-ICH; fixed epoch count only, not with "
                             "early stopping on validation patients)")
    parser.add_argument("--size-weight", type=float, default=0.0,
                        help="> 0: weigh each bleed slice of the paper's head by (median bleed area / its bleed "
                             "area) ** this, within 1/3..3, mean 1 over the bleed slices (needs the masks): small "
                             "bleeds, the ones missed, count more")
    parser.add_argument("--label-smoothing", type=float, default=0.1,
                        help="of the paper head's two-class targets (0.1: 0.95 / 0.05); 0 trains on hard labels")
    parser.add_argument("--focal", type=float, default=0.0,
                        help="> 0: the paper head's loss is focal with this gamma (e.g. 2): confident, easy slices "
                             "count less than the hard ones (a skull rim, a bleed of a few pixels)")
    parser.add_argument("--map-score-weight", type=float, default=0.0,
                        help="> 0: the bleed decoder also learns the slice score read from its map (the mean of its "
                             "4 highest cells against the slice's label), weighted so within its loss; needs "
                             "--mask-weight. On CT-ICH it lowered the shipped slice score (BENCHMARKS): an option to "
                             "measure again, not a recommendation")
    parser.add_argument("--distribute", choices=DISTRIBUTE,
                        help="data-parallel training: 'mirrored' over this host's GPUs (or --cpu-devices); "
                             "--batch-size is the global batch, split across replicas")
    parser.add_argument("--cpu-devices", type=int, default=0,
                        help="split the CPU into N logical devices (try --distribute mirrored without a GPU)")


class _Version(argparse.Action):
    """``--version``: hemo's and the shipped model's (its SHA-256 is read only when asked), for a bug report."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print hemo's version and the shipped model's, and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        from hemo.options import version

        try:
            package = installed("hemo")
        except PackageNotFoundError:
            package = "from a checkout"
        model = version(DEFAULT_MODEL) if DEFAULT_MODEL.exists() else f"none at {DEFAULT_MODEL}"
        print(f"hemo {package}; model {model}")
        parser.exit()


def _check_paths(args) -> None:
    """A mistyped data path is said at once, whatever the command, before TensorFlow or Ray is imported (seconds)
    and in those words, not as "no labelled slices found"."""
    for name in ("data", "paths", "inputs"):
        value = getattr(args, name, None)
        for path in [value] if isinstance(value, str) else value or []:
            if not Path(path).exists():
                raise FileNotFoundError(f"no such file or folder: {path}")


def main(argv: list[str] | None = None) -> int:
    named = Path(sys.argv[0]).name == "hemo"  # the installed command, else python -m hemo
    parser = argparse.ArgumentParser(prog="hemo" if named else "python -m hemo", description=__doc__)
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the hybrid model with a patient-level split")
    _training_options(train)
    train.add_argument("--out", required=True, help="folder for hemo-hybrid.keras and its records")
    train.add_argument("--split", choices=["patient", "slice", "none"], default="patient",
                       help="'none' trains on every patient for exactly --epochs (the final model); "
                            "'slice' reproduces the paper's leaky protocol")
    train.add_argument("--val-fraction", type=float, default=0.2)
    train.set_defaults(run=cmd_train)

    cv = commands.add_parser("cv", help="patient-grouped k-fold cross-validation of a configuration")
    _training_options(cv)
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--fold", type=int, action="append", help="run only this fold (repeatable)")
    cv.add_argument("--json", help="write the per-fold rows here")
    cv.add_argument("--out", help="folder for out-of-fold scores and embeddings (fixed epochs, resumable)")
    cv.add_argument("--trace-heldout", action="store_true",
                    help="with --out: record each epoch's held-out AUC (never used for training), to measure "
                         "how much early stopping on the held-out fold would flatter")
    cv.set_defaults(run=cmd_cv)

    evaluate = commands.add_parser("evaluate", help="metrics of a model on labelled data")
    evaluate.add_argument("data")
    evaluate.add_argument("--model", default=str(DEFAULT_MODEL))
    evaluate.add_argument("--json", help="write the metrics here")
    evaluate.add_argument("--patients", help="a split.json: evaluate only one part of it")
    evaluate.add_argument("--part", default="validation", help="which part of --patients (default validation)")
    evaluate.add_argument("--unseen", action="store_true",
                          help="only the patients none of whose slices trained the model (as its JSON records them): "
                               "a CV fold's model on its held-out patients, say")
    evaluate.set_defaults(run=cmd_evaluate)

    calibrate = commands.add_parser("calibrate", help="operating points, calibration and study model from 'cv --out'")
    calibrate.add_argument("oof", help="the --out folder of 'python -m hemo cv'")
    calibrate.add_argument("--model", default=str(DEFAULT_MODEL), help="the model to store them beside (with --write)")
    calibrate.add_argument("--write", action="store_true", help="store them in the model's JSON and a study file")
    calibrate.add_argument("--epochs", type=int, default=80, help="study model epochs")
    calibrate.add_argument("--study-score", choices=("auto", "top_k_mean", "study_model"), default="auto",
                           help="study rule to store: the top-k mean, the study model, or (auto) the one with "
                                "the higher out-of-fold study AUC")
    calibrate.add_argument("--slice-score", choices=("auto", *SLICE_SCORES), default="auto",
                           help="the slice score to calibrate: the paper model's (head), or joined with its bleed "
                                "decoder's peak or top-4 mean (needs a CV with --mask-weight); auto: the highest "
                                "out-of-fold AUC")
    calibrate.add_argument("--decoder-weight", default="0.5",
                           help="how much the decoder's logit weighs in a joined slice score (0.5, the default: the "
                                "mean of the two logits); auto: the weight with the highest out-of-fold slice AUC, "
                                "of 0.25-0.75 (it may rank studies worse: BENCHMARKS.md)")
    calibrate.add_argument("--context", default="auto",
                           help="slices of an ordered series read with this many neighbours on either side "
                                "(0: alone; auto: the width with the highest out-of-fold AUC, of 0-4)")
    calibrate.add_argument("--json", help="write the full report here")
    calibrate.add_argument("--evaluation", help="write the out-of-fold numbers here in 'evaluate --json' format "
                           "(models/evaluation.json of a model trained on all patients)")
    calibrate.set_defaults(run=cmd_calibrate)

    predict = commands.add_parser("predict", help="probabilities for slices (files or folders)")
    predict.add_argument("paths", nargs="+")
    predict.add_argument("--model", default=str(DEFAULT_MODEL))
    predict.add_argument("--window", choices=WINDOW_NAMES, default="brain")
    predict.add_argument("--explain", help="folder for Grad-CAM overlays, attention weights and bleed maps "
                         "(a model with a decoder)")
    predict.add_argument("--method", choices=["gradcam", "gradcam++"], default="gradcam")
    predict.add_argument("--csv", help="write the table (CSV) here; without it a terminal shows aligned columns "
                                        "and a pipe gets the CSV")
    predict.add_argument("--names", action="store_true",
                         help="put each file's path in the table and its errors (off: file names are often "
                              "patient names, so rows are told apart by study and slice number)")
    predict.add_argument("--studies", help="write one row per study (series) here: verdict, rule, operating point, "
                         "highest slice")
    predict.add_argument("--each", action="store_true",
                         help="each PNG/JPEG a case of its own, as the app reads images dropped on their own "
                              "(a teacher's examples); by default the images of one folder are one study")
    predict.add_argument("--report", help="write a PDF study report here (one page per study)")
    predict.add_argument("--dicom-out", help="folder for DICOM results: key-slice Secondary Captures and an SR")
    predict.set_defaults(run=cmd_predict)

    check = commands.add_parser("explain-check", help="Grad-CAM against the bleed annotations: overlap, faithfulness")
    check.add_argument("data", help="a labelled folder with bleed masks (CT-ICH) or a .npz from 'hemo cache'")
    check.add_argument("--model", default=str(DEFAULT_MODEL))
    check.add_argument("--csv", default="explain-check.csv", help="the per-slice table")
    check.set_defaults(run=cmd_explain_check)

    batch = commands.add_parser("batch", help="whole archives on Ray Data (this machine or a cluster), to Parquet")
    batch.add_argument("inputs", nargs="+", help="files or folders")
    batch.add_argument("--out", required=True, help="Parquet folder (rows are added; files already there are skipped)")
    batch.add_argument("--model", default=str(DEFAULT_MODEL))
    batch.add_argument("--workers", type=int, default=1, help="model actors (each loads the model once)")
    batch.add_argument("--address", help="a Ray cluster: auto or ray://host:10001 (default: start Ray here)")
    batch.add_argument("--window", choices=WINDOW_NAMES, default=None)
    batch.set_defaults(run=cmd_batch)

    audit = commands.add_parser("audit", help="a 'hemo batch' output against the archive's labels: the metrics of "
                                "'evaluate', at the model's operating points")
    audit.add_argument("results", help="the Parquet folder of 'hemo batch --out' (its -studies.csv beside it)")
    audit.add_argument("labels", help="a CSV with 'label' (1 haemorrhage, 0 none) and 'file' or 'study_uid'")
    audit.add_argument("--json", help="write the metrics here (the keys of 'evaluate --json', and 'labelled')")
    audit.add_argument("--model", default=str(DEFAULT_MODEL),
                       help="the model that scored the rows: its evaluation is printed beside the audit's numbers")
    audit.set_defaults(run=cmd_audit)

    bench = commands.add_parser("bench", help="per-slice prediction and explanation times on this machine")
    bench.add_argument("--model", default=None, help="a saved model (default: a freshly built one)")
    bench.add_argument("--repeats", type=int, default=10)
    bench.set_defaults(run=cmd_bench)

    app = commands.add_parser("app", help="start the Streamlit app (options after -- go to 'streamlit run')")
    app.add_argument("--model", help="the model to serve (default: the shipped one, or $HEMO_MODEL)")
    app.add_argument("streamlit", nargs=argparse.REMAINDER, help="e.g. -- --server.port 8502")
    app.set_defaults(run=cmd_app)

    cache = commands.add_parser("cache", help="prepare a data folder once into a .npz for repeated training")
    cache.add_argument("data")
    cache.add_argument("out")
    cache.add_argument("--neighbours", action="store_true",
                       help="also keep each slice's same-label neighbour, for training with --thick")
    cache.set_defaults(run=cmd_cache)

    args = parser.parse_args(argv)
    started = time.time()
    try:
        _check_paths(args)
        return args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `hemo predict scan/ | head`: the reader took what it wanted and left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else Python's flush at exit fails again
        return 1
    finally:
        print(f"({time.time() - started:.0f} s)", file=sys.stderr)
