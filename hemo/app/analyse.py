"""Analyse page: drop slices, get verdicts with Grad-CAM and attention, per slice and per series."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hemo import plots
from hemo.analysis import SliceResult, study
from hemo.app import resources
from hemo.imaging import WINDOW_NAMES

TYPES = ["png", "jpg", "jpeg", "dcm", "dicom"]
STEP_HELP = ("A *pseudo-time step* is one of 10 chunks of 128 features that the EfficientNet summary of the "
             "slice is cut into; the BiLSTM reads them in order and each row shows where that step looks.")


def _verdict_line(result: SliceResult) -> str:
    colour = "red" if result.probability >= result.threshold else "green"
    return (f":{colour}[**{result.verdict}**] — probability {result.probability:.3f} "
            f"(threshold {result.threshold:.3f})")


def _label(result: SliceResult) -> str:
    return result.source if result.frame == 0 else f"{result.source} [frame {result.frame}]"


def _thumbnails(results: list[SliceResult]) -> None:
    columns = st.columns(4)
    for index, result in enumerate(results):
        with columns[index % 4]:
            st.image(result.slice.pixels.astype("uint8"), caption=f"{_label(result)}: {result.verdict} "
                     f"({result.probability:.2f})", width="stretch")


def _details(index: int, result: SliceResult, opacity: float, expanded: bool) -> None:
    with st.expander(_label(result), expanded=expanded):
        st.markdown(_verdict_line(result))
        for warning in result.warnings:
            st.info(warning)
        left, right = st.columns(2)
        left.image(result.slice.pixels.astype("uint8"), caption="slice as the model sees it", width="stretch")
        right.image(result.overlay(opacity), caption="Grad-CAM of the EfficientNet stage", width="stretch")
        st.plotly_chart(plots.attention(result.attention), key=f"attention-{index}")
        st.caption(STEP_HELP)
        technical = dict(result.slice.info)
        if result.position is not None:
            technical["slice position (mm)"] = round(result.position, 2)
        st.caption(" · ".join(f"{k}: {v}" for k, v in technical.items()))


def _table(results: list[SliceResult]) -> pd.DataFrame:
    return pd.DataFrame([{"file": r.source, "frame": r.frame,
                          "probability": None if r.error else round(r.probability, 4),
                          "verdict": "error" if r.error else r.verdict,
                          "threshold": None if r.error else round(r.threshold, 4), "error": r.error or ""}
                         for r in results])


def page() -> None:
    st.title("Analyse CT slices")
    st.warning(resources.NOTICE)
    path = resources.model_path()
    analyzer = resources.analyzer(str(path))
    if analyzer is None:
        resources.no_model_help(path)
        return
    with st.sidebar:
        window = st.selectbox("DICOM window", WINDOW_NAMES, help="brain 40/80, subdural 80/200, bone 600/2800 HU, "
                              "or the window stored in the file; re-runs the analysis")
        method = st.radio("Explanation", ["gradcam", "gradcam++"], format_func={"gradcam": "Grad-CAM",
                          "gradcam++": "Grad-CAM++"}.get, horizontal=True)
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.4, 0.05)
    files = st.file_uploader("CT slices: PNG, JPEG or DICOM (several at once)", type=TYPES, accept_multiple_files=True)
    folder = st.file_uploader("…or a whole DICOM series folder", type=TYPES, accept_multiple_files="directory")
    uploads = list(files or []) + list(folder or [])
    if not uploads:
        st.info("Drop one or more head-CT slices above. Files stay in memory and are never stored.")
        return
    progress = st.progress(0.0, text="Analysing…")
    results: list[SliceResult] = []
    for number, upload in enumerate(uploads, 1):
        results += resources.analyse(upload.getvalue(), upload.name, window, method, analyzer, str(path))
        progress.progress(number / len(uploads), text=f"Analysed {number} of {len(uploads)} files")
    progress.empty()
    for result in results:
        if result.error:
            st.error(f"**{result.source}** — {result.error}")
    ordered, top = study(results)
    if not ordered:
        return
    if len(ordered) > 1:
        st.subheader(f"{len(ordered)} slices")
        _thumbnails(ordered)
    positioned = [r for r in ordered if r.position is not None]
    if len(positioned) > 1:
        st.subheader("Series")
        st.markdown(f"Study-level verdict (highest slice, {_label(top)}): {_verdict_line(top)}")
        st.plotly_chart(plots.series([r.position for r in positioned], [r.probability for r in positioned],
                                     top.threshold, [_label(r) for r in positioned]), key="series")
    table = _table(results)
    st.dataframe(table, hide_index=True)
    st.download_button("Download results (CSV)", table.to_csv(index=False), "hemo-results.csv", "text/csv")
    for index, result in enumerate(ordered):
        _details(index, result, opacity, expanded=index == 0 or len(ordered) <= 3)


page()
