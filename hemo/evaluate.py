"""The numbers a radiologist asks for: AUC with its interval, sensitivity and specificity at the
operating threshold, the confusion matrix, the paper's classification report, and patient-level AUC.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score, roc_curve

from hemo.model import CLASSES


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the best Youden index (sensitivity + specificity - 1) on these slices."""
    if len(set(np.asarray(labels).tolist())) < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of 0/1 ``labels`` by the rank-sum (Mann-Whitney) formula, ties counted half: roc_auc_score's number.

    Bootstraps and out-of-fold choices compute it thousands of times, where roc_auc_score's input checks
    cost many times more than the AUC itself.
    """
    positives = np.asarray(labels) == 1
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if not n_pos or not n_neg:
        raise ValueError("an AUC needs slices of both classes")
    return float((rankdata(scores)[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _resamples(n_items: int, groups: np.ndarray | None, n: int, seed: int):
    """``n`` bootstrap index arrays, drawing whole patients when they are known (slices are not independent)."""
    rng = np.random.default_rng(seed)
    groups = None if groups is None else np.asarray(groups)  # a plain list compared with == gave no members
    units = np.unique(groups) if groups is not None else np.arange(n_items)
    members = [np.flatnonzero(groups == u) for u in units] if groups is not None else [[i] for i in units]
    for _ in range(n):
        yield np.concatenate([members[i] for i in rng.integers(0, len(units), len(units))])


def _interval(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray | None = None,
                  n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the AUC, resampling patients when they are known."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    return _interval([rank_auc(labels[pick], scores[pick]) for pick in _resamples(len(labels), groups, n, seed)
                      if len(set(labels[pick].tolist())) == 2])


def bootstrap_auc_difference(labels: np.ndarray, first: np.ndarray, second: np.ndarray,
                             groups: np.ndarray | None = None, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of AUC(second) - AUC(first) on the same cases, both scored on each resample.

    Two variants cross-validated on the same folds score the same patients: resampling them
    together keeps what the two have in common (hard patients are hard for both) out of the
    interval, which two separate intervals would count twice.
    """
    labels, first, second = np.asarray(labels), np.asarray(first), np.asarray(second)
    return _interval([rank_auc(labels[pick], second[pick]) - rank_auc(labels[pick], first[pick])
                      for pick in _resamples(len(labels), groups, n, seed) if len(set(labels[pick].tolist())) == 2])


def patient_scores(labels: np.ndarray, scores: np.ndarray, patients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per patient: has any haemorrhage slice, and its highest slice score."""
    unique = np.unique(patients)
    return (np.array([labels[patients == p].max() for p in unique]),
            np.array([scores[patients == p].max() for p in unique]))


def report(labels: np.ndarray, scores: np.ndarray, threshold: float, patients: np.ndarray | None = None,
           seed: int = 0, predicted: np.ndarray | None = None) -> dict:
    """All metrics under stable keys (see README): n, positives, accuracy, auc, auc_ci, sensitivity, ...

    The calls counted are ``scores >= threshold`` unless ``predicted`` gives them (out-of-fold
    predictions judged per fold at a threshold chosen on the other folds).
    """
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, dtype=float)
    predicted = (scores >= threshold if predicted is None else np.asarray(predicted)).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=[0, 1], zero_division=0)
    both = len(set(labels.tolist())) == 2
    fpr, tpr, _ = roc_curve(labels, scores) if both else ([], [], [])
    result = {
        "n": int(len(labels)),
        "positives": int(labels.sum()),
        "accuracy": float((predicted == labels).mean()),
        "auc": float(roc_auc_score(labels, scores)) if both else None,
        "auc_ci": list(bootstrap_auc(labels, scores, patients, seed=seed)) if both else None,
        "sensitivity": float(tp / (tp + fn)) if tp + fn else None,
        "specificity": float(tn / (tn + fp)) if tn + fp else None,
        "threshold": float(threshold),
        "f1": float(f1[1]),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])} for i, name in enumerate(CLASSES)},
        "roc": {"fpr": [round(float(v), 4) for v in fpr], "tpr": [round(float(v), 4) for v in tpr]},
        "patient_auc": None,
    }
    if patients is not None:
        patient_labels, patient_max = patient_scores(labels, scores, np.asarray(patients))
        result["patients"] = int(len(patient_labels))
        if len(set(patient_labels.tolist())) == 2:
            result["patient_auc"] = float(roc_auc_score(patient_labels, patient_max))
    return result


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(metrics: dict) -> str:
    """The paper's classification report, the confusion matrix and the headline numbers as text; first, when the
    data holds slices the model was trained on (``hemo.seen``), a warning that these are not a new patient's numbers."""
    lines = []
    if metrics.get("trained_patients"):
        lines += [f"WARNING: {metrics['trained_slices']} of these {metrics['n']} slices ({metrics['trained_patients']} "
                  "patients) trained this model: its numbers on them are not what it does on new patients (the "
                  "cross-validated numbers are in its model card).", ""]
    lines.append(f"{'':>14}{'precision':>11}{'recall':>9}{'f1-score':>10}{'support':>9}")
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:>14}{row['precision']:>11.3f}{row['recall']:>9.3f}{row['f1']:>10.3f}{row['support']:>9d}")
    lines.append(f"{'accuracy':>14}{'':>20}{metrics['accuracy']:>10.3f}{metrics['n']:>9d}")
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              f"{'':>14}{'normal':>9}{'haemorr.':>10}", f"{'normal':>14}{tn:>9d}{fp:>10d}",
              f"{'haemorrhage':>14}{fn:>9d}{tp:>10d}", ""]

    ci = metrics.get("auc_ci") or [None, None]
    lines.append(f"ROC AUC {_number(metrics['auc'])} (95% CI {_number(ci[0])}-{_number(ci[1])})")
    lines.append(f"threshold {metrics['threshold']:.3f}: sensitivity {_number(metrics['sensitivity'])}, "
                 f"specificity {_number(metrics['specificity'])}")
    if "patients" in metrics:
        lines.append(f"patient-level AUC (highest slice per patient, {metrics['patients']} patients): "
                     f"{_number(metrics['patient_auc'])}")
    if "study_auc" in metrics:
        lines.append(study_line(metrics))
    if "context_auc" in metrics:
        lines.append(f"slices of a series read with {metrics['context_width']} neighbours on either side: AUC "
                     f"{_number(metrics['context_auc'])}; threshold {_number(metrics['context_threshold'])}: "
                     f"sensitivity {_number(metrics['context_sensitivity'])}, specificity "
                     f"{_number(metrics['context_specificity'])}")
    if metrics.get("brier") is not None:
        lines.append(f"Brier score of the shown probabilities: {metrics['brier']:.4f}")
    return "\n".join(lines)


def study_line(metrics: dict) -> str:
    """The study keys of an evaluation in one line."""
    return (f"study level ({metrics['study_method']}, {metrics['studies']} studies): AUC "
            f"{_number(metrics['study_auc'])}; threshold {_number(metrics['study_threshold'])}: sensitivity "
            f"{_number(metrics['study_sensitivity'])}, specificity {_number(metrics['study_specificity'])}")


def study_metrics(labels, scores, thresholds, methods: set[str]) -> dict:
    """The study keys of an evaluation (``study_auc``, ``study_sensitivity``, ...): each study called at the
    operating point of the rule that scored it (``thresholds``, one per study; ``methods``: those rules)."""
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, float)
    thresholds = np.asarray(thresholds, float)
    predicted = scores >= thresholds
    return {
        "studies": len(labels),
        "study_method": " / ".join(sorted(methods)),  # two methods: some studies were too short for the rule
        "study_auc": float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None,
        "study_threshold": float(thresholds[0]) if len(set(thresholds.tolist())) == 1 else None,
        "study_sensitivity": float(predicted[labels == 1].mean()) if (labels == 1).any() else None,
        "study_specificity": float((~predicted)[labels == 0].mean()) if (labels == 0).any() else None,
    }


def scored(model, info, model_path, data) -> dict:
    """Every slice of ``data`` scored as the app scores it (``raw``, calibrated ``shown``, ``read`` with its
    neighbours where its series is long enough, else NaN) and every patient's series verdict (``studies``: patient,
    label, score, threshold, method). A study is one patient, its slices in the natural order of their file names,
    scored as the app and the CLI score an ordered series (``hemo.study.series_score``)."""
    from pathlib import Path

    from hemo import bleed, study_model
    from hemo.imaging import natural_key
    from hemo.model import embed
    from hemo.study import in_context, series_score

    raw, embeddings = embed(model, data.inputs())
    if bleed.cells_of(info.slice_score):  # the score the operating points were chosen on, as the app computes it
        decoder = bleed.load_decoder(Path(model_path).parent / info.bleed["file"])
        raw = bleed.combined(raw, bleed.decoder_peaks(model, decoder, data.inputs(),
                                                      cells=bleed.cells_of(info.slice_score)), info.decoder_weight)
    shown = info.calibrate(raw)
    stored = (info.study or {}).get("file")
    net = study_model.load(Path(model_path).parent / stored) if stored else None
    studies, read = [], np.full(len(shown), np.nan)
    for patient in np.unique(data.patients):
        index = np.flatnonzero(data.patients == patient)
        index = np.array(sorted(index, key=lambda i: natural_key(str(data.names[i]))))
        neighbours = in_context(raw[index], info)
        if neighbours is not None:
            read[index] = neighbours
        score, threshold, method, _ = series_score(shown[index], raw[index], embeddings[index], info, net)
        studies.append({"patient": str(patient), "label": int(data.labels[index].max()), "score": float(score),
                        "threshold": float(threshold), "method": method})
    return {"raw": raw, "shown": shown, "read": read, "studies": studies}


def study_report(model, info, model_path, data) -> dict:
    """:func:`report` on the shown (calibrated) slice probabilities, plus the study level (:func:`scored`), the Brier
    score, and how many of the slices trained the model (``hemo.seen``)."""
    from sklearn.metrics import brier_score_loss

    from hemo.seen import seen

    found = scored(model, info, model_path, data)
    shown, read, studies = found["shown"], found["read"], found["studies"]
    metrics = report(data.labels, shown, info.threshold, data.patients)
    trained = seen(data.images, info.trained_on)  # its own training slices again?
    metrics["trained_slices"] = int(trained.sum())
    metrics["trained_patients"] = len(np.unique(data.patients[trained]))
    metrics["brier"] = float(brier_score_loss(data.labels, shown)) if len(data.labels) else None
    metrics.update(study_metrics([s["label"] for s in studies], [s["score"] for s in studies],
                                 [s["threshold"] for s in studies], {s["method"] for s in studies}))
    if info.context and np.isfinite(read).any():  # the slices the context read, at the context's operating point
        kept = np.isfinite(read)
        within = report(data.labels[kept], read[kept], info.context["threshold"], data.patients[kept])
        metrics.update({"context_width": int(info.context["width"]), "context_slices": int(kept.sum()),
                        "context_auc": within["auc"], "context_auc_ci": within["auc_ci"],
                        "context_threshold": float(info.context["threshold"]),
                        "context_sensitivity": within["sensitivity"], "context_specificity": within["specificity"],
                        "context_brier": float(brier_score_loss(data.labels[kept], read[kept]))})
    return metrics
