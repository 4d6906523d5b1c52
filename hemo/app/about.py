"""About / model card page: what the model is, its measured numbers, and its limits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hemo.app import resources
from hemo.trust import REPLICATED, replicate_range

st.title("About hemo and its model")
st.warning(resources.NOTICE)
if resources.model_path().exists():  # what a report or a bug report should name
    st.caption(f"Model in use: {resources.model_version(str(resources.model_path()))}")
metrics = resources.shipped_json("evaluation.json")
number = resources.number
if metrics:
    ci = metrics.get("auc_ci") or [None, None]
    st.subheader(metrics.get("title", "Measured on the validation patients"))
    rows = [
        {"metric": "ROC AUC (slice level)",
         "value": f"{number(metrics.get('auc'))} (95% CI {number(ci[0])}–{number(ci[1])})"},
        {"metric": "Slice sensitivity at the slice threshold", "value": number(metrics.get("sensitivity"))},
        {"metric": "Slice specificity at the slice threshold", "value": number(metrics.get("specificity"))},
        {"metric": "Slice operating threshold", "value": number(metrics.get("threshold"))},
        {"metric": "Patient AUC of each patient's highest slice", "value": number(metrics.get("patient_auc"))},
        {"metric": "Slices / with haemorrhage", "value": f"{metrics.get('n')} / {metrics.get('positives')}"},
    ]
    study_rule = metrics.get("study_method", "the study rule")
    for key, label in (("auc_fold_mean", "ROC AUC (slice level), mean over the CV folds"),
                       ("study_auc", f"Study AUC ({study_rule})"),
                       ("study_sensitivity", "Study sensitivity at study threshold"),
                       ("study_specificity", "Study specificity at study threshold"),
                       ("study_threshold", "Study operating threshold"), ("brier", "Brier score"),
                       ("context_auc", "ROC AUC of the slices of a series read with their neighbours"),
                       ("context_sensitivity", "Sensitivity of those at their threshold"),
                       ("context_specificity", "Specificity of those at their threshold"),
                       ("context_threshold", "Their operating threshold")):
        if key in metrics:
            rows.append({"metric": label, "value": number(metrics[key])})
    runs = len(metrics.get("replicates") or [])
    for key, label in REPLICATED.items():
        spread = replicate_range(metrics, key)
        if spread:
            rows.append({"metric": f"{label}, {runs} more CV run{'s' if runs > 1 else ''} of the same recipe",
                         "value": f"{number(spread[0])}–{number(spread[1])}"})
    st.table(pd.DataFrame(rows))
card = resources.model_path().parent / "MODEL_CARD.md"
if card.exists():
    st.markdown(card.read_text())
else:
    st.info("No model card in models/.")
