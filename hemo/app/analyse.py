"""Analyse page: drop slices or a series folder, get one verdict per study with its evidence per slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from hemo import plots
from hemo.analysis import POSITIVE, SliceResult
from hemo.annotation import aligned_mask, outline, overlap
from hemo.app import resources
from hemo.archive import MAX_BYTES, expand, is_zip
from hemo.datasets import ignored, is_annotation
from hemo.errors import HemoInputError
from hemo.explain import colour_bar
from hemo.imaging import WINDOW_NAMES, is_dicom
from hemo.study import HIGHEST, Study, alone, min_series, once, places, studies
from hemo.table import slice_rows, study_row, without_name
from hemo.trust import slice_trust, study_trust

TYPES = ["png", "jpg", "jpeg", "dcm", "dicom", "zip"]
STEP_HELP = ("A *pseudo-time step* is one of 10 chunks of 128 pooled EfficientNet features (the paper's reshape of "
             "the 1280-feature summary); the BiLSTM reads them in order. A row shows how much one chunk draws on the "
             "others: it is not a place in the image. In this model the weights stay within about ±0.01 of uniform "
             "(0.1), so the attention carries almost no slice-specific information: white is uniform.")
CAM_HELP = ("Colour = Grad-CAM (0..1 within the slice) × the slice's probability, on a fixed scale from blue (0) to "
            "red (1): a slice the model calls normal shows little colour. The map is 8×8 upsampled: a region of "
            "evidence, not an outline of blood.")

BLEED_HELP = ("Colour = the bleed decoder's probability of blood in each 8×8-pixel cell, on the same fixed scale. "
              "The decoder was trained on the radiologists' bleed masks beside the paper's model and reads the same "
              "EfficientNet features and shows where it sees blood.")
READINGS = {"head+bleed": "the bleed map's highest cell",
            "head+bleed-top4": "the mean of the bleed map's 4 highest cells"}
CONTEXT_HELP = ("Purple: each slice read with its neighbours above and below (the mean of their logits, "
                "calibrated out of fold; model card). A bleed spans several slices, noise rarely does; the study "
                "verdict uses this reading.")


def _score_help(score: str, weight: float) -> str:
    mean = "the mean" if weight == 0.5 else f"a weighted mean (the decoder's weight {weight:g})"
    return (f"Slice probabilities here combine the paper's model with its bleed decoder: {mean} of the logits of the "
            f"model's probability and of {READINGS[score]}, calibrated out of fold (model card). Grad-CAM explains "
            "the paper model's part, the bleed map the decoder's.")


#: Annotations that came with this run's uploads, by id() of the slice result (rebuilt on every run).
MASKS: dict[int, np.ndarray] = {}


def _verdict_line(probability: float, threshold: float, verdict: str) -> str:
    colour = "red" if probability >= threshold else "green"
    return f":{colour}[**{verdict}**] — probability {probability:.3f} (threshold {threshold:.3f})"


class Labels:
    """How slices are named on screen: by study and scan position, or by file name when the user asks."""

    def __init__(self, found: list[Study], show_names: bool) -> None:
        self.show_names = show_names
        self._where = places(found)

    def of(self, result: SliceResult) -> str:
        if self.show_names:
            return result.source if result.frame == 0 else f"{result.source} [frame {result.frame + 1}]"
        study, number = self._where.get(id(result), (None, None))
        return f"{study.label} · slice {number}" if study else "unreadable file"


def _details(key: str, result: SliceResult, opacity: float, expanded: bool, labels: Labels,
             said: frozenset[str] = frozenset()) -> None:
    mask = MASKS.get(id(result))
    with st.expander(labels.of(result), expanded=expanded):
        st.markdown(_verdict_line(result.probability, result.threshold, result.verdict))
        for warning in result.warnings:
            if warning not in said:  # said once for the whole study
                st.info(warning)
        left, right = st.columns(2)
        left.image(result.slice.shown.astype("uint8"), caption="slice (window shown; the model sees its own)",
                   width="stretch")
        if mask is not None:
            found = overlap(result.cam.astype(np.float32), mask)
            right.image(outline(result.overlay(opacity), mask), caption="Grad-CAM with the annotation's outline "
                        "(white)", width="stretch")
            st.markdown(f"**Against the annotation:** {found.energy_inside:.1%} of the Grad-CAM energy lies inside the "
                        f"annotated bleed, which covers {found.mask_fraction:.1%} of the slice (a map that ignored "
                        f"the bleed would score about that); the map's peak is "
                        f"{'inside' if found.peak_inside else 'outside'} it.")
        else:
            right.image(result.overlay(opacity), caption="Grad-CAM of the EfficientNet stage", width="stretch")
        right.image(colour_bar(), caption="0 ← Grad-CAM × probability → 1", width="stretch")
        st.caption(CAM_HELP)
        if result.bleed is not None:
            _bleed_map(result, opacity, mask)
        st.plotly_chart(plots.attention(result.attention), key=f"attention-{key}")
        st.caption(STEP_HELP)
        technical = dict(result.slice.info)
        if result.position is not None:
            technical["slice position (mm)"] = round(result.position, 2)
        if result.slice.quality.get("noise_hu") is not None:  # what the noisy-image note measures
            technical["noise in brain tissue (HU)"] = round(result.slice.quality["noise_hu"], 1)
        st.caption(" · ".join(f"{k}: {v}" for k, v in technical.items()))


def _bleed_map(result: SliceResult, opacity: float, mask: np.ndarray | None) -> None:
    """The decoder's map beside the slice: where blood is, drawn by a decoder trained on the bleed masks."""
    left, right = st.columns(2)
    picture = result.bleed_overlay(opacity)
    left.image(picture if mask is None else outline(picture, mask), width="stretch",
               caption="Bleed map" + (" with the annotation's outline (white)" if mask is not None else ""))
    right.image(colour_bar(), caption="0 ← probability of blood in each cell → 1", width="stretch")
    right.caption(BLEED_HELP)
    if mask is not None:
        found = overlap(result.bleed_map(), mask)
        right.markdown(f"**Against the annotation:** {found.energy_inside:.1%} of the bleed map lies inside the "
                       f"annotated bleed ({found.mask_fraction:.1%} of the slice).")


def _report(found: list[Study], analyzer):
    """The PDF report of ``found`` (a page per study), made when its button is clicked, not on every rerun."""
    from hemo.report import studies_pdf

    def pdf() -> bytes:
        return studies_pdf(found, resources.model_version(str(resources.model_path())),
                           resources.shipped_json("evaluation.json"), analyzer.info.provenance)
    return pdf


def _take_away(study: Study, analyzer) -> None:
    """The study as a PDF report and as DICOM for PACS (Secondary Captures + SR, zipped); no identifiers."""
    import io
    import zipfile

    from hemo.dicom_export import export

    model_version = resources.model_version(str(resources.model_path()))

    def dicom_zip() -> bytes:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            for name, data in export(study, model_version).items():
                zipped.writestr(name, data)
        return archive.getvalue()

    left, right = st.columns(2)  # made on click, not on every rerun (a slider move in the viewer)
    left.download_button("Study report (PDF)", _report([study], analyzer), f"hemo-{study.slug}.pdf", "application/pdf",
                         key=f"pdf-{study.slug}")
    right.download_button("Results for PACS (DICOM SC + SR, zip)", dicom_zip, f"hemo-{study.slug}-dicom.zip",
                          "application/zip", key=f"dicom-{study.slug}")


#: What the viewer draws over the slice (the bleed map only where the model has a decoder), and its bar's caption.
GRAD_CAM, BLEED, NONE = "Grad-CAM", "bleed map", "none"
OVERLAYS = {GRAD_CAM: lambda r, opacity: r.overlay(opacity), BLEED: lambda r, opacity: r.bleed_overlay(opacity),
            NONE: lambda r, opacity: r.slice.shown.astype("uint8")}
BARS = {GRAD_CAM: "Grad-CAM × probability", BLEED: "probability of blood in each cell"}


def _viewer(study: Study, labels: Labels, opacity: float, said: frozenset[str]) -> None:
    """One slice at a time: slider, key-slice buttons, and a click on the curve all move the same index.

    Everything shown is already computed (cached per file): moving through a 300-slice series
    redraws, it never re-analyses.
    """
    key = f"viewer-{study.slug}"
    count = len(study.slices)
    if key not in st.session_state or st.session_state[key] > count:
        st.session_state[key] = max(range(count), key=lambda i: study.slices[i].probability) + 1

    def go_to(number: int) -> None:
        st.session_state[key] = number

    def clicked() -> None:
        number = plots.clicked_slice(st.session_state[f"curve-{study.slug}"].selection.points)
        if number is not None:
            go_to(number)

    columns = st.columns(4)
    columns[0].markdown("**Key slices:**")
    ranked = sorted(range(count), key=lambda i: -study.slices[i].probability)[:3]
    for column, index in zip(columns[1:], ranked):
        column.button(f"slice {index + 1} · {study.slices[index].probability:.2f}", key=f"{key}-key{index}",
                      on_click=go_to, args=(index + 1,))
    number = st.slider("Slice (scan order)", 1, count, key=key)
    result = study.slices[number - 1]
    shown = st.radio("Overlay", [*OVERLAYS] if result.bleed is not None else [GRAD_CAM, NONE], horizontal=True,
                     key=f"{key}-overlay", help="Grad-CAM: where the paper's model looked. Bleed map: where its "
                     "decoder, trained on the radiologists' masks, sees blood. Both on the bar's fixed 0..1 scale.")
    left, right = st.columns([1, 1])
    with left:
        st.image(OVERLAYS[shown](result, opacity),
                 caption=f"{labels.of(result)}: {result.verdict} ({result.probability:.3f})", width="stretch")
        if shown != NONE:
            st.image(colour_bar(), caption=f"0 ← {BARS[shown]} → 1", width="stretch")
    with right:
        positions = [r.position if r.position is not None else i for i, r in enumerate(study.slices, start=1)]
        in_context = study.refined_threshold is not None
        st.plotly_chart(plots.series(positions, [r.probability for r in study.slices], result.threshold,
                                     [labels.of(r) for r in study.slices],
                                     with_positions=all(r.position is not None for r in study.slices),
                                     current=number - 1, refined=study.refined if in_context else None,
                                     refined_threshold=study.refined_threshold),
                        key=f"curve-{study.slug}", on_select=clicked, selection_mode="points")
        st.caption("Click a point to open that slice." + (f" {CONTEXT_HELP}" if in_context else ""))
        read = study.with_neighbours(number)
        if read is not None:
            st.markdown(f"With its neighbours: probability {read[0]:.3f} (threshold {read[1]:.3f})")
    _details(f"{study.slug}-{number}", result, opacity, True, labels, said)


def _slice_trust(found: list[Study], analyzer) -> None:
    """Said once above cases judged slice by slice (single images, uploads shorter than the study rule's series):
    how far the slice operating point goes, and why a short upload is flagged more often than one slice."""
    judged = [study for study in found if study.method == HIGHEST]
    if judged and (said := slice_trust(resources.shipped_json("evaluation.json"),
                                       several=any(len(study.slices) > 1 for study in judged),
                                       series=min_series(analyzer.info) if analyzer.info.study else None)):
        st.caption(said)


def _overview(verdicts: pd.DataFrame, found: list[Study], analyzer) -> None:
    """Every study's verdict in one table above the studies, highest probability first: a teacher's twenty examples
    or an export's series are read at a glance, and a flagged one is found without scrolling past the others."""
    flagged = sum(study.verdict == POSITIVE for study in found)
    st.subheader(f"{len(found)} studies: {flagged} indicative of haemorrhage, {len(found) - flagged} likely normal")
    shown = verdicts.drop(columns=["study", "series", "model", "note"])
    for column in shown.columns.drop(["verdict", "rule"]):  # blank where a study was not read with neighbours
        shown[column] = pd.to_numeric(shown[column], errors="coerce")
    if all(len(study.slices) == 1 for study in found):  # a study's only slice is its highest
        shown = shown.drop(columns=["highest_slice", "highest_probability"])
    shown = shown.dropna(axis="columns", how="all")  # no study was read with neighbours
    shown.insert(0, "study", [study.label for study in found])
    st.dataframe(shown.sort_values("probability", ascending=False), hide_index=True)
    st.download_button(f"Report of all {len(found)} studies (PDF, a page each)", _report(found, analyzer),
                       "hemo-studies.pdf", "application/pdf", key="pdf-all")
    ranked = sorted(found, key=lambda study: study.probability, reverse=True)
    st.markdown("Go to: " + " · ".join(f"[{study.label}](#{study.slug})" for study in ranked))
    st.caption("Each study's section below holds its slices, their evidence and its own report.")


def _study_section(study: Study, labels: Labels, opacity: float, analyzer) -> None:
    st.subheader(f"{study.label}: {len(study.slices)} slice{'s' if len(study.slices) > 1 else ''}", anchor=study.slug)
    st.markdown(f"Study verdict ({study.how}): " + _verdict_line(study.probability, study.threshold, study.verdict))
    if said := study_trust(resources.shipped_json("evaluation.json"), study.method):
        st.caption(said)
    if analyzer.info.slice_score != "head":
        st.caption(_score_help(analyzer.info.slice_score, analyzer.info.decoder_weight))
    shared = study.notes
    for note in sorted(shared):
        st.info(f"Every slice of this study: {note}")
    _take_away(study, analyzer)
    if len(study.slices) > 3:
        _viewer(study, labels, opacity, shared)
        return
    for number, result in enumerate(study.slices, start=1):  # scan order, as every other slice list numbers them
        _details(f"{study.slug}-{number}", result, opacity, True, labels, shared)


def _errors(failed: list[SliceResult], labels: Labels, listed: int = 5) -> None:
    """One box per reason, not per file: an export's 40 reformats or 3 reports are three lines, not 43 boxes.
    The file names, when shown, head the box (the first few of them)."""
    reasons: dict[str, list[SliceResult]] = {}
    for result in failed:
        reasons.setdefault(without_name(result.error, result.source), []).append(result)
    for reason, members in reasons.items():
        files = len({r.source for r in members})
        if len(members) == 1 or labels.show_names:
            who = ", ".join(labels.of(r) for r in members[:listed])
            who += f" and {len(members) - listed} more" if len(members) > listed else ""
        else:
            who = f"{files} files" + (f" ({len(members)} frames)" if len(members) > files else "")
        st.error(f"**{who}** — {reason}")


#: One file to analyse: name, folder (groups a study), bytes, and the digest its results are cached under.
Upload = tuple[str, str, bytes, str]


def _files(uploads) -> tuple[list[Upload], list[SliceResult]]:
    """Each upload, or each file in an uploaded zip, with its digest; an unreadable zip is an error result.
    DICOMDIR and hidden files are never slices.

    Work done per upload is done once per session, not on every rerun (a slider move): a zip is unpacked
    and a file's digest worked out once (hashing a 300-slice series took 0.2 s a rerun). All the zips of one
    session share one budget, ``MAX_BYTES`` unpacked: several users each unpacking a few large studies
    could otherwise hold many GiB of one server's memory. An unpacked zip is kept under (upload id, budget
    left before it), so removing an upload frees its share for the ones after it.
    """
    unzipped, kept = st.session_state.setdefault("unzipped", {}), {}
    digests, known = st.session_state.setdefault("digests", {}), {}
    entries, errors, left = [], [], MAX_BYTES
    for upload in uploads:
        if ignored(_path(upload.name)):
            continue
        data = upload.getvalue()
        if not is_zip(data):
            known[upload.file_id] = digests.get(upload.file_id) or resources.digest(data)
            entries.append((upload.name, _folder(upload.name), data, known[upload.file_id]))
            continue
        key = (upload.file_id, left)
        if key not in unzipped:
            try:
                unzipped[key] = [(*entry, resources.digest(entry[2])) for entry in expand(upload.name, data,
                                                                                            max_bytes=left)]
            except HemoInputError as error:
                unzipped[key] = str(error)
        kept[key] = found = unzipped[key]
        if isinstance(found, str):
            errors.append(SliceResult(upload.name, error=found))
            continue
        entries += found
        left -= sum(len(content) for _, _, content, _ in found)
    st.session_state["unzipped"], st.session_state["digests"] = kept, known  # removed uploads are let go
    return entries, errors


def _path(name: str):
    from pathlib import PurePath

    return PurePath(name)


def _folder(name: str) -> str:
    """The folder of a file from the folder uploader (the browser sends its path within the folder), so that each
    subfolder of images is a study of its own, as ``predict`` reads folders; "" for a file dropped on its own."""
    parent = str(_path(name).parent)
    return "" if parent == "." else parent


#: What images dropped on their own (no folder, no zip) are: PNG and JPEG say nothing of patient or study.
APART, SERIES = "separate cases, each judged alone", "one patient's slices, a series in file-name order"


def _together(count: int) -> bool:
    """Whether the ``count`` images dropped on their own are one patient's series. By default they are separate
    cases: a teacher's examples read as one series would get one verdict, and each slice read with the next
    patient's, without a sign that anything is wrong; a series read as separate cases shows it at once."""
    return count > 1 and st.radio(
        f"The {count} images dropped on their own are", [APART, SERIES], horizontal=True, key="loose",
        help="PNG and JPEG carry no patient or study. One patient's series gets one verdict and each slice is "
             "also read with its neighbours; separate cases get a verdict each. Images in an uploaded folder or "
             "zip are one study per folder.") == SERIES


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
    if not show_names:  # the uploader's own chips list file names, which are often patient names
        st.html("<style>[data-testid='stFileChipName']{visibility:hidden}</style>")
    files = st.file_uploader("CT slices: PNG, JPEG or DICOM (several at once), or a zipped study", type=TYPES,
                             accept_multiple_files=True)
    folder = st.file_uploader("…or a whole series folder (DICOM files without an extension too)", type=None,
                              accept_multiple_files="directory")
    entries, results = _files([*(files or []), *(folder or [])])
    annotations = {name.rsplit("_", 2)[0]: data for name, _, data, _ in entries if is_annotation(_path(name))}
    entries = [entry for entry in entries if not is_annotation(_path(entry[0]))]
    orphans = len(annotations.keys() - {name.rsplit(".", 1)[0] for name, *_ in entries})
    if orphans:
        st.warning(f"{orphans} bleed annotation(s) (CT-ICH's <n>_HGE_Seg.jpg, the radiologists' outline of a bleed) "
                   "came without their slice <n>.jpg: an annotation is not a slice to analyse; uploaded with its "
                   "slice, it is drawn on it.")
    if not entries and not results:
        st.info("Drop one or more head-CT slices, a series folder or a zipped study above. Files stay in memory "
                "and are never stored.")
        return
    loose = {i for i, (name, folder, data, _) in enumerate(entries) if not folder and not is_dicom(data, name)}
    together = _together(len(loose))
    analyzer = resources.analyzer(str(path))
    progress = st.progress(0.0, text="Analysing…")

    def analysed(done: int, total: int) -> None:
        progress.progress(done / total, text=f"Analysed {done} of {total} slices")

    def read(done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            progress.progress(done / total, text=f"Read {done} of {total} files")

    MASKS.clear()
    for index, ((name, _, data, _), found) in enumerate(zip(entries, resources.analyse_all(
            entries, window, method, analyzer, str(path), analysed, read))):
        if index in loose and not together:
            found = alone(found, f"\0image {index}")
        annotation = annotations.get(name.rsplit(".", 1)[0])
        if annotation is not None and len(found) == 1 and found[0].analysed:
            mask = aligned_mask(data, annotation)
            if mask is not None and mask.any():
                MASKS[id(found[0])] = mask
        results += found
    progress.empty()
    if annotations:
        st.caption(f"{len(MASKS)} slice(s) came with a bleed annotation: its outline and overlap are shown with them.")
    results = once(results)  # a file given twice (a folder and a file in it) is one slice, its copy an error
    found = studies(results, analyzer)
    labels = Labels(found, show_names)
    _errors([r for r in results if r.error], labels)
    _slice_trust(found, analyzer)
    model = resources.model_version(str(resources.model_path()))
    verdicts = pd.DataFrame([study_row(study, model) for study in found])
    if len(found) > 1:
        _overview(verdicts, found, analyzer)
    for study in found:
        _study_section(study, labels, opacity, analyzer)
    table = pd.DataFrame(slice_rows(found, results, lambda r: r.source if show_names else "", model))
    if not show_names:
        table = table.drop(columns=["file"])
    typed = {"study": "Int64", "series": "Int64", "slice": "Int64", "probability": float, "threshold": float,
             "probability_with_neighbours": float, "threshold_with_neighbours": float}
    for column, kind in typed.items():
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(kind)  # blank for an unreadable file
    st.dataframe(table, hide_index=True)
    left, right = st.columns(2)
    left.download_button("Download results (CSV)", table.to_csv(index=False), "hemo-results.csv", "text/csv")
    if found:
        right.download_button("Download study verdicts (CSV)", verdicts.to_csv(index=False), "hemo-studies.csv",
                              "text/csv")


page()
