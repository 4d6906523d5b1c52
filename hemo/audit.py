"""An archive's results against its own labels: what ``hemo batch`` found, measured as ``hemo evaluate`` measures.

An auditor runs ``hemo batch`` over a labelled archive and then asks how the model did there, at the operating
points it shipped with. The labels are a CSV with a ``label`` column (1: haemorrhage, 0: none) and a key:
``file`` (one label per file, as the batch names it: every frame of a multi-frame file takes it) or
``study_uid`` (one per study). Slice labels give the slice metrics and, for each series whose analysed slices
are all labelled, a series label (any slice with haemorrhage); study labels give the series metrics only. A
study's series are judged apart, as the batch judged them. Nothing here loads a model: the batch rows carry
each slice's probability and threshold, and ``<out>-studies.csv`` each series' verdict.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hemo import seen

KEYS = ("file", "study_uid")


def read_labels(path: Path) -> tuple[str, pd.DataFrame]:
    """(key column, labels with that key and an integer ``label``), refusing what cannot be read one way."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    key = next((k for k in KEYS if k in table.columns), None)
    if key is None or "label" not in table.columns:
        raise ValueError(f"{path} needs a 'label' column and a 'file' or 'study_uid' column; it has "
                         f"{', '.join(table.columns) or 'none'}")
    values = table["label"].str.strip().str.lower().map({"1": 1, "0": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0})
    if values.isna().any():
        bad = table["label"][values.isna()].iloc[0]
        raise ValueError(f"{path}: every label must be 1 (haemorrhage) or 0 (none); found {bad!r}")
    if table[key].duplicated().any():
        raise ValueError(f"{path}: {key} {table[key][table[key].duplicated()].iloc[0]!r} is labelled twice")
    return key, pd.DataFrame({key: table[key], "label": values.astype(int)})


def _series(rows: pd.DataFrame) -> pd.Series:
    """Each row's series, as the batch grouped them (UIDs; the folder where a file had none)."""
    return rows["study_uid"].astype(str) + "/" + rows["series_uid"].astype(str)


def expected(metrics: dict, model: Path) -> dict | None:
    """What the model's own evaluation (``evaluation.json`` beside it) measured at the same operating points, when
    the rows were scored by that model file; the study numbers only for the rule the series were judged by."""
    from hemo.model import evaluation
    from hemo.options import version

    shipped = evaluation(model) if metrics["model"] == [version(model)] else None
    if shipped is None:
        return None
    keys = ["auc", "sensitivity", "specificity"]
    if shipped.get("study_method") == metrics.get("study_method"):
        keys += ["study_auc", "study_sensitivity", "study_specificity"]
    return {"title": shipped.get("title", "the model's evaluation"), **{k: shipped.get(k) for k in keys}}


def audit(out: str | Path, labels_path: str | Path, model: str | Path | None = None) -> dict:
    """The metrics of ``hemo evaluate --json`` (slice keys with slice labels, study keys for the series) on the
    labelled part of a batch output, with what could not be matched counted under ``labelled`` and, given the
    ``model`` that scored the rows, what its own evaluation expected under ``expected``."""
    from hemo.evaluate import report, study_metrics

    out, labels_path = Path(out), Path(labels_path)
    if not out.exists() or not any(out.glob("*.parquet")):
        raise ValueError(f"{out} holds no results of 'hemo batch'")
    rows = pd.read_parquet(out)
    key, labels = read_labels(labels_path)
    found = labels[key].isin(set(rows[key].astype(str)))
    if not found.any():
        raise ValueError(f"none of the {len(labels)} labelled {key} values of {labels_path} is in {out} (a file is "
                         "named as the batch listed it: the path given to 'hemo batch', then its place under it)")
    counted = {"labels": int(len(labels)), "not_in_results": int((~found).sum())}
    rows = rows.assign(series=_series(rows))
    scored = rows[rows["probability"].notna()]
    metrics: dict = {"model": sorted(set(rows["model"])) if "model" in rows else None}
    if key == "file":
        labelled = scored.merge(labels, on="file")
        counted["errors"] = int(rows.merge(labels, on="file")["probability"].isna().sum())
        if labelled.empty:
            raise ValueError(f"none of the labelled files of {labels_path} was analysed: each is an error row in {out}")
        thresholds = labelled["threshold"].unique()
        if len(thresholds) > 1:
            raise ValueError(f"{out} holds slices judged at {len(thresholds)} operating points (older runs of "
                             "several models): audit one model's output")
        studies = labelled["study_uid"].where(labelled["study_uid"] != "", labelled["series"])  # a patient, nearly
        metrics.update(report(labelled["label"].to_numpy(), labelled["probability"].to_numpy(), float(thresholds[0]),
                              studies.to_numpy()))
        counted["trained"] = _trained(labelled)
        share = scored.assign(known=scored["file"].isin(set(labels["file"]))).groupby("series")["known"].mean()
        series_labels = labelled[labelled["series"].isin(share[share == 1].index)].groupby("series")["label"].max()
        counted["series_partly_labelled"] = int(((share > 0) & (share < 1)).sum())
    else:
        series_labels = scored.drop_duplicates("series").merge(labels, on="study_uid").set_index("series")["label"]
        counted["trained"] = _trained(scored[scored["study_uid"].isin(set(labels["study_uid"]))])
    studies_csv = out.with_name(out.stem + "-studies.csv")
    if studies_csv.exists() and len(series_labels):  # else no series metrics: rerun the batch to write them
        verdicts = pd.read_csv(studies_csv, dtype={"study_uid": str, "series_uid": str}, keep_default_na=False)
        verdicts = verdicts.assign(series=_series(verdicts)).set_index("series")
        missing = ~series_labels.index.isin(verdicts.index)  # an interrupted batch: its last run wrote none for them
        counted["series_without_verdict"] = int(missing.sum())
        series_labels = series_labels[~missing]
        verdicts = verdicts.loc[series_labels.index]
        metrics.update(study_metrics(series_labels.to_numpy(), verdicts["probability"].to_numpy(float),
                                     verdicts["threshold"].to_numpy(float), set(verdicts["method"])))
    metrics["labelled"] = counted
    if model is not None:
        metrics["expected"] = expected(metrics, Path(model))
    return metrics


def _trained(rows: pd.DataFrame) -> int:
    """How many of these slice rows the model was trained on (its note says so, ``hemo.seen``)."""
    return int(rows["note"].str.contains(seen.NOTE, regex=False).sum()) if "note" in rows else 0


def format_audit(metrics: dict) -> str:
    """``hemo.evaluate.format_report`` where there are slice metrics; the study line alone where there are not."""
    from hemo.evaluate import format_report, study_line

    counted = metrics["labelled"]
    lines = [f"models: {', '.join(metrics['model'] or ['not recorded'])}",
             f"labels: {counted['labels']}, of which {counted['not_in_results']} not in the results"
             + (f", {counted['errors']} on files not analysed (error rows)" if "errors" in counted else "")
             + (f"; {counted['series_partly_labelled']} series partly labelled, left out of the series metrics"
                if counted.get("series_partly_labelled") else "")
             + (f"; {counted['series_without_verdict']} series without a verdict in the -studies.csv (run the same "
                "'hemo batch' again to write it)" if counted.get("series_without_verdict") else "")]
    if counted.get("trained"):
        lines.append(f"WARNING: {counted['trained']} of the labelled slices trained this model: its numbers on them "
                     "are not what it does on new patients (the cross-validated numbers are in its model card).")
    shipped = metrics.get("expected")
    if shipped:
        def said(prefix: str) -> str:
            values = [shipped.get(f"{prefix}{k}") for k in ("auc", "sensitivity", "specificity")]
            return ", ".join(f"{name} {value:.3f}" for name, value in zip(("AUC", "sensitivity", "specificity"), values)
                             if value is not None)
        lines.append(f"expected ({shipped['title']}): slices {said('')}"
                     + (f"; studies {said('study_')}" if "study_auc" in shipped else ""))
    if "per_class" in metrics:
        return "\n".join([*lines, format_report(metrics)])
    if "study_auc" in metrics:
        lines.append(study_line(metrics))
    return "\n".join(lines)
