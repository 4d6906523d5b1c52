"""Analyse page: drop slices or a series folder, get one verdict per study with its evidence per slice."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hemo import plots
from hemo.analysis import SliceResult
from hemo.explain import colour_bar
from hemo.app import resources
from hemo.imaging import WINDOW_NAMES
from hemo.study import Study, studies
from hemo.table import row, without_name

TYPES = ["png", "jpg", "jpeg", "dcm", "dicom"]
STEP_HELP = ("A *pseudo-time step* is one of 10 chunks of 128 pooled EfficientNet features (the paper's reshape of "
             "the 1280-feature summary); the BiLSTM reads them in order. A row shows how much one chunk draws on the "
             "others: it is not a place in the image. In this model the weights stay within about ±0.01 of uniform "
             "(0.1), so the attention carries almost no slice-specific information: white is uniform.")
CAM_HELP = ("Colour = Grad-CAM (0..1 within the slice) × the slice's probability, on a fixed scale from blue (0) to "
            "red (1): a slice the model calls normal shows little colour. The map is 8×8 upsampled: a region of "
            "evidence, not an outline of blood.")


def _verdict_line(probability: float, threshold: float, verdict: str) -> str:
    colour = "red" if probability >= threshold else "green"
    return f":{colour}[**{verdict}**] — probability {probability:.3f} (threshold {threshold:.3f})"


class Labels:
    """How slices are named on screen: by study and scan position, or by file name when the user asks."""

    def __init__(self, found: list[Study], show_names: bool) -> None:
        self.show_names = show_names
        self._where = {id(r): (s.number, i) for s in found for i, r in enumerate(s.slices, start=1)}

    def of(self, result: SliceResult) -> str:
        if self.show_names:
            return result.source if result.frame == 0 else f"{result.source} [frame {result.frame + 1}]"
        study, number = self._where.get(id(result), (None, None))
        return f"Study {study} · slice {number}" if study else "unreadable file"

    def study_slice(self, result: SliceResult) -> tuple[int | None, int | None]:
        return self._where.get(id(result), (None, None))


def _thumbnails(results: list[SliceResult], labels: Labels) -> None:
    columns = st.columns(6)
    for index, result in enumerate(results):
        with columns[index % 6]:
            st.image(result.slice.shown.astype("uint8"), caption=f"{labels.of(result)}: {result.probability:.2f}",
                     width="stretch")


def _details(key: str, result: SliceResult, opacity: float, expanded: bool, labels: Labels) -> None:
    with st.expander(labels.of(result), expanded=expanded):
        st.markdown(_verdict_line(result.probability, result.threshold, result.verdict))
        for warning in result.warnings:
            st.info(warning)
        left, right = st.columns(2)
        left.image(result.slice.shown.astype("uint8"), caption="slice (window shown; the model sees its own)",
                   width="stretch")
        right.image(result.overlay(opacity), caption="Grad-CAM of the EfficientNet stage", width="stretch")
        right.image(colour_bar(), caption="0 ← Grad-CAM × probability → 1", width="stretch")
        st.caption(CAM_HELP)
        st.plotly_chart(plots.attention(result.attention), key=f"attention-{key}")
        st.caption(STEP_HELP)
        technical = dict(result.slice.info)
        if result.position is not None:
            technical["slice position (mm)"] = round(result.position, 2)
        st.caption(" · ".join(f"{k}: {v}" for k, v in technical.items()))


def _take_away(study: Study, analyzer) -> None:
    """The study as a PDF report and as DICOM for PACS (Secondary Captures + SR, zipped); no identifiers."""
    import io
    import zipfile

    from hemo.dicom_export import export
    from hemo.report import studies_pdf

    model_version = resources.model_version(str(resources.model_path()))
    left, right = st.columns(2)
    left.download_button("Study report (PDF)", studies_pdf([study], model_version, resources.shipped_json(
        "evaluation.json"), analyzer.info.provenance), f"hemo-study{study.number}.pdf", "application/pdf",
        key=f"pdf-{study.number}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in export(study, model_version).items():
            zipped.writestr(name, data)
    right.download_button("Results for PACS (DICOM SC + SR, zip)", archive.getvalue(),
                          f"hemo-study{study.number}-dicom.zip", "application/zip", key=f"dicom-{study.number}")


def _study_section(study: Study, labels: Labels, opacity: float, analyzer) -> None:
    st.subheader(f"{study.label}: {len(study.slices)} slice{'s' if len(study.slices) > 1 else ''}")
    how = ("the study model over the ordered series, at the study operating point" if study.method == "study model"
           else "its highest slice, at the slice operating point")
    st.markdown(f"Study verdict ({how}): " + _verdict_line(study.probability, study.threshold, study.verdict))
    if len(study.slices) > 1:
        positions = [r.position if r.position is not None else i for i, r in enumerate(study.slices, start=1)]
        st.plotly_chart(plots.series(positions, [r.probability for r in study.slices], study.slices[0].threshold,
                                     [labels.of(r) for r in study.slices],
                                     with_positions=all(r.position is not None for r in study.slices)),
                        key=f"series-{study.number}")
        _thumbnails(study.slices, labels)
    _take_away(study, analyzer)
    key_slices = sorted(study.slices, key=lambda r: -r.probability)[:3]
    for result in study.slices:
        number = labels.study_slice(result)[1]
        _details(f"{study.number}-{number}", result, opacity, result is key_slices[0] or len(study.slices) <= 3, labels)


def page() -> None:
    st.title("Analyse head CT")
    st.warning(resources.NOTICE)
    path = resources.model_path()
    if not path.exists():
        resources.no_model_help(path)
        return
    with st.sidebar:
        window = st.selectbox("DICOM window shown", WINDOW_NAMES,
                              help="brain 40/80, subdural 80/200, bone 600/2800 HU, or the file's own window. "
                                   "Changes the picture only: the model always reads DICOM in the window it was "
                                   "trained in.")
        method = st.radio("Explanation", ["gradcam", "gradcam++"], format_func={"gradcam": "Grad-CAM",
                          "gradcam++": "Grad-CAM++"}.get, horizontal=True)
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.4, 0.05)
        show_names = st.toggle("Show file names", value=False,
                               help="File names often carry the patient's name; off, slices are labelled by study "
                                    "and position.")
    files = st.file_uploader("CT slices: PNG, JPEG or DICOM (several at once)", type=TYPES, accept_multiple_files=True)
    folder = st.file_uploader("…or a whole series folder (DICOM files without an extension too)", type=None,
                              accept_multiple_files="directory")
    uploads = list(files or []) + list(folder or [])
    if not uploads:
        st.info("Drop one or more head-CT slices above. Files stay in memory and are never stored.")
        return
    analyzer = resources.analyzer(str(path))
    progress = st.progress(0.0, text="Analysing…")
    results: list[SliceResult] = []
    for number, upload in enumerate(uploads, 1):
        results += resources.analyse(upload.getvalue(), upload.name, window, method, analyzer, str(path))
        progress.progress(number / len(uploads), text=f"Analysed {number} of {len(uploads)} files")
    progress.empty()
    found = studies(results, analyzer)
    labels = Labels(found, show_names)
    for result in results:
        if result.error:
            shown = result.error if show_names else without_name(result.error, result.source)
            st.error(f"**{labels.of(result)}** — {shown}")
    for study in found:
        _study_section(study, labels, opacity, analyzer)
    table = pd.DataFrame([row(r, *labels.study_slice(r), r.source if show_names else "") for r in results])
    if not show_names:
        table = table.drop(columns=["file"])
    st.dataframe(table, hide_index=True)
    st.download_button("Download results (CSV)", table.to_csv(index=False), "hemo-results.csv", "text/csv")


page()
