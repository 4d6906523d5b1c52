"""Training dashboard: the history JSON (the paper's Figs. 5-8) and the evaluation report."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from hemo import history, plots
from hemo.app import resources


def _history_section() -> None:
    upload = st.file_uploader("Another history JSON (Keras History.history or hemo's history.json)", type=["json"])
    source = upload.getvalue() if upload else resources.MODELS / "history.json"
    if not upload and not source.exists():
        st.info("No models/history.json here: upload a history JSON to plot it.")
        return
    try:
        table, run = history.read(source)
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        st.error(f"Cannot read this history: {error}")
        return
    st.caption(f"Showing {'the uploaded history' if upload else 'models/history.json'} — {len(table)} epochs"
               + (f", backbone {run.get('backbone')}, {run.get('split')}-level split" if run else ""))
    st.plotly_chart(plots.curves(table), key="curves")
    left, right = st.columns(2)
    left.plotly_chart(plots.gap(table), key="gap")
    right.plotly_chart(plots.loss_vs_accuracy(table), key="scatter")
    left, right = st.columns(2)
    left.plotly_chart(plots.smoothed_accuracy(table), key="smoothed")
    if "learning_rate" in table:
        right.plotly_chart(plots.learning_rate(table), key="lr")
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
    ci = metrics.get("auc_ci") or [float("nan")] * 2
    columns = st.columns(4)
    columns[0].metric("ROC AUC", f"{metrics['auc']:.3f}", help=f"95% bootstrap interval {ci[0]:.3f}-{ci[1]:.3f}")
    columns[0].caption(f"95% CI {ci[0]:.3f}–{ci[1]:.3f}")
    columns[1].metric("Sensitivity", f"{metrics['sensitivity']:.3f}")
    columns[2].metric("Specificity", f"{metrics['specificity']:.3f}")
    columns[3].metric("Patient-level AUC", "n/a" if metrics.get("patient_auc") is None else f"{metrics['patient_auc']:.3f}")
    st.caption(f"{metrics['n']} slices, {metrics['positives']} with haemorrhage; threshold {metrics['threshold']:.3f}. "
               + (metrics.get("note") or ""))
    left, right = st.columns(2)
    left.plotly_chart(plots.confusion(metrics), key="confusion")
    if metrics.get("roc", {}).get("fpr"):
        right.plotly_chart(plots.roc(metrics), key="roc")
    report = pd.DataFrame(metrics["per_class"]).T.reset_index(names="class")
    st.subheader("Classification report")
    st.table(report)


st.title("Training dashboard")
tab_history, tab_evaluation = st.tabs(["Training history", "Evaluation"])
with tab_history:
    _history_section()
with tab_evaluation:
    _evaluation_section()
