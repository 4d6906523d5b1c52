"""About / model card page: what the model is, its measured numbers, and its limits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hemo.app import resources

st.title("About hemo and its model")
st.warning(resources.NOTICE)
metrics = resources.shipped_json("evaluation.json")
if metrics:
    ci = metrics.get("auc_ci") or [None, None]
    st.subheader("Measured on the validation patients")
    st.table(pd.DataFrame([
        {"metric": "ROC AUC (slice level)", "value": f"{metrics['auc']:.3f} (95% CI {ci[0]:.3f}–{ci[1]:.3f})"},
        {"metric": "Sensitivity at threshold", "value": f"{metrics['sensitivity']:.3f}"},
        {"metric": "Specificity at threshold", "value": f"{metrics['specificity']:.3f}"},
        {"metric": "Operating threshold", "value": f"{metrics['threshold']:.3f}"},
        {"metric": "Patient-level AUC", "value": "n/a" if metrics.get("patient_auc") is None else f"{metrics['patient_auc']:.3f}"},
        {"metric": "Slices / with haemorrhage", "value": f"{metrics['n']} / {metrics['positives']}"},
    ]))
card = resources.MODELS / "MODEL_CARD.md"
if card.exists():
    st.markdown(card.read_text())
else:
    st.info("No model card in models/.")
