"""Training dashboard: the history JSON (the paper's Figs. 5-8) and the evaluation report."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from hemo import history, plots
from hemo.app import resources


def _history_section() -> None:
    upload = st.file_uploader("Another history JSON (Keras History.history or hemo's history.json)", type=["json"])
    source = upload.getvalue() if upload else resources.model_path().parent / "history.json"
    if not upload and not source.exists():
        st.info("No models/history.json here: upload a history JSON to plot it.")
        return
    try:
        table, run = history.read(source)
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        st.error(f"Cannot read this history: {error}")
        return
    split = run.get("split")
    how = "trained on every patient" if split == "none" else f"{split}-level split"
    st.caption(f"Showing {'the uploaded history' if upload else 'models/history.json'} — {len(table)} epochs"
               + (f", backbone {run.get('backbone')}, {how}" if run else ""))
    if "gap" not in table:
        st.info("No validation curves in this history (a final model trains on every patient for a fixed number "
                "of epochs; its out-of-fold numbers are in the Evaluation tab).")
    st.plotly_chart(plots.curves(table), key="curves")
    charts = [(plots.gap, "gap")] if "gap" in table else []
    charts += [(plots.loss_vs_accuracy, "scatter"), (plots.smoothed_accuracy, "smoothed")]
    charts += [(plots.learning_rate, "lr")] if "learning_rate" in table else []
    charts += [(plots.bleed_loss, "bleed")] if "bleed_loss" in table else []
    for start in range(0, len(charts), 2):  # two per row, no empty slot
        for column, (figure, key) in zip(st.columns(2), charts[start:start + 2]):
            column.plotly_chart(figure(table), key=key)
    with st.expander("Per-epoch numbers"):
        st.dataframe(table, hide_index=True)


def _evaluation_section() -> None:
    upload = st.file_uploader("Another evaluation JSON (from python -m hemo evaluate --json)", type=["json"])
    try:
        metrics = json.loads(upload.getvalue()) if upload else resources.shipped_json("evaluation.json")
    except ValueError as error:
        st.error(f"Cannot read this evaluation: {error}")
        return
    if not metrics:
        st.info("No evaluation JSON yet: run `python -m hemo evaluate DATA --json models/evaluation.json`.")
        return
    number = resources.number
    if metrics.get("title"):
        st.subheader(metrics["title"])
    ci = metrics.get("auc_ci") or [None, None]
    columns = st.columns(4)
    columns[0].metric("ROC AUC", number(metrics.get("auc")),
                      help=f"95% bootstrap interval {number(ci[0])}-{number(ci[1])}")
    columns[0].caption(f"95% CI {number(ci[0])}–{number(ci[1])}")
    columns[1].metric("Sensitivity", number(metrics.get("sensitivity")))
    columns[2].metric("Specificity", number(metrics.get("specificity")))
    columns[3].metric("Patient-level AUC", number(metrics.get("patient_auc")))
    st.caption(f"{metrics.get('n')} slices, {metrics.get('positives')} with haemorrhage; threshold "
               f"{number(metrics.get('threshold'))}. " + (metrics.get("note") or ""))
    left, right = st.columns(2)
    if metrics.get("confusion_matrix"):
        left.plotly_chart(plots.confusion(metrics), key="confusion")
    if metrics.get("roc", {}).get("fpr") and metrics.get("auc") is not None:
        right.plotly_chart(plots.roc(metrics), key="roc")
    if metrics.get("per_class"):
        report = pd.DataFrame(metrics["per_class"]).T.reset_index(names="class")
        st.subheader("Classification report")
        st.table(report)


st.title("Training dashboard")
tab_history, tab_evaluation = st.tabs(["Training history", "Evaluation"])
with tab_history:
    _history_section()
with tab_evaluation:
    _evaluation_section()
