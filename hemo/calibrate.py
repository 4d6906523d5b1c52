"""Operating points, calibration and the study model, all from out-of-fold predictions.

``hemo cv --out DIR`` leaves, for every patient, the scores and embeddings of a model that never
saw that patient (fixed epoch count, no early stopping on it). From those alone this module:

- chooses the slice score: the paper model's, or that joined with its bleed decoder's peak or top-4 mean
  (``hemo.bleed.combined``, ``SLICE_SCORES``) where every fold recorded that reading, by out-of-fold AUC,
- chooses how many neighbours a slice of an ordered series is read with (``hemo.context``), by
  out-of-fold AUC, with its own calibration and operating point (a lone slice keeps its own),
- fits Platt scaling of the slice score (so a shown 0.3 means about 30 %),
- compares study scores: the highest slice, the mean of the top k slices (k chosen on other folds),
- chooses the slice operating point (Youden) and the study operating point (the highest
  threshold that keeps out-of-fold study sensitivity >= 0.95),
- trains the study model on the out-of-fold embeddings, evaluated by the same folds (nested:
  a patient's study score comes from a study model that did not see that patient),
- stores the study rule (top-k mean or study model) with the higher nested study AUC, unless told which, and
- reports every number twice where it matters: with the operating point chosen on all
  out-of-fold predictions, and *nested* (chosen on the other folds, applied to this one), the
  honest estimate for a new patient.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_curve

from hemo import study_model
from hemo.bleed import DECODER_WEIGHTS, SLICE_SCORES, cells_of, combined, oof_key
from hemo.context import WIDTHS, in_series
from hemo.evaluate import bootstrap_auc, bootstrap_auc_difference, rank_auc
from hemo.imaging import natural_key
from hemo.model import info_path, logit, platt
from hemo.study import min_series, top_k_mean

STUDY_SENSITIVITY = 0.95


def read_oof(folder: str | Path) -> dict[str, np.ndarray]:
    """All folds' out-of-fold arrays, concatenated, with a ``fold`` column."""
    parts = sorted(Path(folder).glob("fold*/oof.npz"))
    if not parts:
        raise FileNotFoundError(f"no fold*/oof.npz in {folder}: run 'python -m hemo cv DATA --out {folder}' first")
    columns: dict[str, list] = {}
    readings = {oof_key(cells) for cells in SLICE_SCORES.values() if cells}
    for part in parts:
        with np.load(part) as data:
            n = len(data["scores"])
            for key in ("scores", "embeddings", "labels", "patients", "names"):
                columns.setdefault(key, []).append(data[key])
            columns.setdefault("fold", []).append(np.full(n, int(part.parent.name[4:])))
            for key in readings:  # the decoder's own slice scores
                columns.setdefault(key, []).append(data[key] if key in data.files else None)
    complete = {key: values for key, values in columns.items()  # a reading some fold lacks is left out
                if key not in readings or all(value is not None for value in values)}
    return {key: np.concatenate(values) for key, values in complete.items()}


def slice_score(oof: dict[str, np.ndarray], wanted: str = "auto",
                weight: str = "0.5") -> tuple[str, np.ndarray, dict]:
    """(name, scores, report) of the slice score to calibrate, one of ``hemo.bleed.SLICE_SCORES``.

    ``auto`` takes the one with the highest pooled out-of-fold AUC (the simpler one on a tie: the head
    before the decoder's peak before its top-4 mean), each joined score at the decoder's ``weight``: 0.5,
    the plain mean of the two logits, or "auto", the weight that ranks best (:func:`decoder_weight`). The
    report holds every AUC, the weight with the AUCs by weight (and, for "auto", its nested estimate), and
    the patient-paired 95 % intervals of head+bleed's difference from the head ("difference_ci") and of the
    top-4 mean's from the peak ("top4_difference_ci"), both at the plain mean.
    """
    labels, head = oof["labels"].astype(int), oof["scores"].astype(float)
    if wanted not in ("auto", *SLICE_SCORES):
        raise ValueError(f"unknown slice score '{wanted}': use auto, {', '.join(SLICE_SCORES)}")
    readings = {name: oof[oof_key(cells_of(name))] for name in SLICE_SCORES
                if cells_of(name) and oof_key(cells_of(name)) in oof}
    if wanted not in ("auto", "head", *readings):
        raise ValueError(f"'{wanted}' needs the decoder's {oof_key(cells_of(wanted))} in every fold's oof.npz: run "
                         "'hemo cv' with --mask-weight (runs of older versions recorded the peak only)")
    weights = {name: decoder_weight(labels, head, reading, oof["fold"], weight) for name, reading in readings.items()}
    scores = {"head": head} | {name: combined(head, readings[name], weights[name]["weight"]) for name in readings}
    aucs = {name: auc_or_none(labels, values) for name, values in scores.items()}
    chosen = wanted if wanted != "auto" else max(scores, key=lambda name: (aucs[name], -cells_of(name)))
    report = {"chosen": chosen, "auc": aucs, "decoder_weight": weights[chosen]["weight"] if cells_of(chosen) else None}
    if cells_of(chosen):
        report["weights"] = weights[chosen]
    plain = {name: combined(head, reading) for name, reading in readings.items()}  # the intervals' scores
    if "head+bleed" in plain:
        report["difference_ci"] = list(bootstrap_auc_difference(labels, head, plain["head+bleed"], oof["patients"]))
        report["bleed_peak_auc"] = auc_or_none(labels, oof["bleed_peak"])
    if "head+bleed-top4" in plain:
        report["top4_difference_ci"] = list(bootstrap_auc_difference(labels, plain["head+bleed"],
                                                                     plain["head+bleed-top4"], oof["patients"]))
    return chosen, scores[chosen], report


def decoder_weight(labels: np.ndarray, head: np.ndarray, reading: np.ndarray, folds: np.ndarray,
                   wanted: str = "auto") -> dict:
    """The decoder's weight in a joined slice score (``hemo.bleed.combined``): the one of ``DECODER_WEIGHTS``
    with the highest pooled out-of-fold AUC (nearer 0.5, the plain mean, on a tie), or ``wanted``.

    Also each fold's weight chosen on the other folds and the AUC they give ("auc_nested"): where every
    fold chose the pooled weight, the numbers calibrated on it downstream are nested too.
    """
    if wanted != "auto":
        try:
            fixed = float(wanted)
        except ValueError:
            fixed = -1.0
        if not 0.0 <= fixed <= 1.0:
            raise ValueError(f"the decoder's weight must be auto or a number in 0..1, not '{wanted}'")
        return {"weight": fixed, "auc": {str(fixed): auc_or_none(labels, combined(head, reading, fixed))}}
    read = {w: combined(head, reading, w) for w in DECODER_WEIGHTS}

    def best(where: np.ndarray) -> float:
        return max(DECODER_WEIGHTS, key=lambda w: (auc_or_none(labels[where], read[w][where]) or 0.0, -abs(w - 0.5)))

    nested, per_fold = np.zeros(len(labels)), []
    for k in np.unique(folds):
        per_fold.append(best(folds != k))
        nested[folds == k] = read[per_fold[-1]][folds == k]
    return {"weight": best(np.ones(len(labels), bool)), "auc": {str(w): auc_or_none(labels, read[w]) for w in read},
            "weight_per_fold": per_fold, "auc_nested": auc_or_none(labels, nested)}


def choose_context(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray, series: list[np.ndarray],
                   wanted: str = "auto", patients: np.ndarray | None = None) -> tuple[int, dict]:
    """(width, report): the neighbour width (``hemo.context``) with the highest pooled out-of-fold slice AUC.

    The report holds every width's AUC, and the nested estimate: each fold read with the width
    chosen on the other folds only (the honest number for a new patient), with its 95 % interval over
    ``patients`` when given. ``wanted`` "auto", or a width.
    """
    if wanted != "auto" and (not wanted.isdigit() or int(wanted) not in WIDTHS):
        raise ValueError(f"unknown context '{wanted}': use auto or one of {', '.join(map(str, WIDTHS))}")
    read = {width: in_series(scores, series, width) for width in WIDTHS}

    def best(where: np.ndarray) -> int:  # the narrower width on a tie
        return max(WIDTHS, key=lambda w: (auc_or_none(labels[where], read[w][where]) or 0.0, -w))

    width = best(np.ones(len(labels), bool)) if wanted == "auto" else int(wanted)
    nested, per_fold = np.zeros(len(labels)), []
    for k in np.unique(folds):
        chosen = best(folds != k)
        nested[folds == k] = read[chosen][folds == k]
        per_fold.append(chosen)
    measured = _per_fold(labels, nested, folds)
    if patients is not None:
        measured["auc_ci"] = list(bootstrap_auc(labels, nested, patients))
    return width, {"width": width, "auc": {str(w): auc_or_none(labels, read[w]) for w in WIDTHS},
                   "width_per_fold": per_fold, "auc_nested": measured}


def fit_platt(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Platt scaling on the logit of the score: {"a", "b"} with p = sigmoid(a * logit + b)."""
    model = LogisticRegression(C=1e4).fit(logit(scores)[:, None], labels)
    return {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}


def youden(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return float(min(thresholds[int(np.argmax(tpr - fpr))], 1.0))


def at_sensitivity(labels: np.ndarray, scores: np.ndarray, target: float = STUDY_SENSITIVITY) -> float:
    """The highest threshold whose sensitivity is at least ``target`` (best specificity under that rule)."""
    positives = np.sort(scores[labels == 1])[::-1]
    needed = int(np.ceil(target * len(positives)))
    return float(positives[needed - 1]) if needed else 1.0


def rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    predicted = scores >= threshold
    return {"sensitivity": float(predicted[labels == 1].mean()), "specificity": float((~predicted)[labels == 0].mean())}


def auc_or_none(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Slice or study AUC; None where a fold or a part holds only one class."""
    return rank_auc(labels, scores) if len(set(labels.tolist())) == 2 else None


def _per_fold(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> dict:
    aucs = [a for a in (auc_or_none(labels[folds == k], scores[folds == k]) for k in np.unique(folds))
            if a is not None]
    return {"auc": auc_or_none(labels, scores), "fold_auc_mean": float(np.mean(aucs)),
            "fold_auc_sd": float(np.std(aucs)), "fold_aucs": [round(a, 4) for a in aucs]}


def nested_predicted(labels, scores, folds, choose) -> np.ndarray:
    """Positive calls when each fold's threshold is chosen on the other folds only."""
    predicted = np.zeros(len(labels), bool)
    for k in np.unique(folds):
        other = folds != k
        predicted[folds == k] = scores[folds == k] >= choose(labels[other], scores[other])
    return predicted


def _nested_rates(labels, scores, folds, choose) -> dict:
    """Sensitivity/specificity when each fold's threshold is chosen on the other folds only."""
    predicted = nested_predicted(labels, scores, folds, choose)
    return {"sensitivity": float(predicted[labels == 1].mean()), "specificity": float((~predicted)[labels == 0].mean())}


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> list[dict]:
    """Observed haemorrhage rate per bin of shown probability (the reliability curve)."""
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (probabilities >= low) & ((probabilities < high) | (high == 1))
        if inside.any():
            rows.append({"bin": f"{low:.1f}-{high:.1f}", "n": int(inside.sum()),
                         "mean_probability": round(float(probabilities[inside].mean()), 4),
                         "observed_rate": round(float(labels[inside].mean()), 4)})
    return rows


def studies_of(oof: dict[str, np.ndarray]) -> list[dict]:
    """Per patient: slice indices in scan order (natural order of the slice file names), label, fold."""
    found = []
    for patient in np.unique(oof["patients"]):
        index = np.flatnonzero(oof["patients"] == patient)
        index = np.array(sorted(index, key=lambda i: natural_key(str(oof["names"][i]))))
        found.append({"patient": str(patient), "index": index, "label": int(oof["labels"][index].max()),
                      "fold": int(oof["fold"][index[0]])})
    return found


TOP_K = (1, 2, 3, 5, 8, 12)  # up to about the bleed slices of a CT-ICH study (median 9 of 30)
RULES = ("auto", "top_k_mean", "study_model")


def top_k_table(probabilities: np.ndarray, studies: list[dict]) -> np.ndarray:
    """One row per study, one column per k of ``TOP_K``: the mean of its k highest slice probabilities."""
    return np.array([[top_k_mean(probabilities[s["index"]], k) for k in TOP_K] for s in studies])


def _best_k(labels: np.ndarray, table: np.ndarray) -> int:
    """Index into TOP_K of the k with the highest study AUC on these studies (the smaller k on ties)."""
    return int(np.argmax([auc_or_none(labels, table[:, j]) or 0.0 for j in range(len(TOP_K))]))


def fold_widths(context: str, width: int, report: dict, folds: np.ndarray) -> list[int]:
    """Each fold's neighbour width for nested study scores: chosen on the other folds (``choose_context``'s
    ``width_per_fold``) when ``context`` is auto, else the width asked for, on every fold."""
    return report["width_per_fold"] if context == "auto" else [width] * len(np.unique(folds))


def nested_top_k(labels: np.ndarray, raw: np.ndarray, folds: np.ndarray, studies: list[dict],
                 widths: list[int] | None = None) -> tuple[np.ndarray, list[int]]:
    """Out-of-fold study scores by the top-k mean, nothing about a fold's own patients used to score them.

    Each fold's slices are read with the neighbour width chosen on the other folds (``widths``, one per
    fold in fold order; None: each slice alone), through the Platt scaling fitted on the other folds'
    slices, and its k is chosen (by AUC) on the other folds' studies. ``labels`` and ``raw`` are per slice.
    A fold with nothing to learn from (a run with one fold finished) is read uncalibrated, with k = 1.
    """
    study_labels = np.array([s["label"] for s in studies])
    study_folds = np.array([s["fold"] for s in studies])
    series = [s["index"] for s in studies]
    scores, chosen = np.zeros(len(studies)), []
    for fold, width in zip(np.unique(folds), widths or [0] * len(np.unique(folds))):
        read = in_series(raw, series, width) if width else raw
        other = folds != fold
        learnt = fit_platt(read[other], labels[other]) if len(set(labels[other].tolist())) == 2 else None
        table = top_k_table(platt(read, learnt), studies)
        best = _best_k(study_labels[study_folds != fold], table[study_folds != fold])
        scores[study_folds == fold] = table[study_folds == fold, best]
        chosen.append(TOP_K[best])
    return scores, chosen


def _sequence(oof: dict, study: dict) -> np.ndarray:
    return study_model.features(oof["embeddings"][study["index"]], oof["scores"][study["index"]])


def nested_study_scores(oof: dict, studies: list[dict], epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold study scores and refined slice scores: each fold's from a study model trained on the others."""
    study_scores = np.zeros(len(studies))
    refined = np.zeros(len(oof["scores"]))
    for k in sorted({s["fold"] for s in studies}):
        train = [s for s in studies if s["fold"] != k]
        model = study_model.fit([_sequence(oof, s) for s in train], [oof["labels"][s["index"]] for s in train], epochs)
        for i, s in enumerate(studies):
            if s["fold"] == k:
                refined[s["index"]], study_scores[i] = study_model.predict(model, _sequence(oof, s))
    return study_scores, refined


def run(oof_dir: str | Path, model_path: str | Path | None = None, epochs: int = 80, rule: str = "auto",
        score: str = "auto", context: str = "auto", weight: str = "0.5") -> dict:
    """Everything above; with ``model_path``, store the operating points and the study rule beside it.

    ``rule`` is the study score to store: ``top_k_mean``, ``study_model``, or ``auto`` for the one
    with the higher out-of-fold (nested) study AUC. ``score`` is the slice score (:func:`slice_score`),
    ``context`` the neighbour width of slices in a series (:func:`choose_context`), ``weight`` the decoder's
    weight in a joined slice score (:func:`decoder_weight`).
    """
    if rule not in RULES:
        raise ValueError(f"unknown study rule '{rule}': use one of {', '.join(RULES)}")
    oof = read_oof(oof_dir)
    chosen_score, oof["scores"], score_report = slice_score(oof, score, weight)
    if model_path is not None:  # refuse before minutes of study-model training, not after
        _check_decoder(Path(model_path), chosen_score)
    labels, raw, folds = oof["labels"].astype(int), oof["scores"].astype(float), oof["fold"]
    report: dict = {"oof_dir": str(oof_dir), "slices": int(len(labels)), "positives": int(labels.sum()),
                    "slice_score": score_report}

    # Slices: raw ranking, then calibration (nested for the honest Brier score) and the operating point.
    report["slice_raw"] = {**_per_fold(labels, raw, folds), "brier": float(brier_score_loss(labels, raw))}
    report["slice_calibrated"], nested_calibrated = _calibrated_report(labels, raw, folds)
    calibration, slice_threshold = report["slice_calibrated"]["calibration"], report["slice_calibrated"]["threshold"]
    calibrated = platt(raw, calibration)

    # Slices of a series, read with their neighbours: their own calibration and operating point.
    studies = studies_of(oof)
    width, report["context"] = choose_context(labels, raw, folds, [s["index"] for s in studies], context,
                                              oof["patients"])
    in_study = calibrated
    if width:
        read = in_series(raw, [s["index"] for s in studies], width)
        report["context"].update(_calibrated_report(labels, read, folds)[0])
        in_study = platt(read, report["context"]["calibration"])

    # Studies: the highest calibrated slice (the rule for a short series, without neighbours), then the study
    # rules over the slices as a series reads them.
    study_labels = np.array([s["label"] for s in studies])
    study_folds = np.array([s["fold"] for s in studies])
    highest = np.array([calibrated[s["index"]].max() for s in studies])
    report["study_highest_slice"] = {**_per_fold(study_labels, highest, study_folds),
                                     "at_slice_threshold": rates(study_labels, highest, slice_threshold),
                                     "nested": _nested_rates(study_labels, highest, study_folds, at_sensitivity)}
    top_k, chosen = nested_top_k(labels, raw, folds, studies, fold_widths(context, width, report["context"], folds))
    table = top_k_table(in_study, studies)
    k = TOP_K[_best_k(study_labels, table)]  # for a new study: chosen on every out-of-fold study
    top_calibration = fit_platt(table[:, TOP_K.index(k)], study_labels)
    top_probability = platt(table[:, TOP_K.index(k)], top_calibration)
    top_threshold = at_sensitivity(study_labels, top_probability)
    report["study_top_k_mean"] = {**_per_fold(study_labels, top_k, study_folds), "k_per_fold": chosen, "k": k,
                                  "calibration": top_calibration, "threshold": top_threshold,
                                  **rates(study_labels, top_probability, top_threshold),
                                  "nested": _nested_rates(study_labels, top_k, study_folds, at_sensitivity)}
    study_raw, refined = nested_study_scores(oof, studies, epochs)
    study_calibration = fit_platt(study_raw, study_labels)
    study_probability = platt(study_raw, study_calibration)
    study_threshold = at_sensitivity(study_labels, study_probability)
    report["study_model"] = {
        **_per_fold(study_labels, study_raw, study_folds), "epochs": epochs, "calibration": study_calibration,
        "threshold": study_threshold, **rates(study_labels, study_probability, study_threshold),
        "nested": _nested_rates(study_labels, study_raw, study_folds, at_sensitivity),
        "brier": float(brier_score_loss(study_labels, study_probability)),
        "refined_slices": _per_fold(labels, refined, folds)}
    report["patients"] = [{"patient": s["patient"], "label": s["label"], "fold": s["fold"],
                           "highest_slice": round(float(h), 4), "study_model": round(float(p), 4)}
                          for s, h, p in zip(studies, highest, study_probability)]

    if rule == "auto":  # both AUCs are nested: each patient scored by a k or a study model chosen without it
        rule = "top_k_mean" if report["study_top_k_mean"]["auc"] >= report["study_model"]["auc"] else "study_model"
    report["study_rule"] = rule
    nested = top_k if rule == "top_k_mean" else study_raw
    report["evaluation"] = _evaluation(oof, report, calibrated, nested_calibrated, nested, studies)
    if model_path is not None:
        _store(Path(model_path), oof, studies, epochs, calibration, slice_threshold, report)
    return report


def _nested_calibrated(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's scores through the Platt scaling fitted on the other folds."""
    out = np.zeros_like(scores)
    for k in np.unique(folds):
        out[folds == k] = platt(scores[folds == k], fit_platt(scores[folds != k], labels[folds != k]))
    return out


def _calibrated_report(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> tuple[dict, np.ndarray]:
    """Platt scaling and the Youden operating point of a slice score, fitted on all folds and nested; with the
    nested calibrated scores themselves (what ``--evaluation`` judges at nested operating points)."""
    nested = _nested_calibrated(labels, scores, folds)
    calibration = fit_platt(scores, labels)
    calibrated = platt(scores, calibration)
    threshold = youden(labels, calibrated)
    return {"calibration": calibration, "brier": float(brier_score_loss(labels, calibrated)),
            "brier_nested": float(brier_score_loss(labels, nested)),
            "threshold": threshold, **rates(labels, calibrated, threshold),
            "nested": _nested_rates(labels, nested, folds, youden), "reliability": reliability(labels, nested)}, nested


def _evaluation(oof: dict, report: dict, calibrated: np.ndarray, nested_calibrated: np.ndarray,
                nested_study: np.ndarray, studies: list[dict]) -> dict:
    """The out-of-fold numbers in ``hemo evaluate --json``'s format: what to show for a model trained on all patients.

    Such a model has no patients left to be measured on; its recipe's CV is the honest measurement. The
    AUCs are pooled over the out-of-fold predictions; sensitivity, specificity and the confusion matrix
    are nested (each fold judged at the operating point chosen on the other folds), as a new patient
    would meet them; ``threshold`` and ``study_threshold`` are the stored operating points.
    """
    from hemo.evaluate import report as slice_report

    labels, folds = oof["labels"].astype(int), oof["fold"]
    slices = report["slice_calibrated"]
    metrics = slice_report(labels, calibrated, slices["threshold"], oof["patients"],
                           predicted=nested_predicted(labels, nested_calibrated, folds, youden))
    study_labels = np.array([s["label"] for s in studies])
    study_folds = np.array([s["fold"] for s in studies])
    called = nested_predicted(study_labels, nested_study, study_folds, at_sensitivity)
    top_k = report["study_rule"] == "top_k_mean"
    rule = report["study_top_k_mean"] if top_k else report["study_model"]
    metrics.update({
        "title": f"Out-of-fold: patient-grouped {len(np.unique(folds))}-fold CV of this model's recipe "
                 f"({len(studies)} patients); sensitivity and specificity at operating points chosen on the "
                 "other folds",
        "auc_fold_mean": report["slice_raw"]["fold_auc_mean"], "auc_fold_sd": report["slice_raw"]["fold_auc_sd"],
        "brier": slices["brier_nested"],
        "studies": len(studies),
        "study_method": f"mean of the top {rule['k']} slices" if top_k else "study model",
        "study_auc": rule["auc"], "study_threshold": rule["threshold"],
        "study_sensitivity": float(called[study_labels == 1].mean()),
        "study_specificity": float((~called)[study_labels == 0].mean())})
    context = report["context"]
    if context["width"]:  # the slices of an ordered series, each read with its neighbours (nested, as above)
        metrics.update({"context_width": context["width"], "context_slices": len(labels),
                        "context_auc": context["auc_nested"]["auc"], "context_auc_ci": context["auc_nested"]["auc_ci"],
                        "context_threshold": context["threshold"], "context_brier": context["brier_nested"],
                        "context_sensitivity": context["nested"]["sensitivity"],
                        "context_specificity": context["nested"]["specificity"]})
    return metrics


def _check_decoder(model_path: Path, score: str) -> None:
    """A slice score that reads the bleed map can only be stored on a model that has a decoder."""
    if cells_of(score) and not json.loads(info_path(model_path).read_text()).get("bleed"):
        raise ValueError(f"the out-of-fold slice score combines the head with the bleed decoder, and {model_path.name} "
                         "has no decoder beside it: train it with --mask-weight, or calibrate with --slice-score head")


def _store(model_path: Path, oof: dict, studies: list[dict], epochs: int, calibration: dict, slice_threshold: float,
           report: dict) -> None:
    from hemo.model import ModelInfo

    meta = info_path(model_path)
    info = ModelInfo(**json.loads(meta.read_text()))
    score = report["slice_score"]["chosen"]
    info.threshold, info.calibration, info.slice_score = slice_threshold, calibration, score
    info.decoder_weight = report["slice_score"]["decoder_weight"] or 0.5
    context = report["context"]
    info.context = ({"width": context["width"], "calibration": context["calibration"],
                     "threshold": context["threshold"]} if context["width"] else None)
    if report["study_rule"] == "top_k_mean":
        top = report["study_top_k_mean"]
        info.study = {"score": "top_k_mean", "k": top["k"], "threshold": top["threshold"],
                      "calibration": top["calibration"]}
        how = (f"mean of the top {top['k']} calibrated slice probabilities"
               f"{' (each read with its neighbours)' if info.context else ''} (k by out-of-fold study AUC), "
               "Platt-scaled")
    else:
        final = study_model.fit([_sequence(oof, s) for s in studies], [oof["labels"][s["index"]] for s in studies],
                                epochs)
        study_file = model_path.with_name(model_path.stem + "-study.weights.h5")
        study_model.save(final, study_file)
        info.study = {"score": "study_model", "file": study_file.name, "threshold": report["study_model"]["threshold"],
                      "calibration": report["study_model"]["calibration"], "epochs": epochs}
        how = "study model (BiGRU) over the ordered out-of-fold embeddings, Platt-scaled"
    info.provenance = {
        "chosen_on": f"out-of-fold predictions of patient-grouped {len(set(oof['fold'].tolist()))}-fold CV "
                     f"({report['slices']} slices, {len(studies)} patients) in {report['oof_dir']}",
        "slice_score": ("the paper model's probability" if score == "head" else
                        "mean of the logits of the paper model's probability and of its bleed decoder's "
                        + ("peak" if cells_of(score) == 1 else f"{cells_of(score)} highest map cells (their mean)")
                        + ("" if info.decoder_weight == 0.5 else f", the decoder's weighed {info.decoder_weight:g} "
                           "(by out-of-fold AUC)")),
        "slice_rule": "Youden index on calibrated out-of-fold slice probabilities",
        "context": (f"in an ordered series of at least {min_series(info)} slices, each slice is read with the "
                    f"{context['width']} slices on either side (mean logit; width by out-of-fold AUC), with its own "
                    "calibration and Youden operating point" if info.context else
                    "none: every slice is read alone (no width beat it out of fold)"),
        "study_score": how,
        "study_rule": f"highest threshold with out-of-fold study sensitivity >= {STUDY_SENSITIVITY}",
        "calibration": "Platt scaling of the logit, fitted on the same out-of-fold predictions"}
    meta.write_text(json.dumps(asdict(info), indent=2) + "\n")
