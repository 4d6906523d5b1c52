"""A study report a person can take away: one PDF page per study, pure Python (fpdf2).

It holds the study verdict with its operating point, the per-slice probability curve, the key
slices with their Grad-CAM overlays, the model's validation numbers, the intended-use notice,
the time and the model version, and nothing that identifies the patient: no DICOM identifiers,
no file names (slices are "slice k" in scan order).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from fpdf import FPDF
from PIL import Image

from hemo import seen
from hemo.study import Study
from hemo.trust import replicates_sentence

NOTICE = ("Research and teaching demo - not a medical device. Not validated for clinical use; never use it to "
          "diagnose or to decide treatment.")
KEY_SLICES = 3


def _latin1(text: str) -> str:
    """The PDF's core font holds Latin-1 only: dashes and signs spelt out, anything else a "?"."""
    for wide, narrow in (("\u2013", "-"), ("\u2014", "-"), ("\u2265", ">="), ("\u2264", "<="), ("\u2026", "...")):
        text = text.replace(wide, narrow)
    return text.encode("latin-1", "replace").decode("latin-1")


def key_slices(study: Study, count: int = KEY_SLICES):
    """The slices with the highest probabilities, with their 1-based position in scan order."""
    ranked = sorted(range(len(study.slices)), key=lambda i: -study.slices[i].probability)[:count]
    return [(i + 1, study.slices[i]) for i in sorted(ranked)]


def _caption(study: Study, number: int, result) -> str:
    """The key slice's probability alone and, where the study read its series so, with its neighbours."""
    caption = f"probability {result.probability:.3f}"
    read = study.with_neighbours(number)
    if read is not None:
        caption += f" alone\n{read[0]:.3f} with its neighbours"
    return caption


def key_slice_note(study: Study, number: int, result) -> str:
    """What a key slice scored, alone and (where the study has that reading) with its neighbours."""
    note = _caption(study, number, result).replace("\n", ", ")
    if result.bleed is not None:
        note += f"; bleed map peak {float(result.bleed.max()):.3f}"
    return note


def _curve(pdf: FPDF, study: Study, x: float, y: float, width: float, height: float) -> None:
    """Probability per slice (scan order) on a fixed 0..1 scale, with the slice operating point dashed."""
    pdf.set_draw_color(0, 0, 0)
    pdf.rect(x, y, width, height)
    pdf.set_font("Helvetica", size=7)
    for value in (0.0, 0.5, 1.0):
        pdf.text(x - 6, y + height * (1 - value) + 1, f"{value:.1f}")
    threshold = study.slices[0].threshold
    pdf.set_draw_color(200, 0, 0)
    pdf.set_dash_pattern(dash=1.5, gap=1.5)
    pdf.line(x, y + height * (1 - threshold), x + width, y + height * (1 - threshold))
    pdf.set_dash_pattern()
    labels = [(y + height * (1 - threshold), f"slice threshold {threshold:.3f}")]
    count = len(study.slices)
    points = [(x + width * (i + 0.5) / count, y + height * (1 - r.probability)) for i, r in enumerate(study.slices)]
    pdf.set_draw_color(30, 80, 180)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        pdf.line(x0, y0, x1, y1)
    pdf.set_fill_color(30, 80, 180)
    for px, py in points:
        pdf.circle(px, py, 0.8, style="F")
    legend = f"slice 1 ... {count} in scan order; blue: each slice alone"
    if study.refined_threshold is not None:  # the reading the study rule used: each slice with its neighbours
        read = [(px, y + height * (1 - p)) for (px, _), p in zip(points, study.refined)]
        pdf.set_draw_color(130, 0, 160)
        for (x0, y0), (x1, y1) in zip(read, read[1:]):
            pdf.line(x0, y0, x1, y1)
        level = y + height * (1 - study.refined_threshold)
        pdf.set_dash_pattern(dash=0.5, gap=1.0)
        pdf.line(x, level, x + width, level)
        pdf.set_dash_pattern()
        legend += f"; purple: with its neighbours (dotted: their threshold {study.refined_threshold:.3f})"
        labels.append((level, f"with neighbours {study.refined_threshold:.3f}"))
    _margin_labels(pdf, x + width + 1, labels)
    pdf.set_font("Helvetica", size=8)
    pdf.text(x, y + height + 5, legend)


def _margin_labels(pdf: FPDF, x: float, labels: list[tuple[float, str]], spacing: float = 3.0) -> None:
    """Each threshold's name beside its line, moved down just enough that two close thresholds stay legible."""
    below = -float("inf")
    for level, text in sorted(labels):
        below = max(level, below + spacing)
        pdf.text(x, below + 1, text)


def _row(pdf: FPDF, pictures: list[tuple[int, np.ndarray, str]], size: float = 60) -> None:
    """Up to three slice pictures side by side, ``size`` mm square, each captioned with its slice number and its
    numbers (one per line: a 60 mm column holds one short phrase at 8 pt)."""
    top = pdf.get_y() + 1
    lines = 1
    for column, (number, picture, note) in enumerate(pictures):
        pdf.image(Image.fromarray(np.asarray(picture, np.uint8)), x=10 + column * 64, y=top, w=size, h=size)
        pdf.set_font("Helvetica", size=8)
        for line, text in enumerate(f"slice {number}: {note}".split("\n")):
            pdf.text(10 + column * 64, top + size + 4 + 3.5 * line, text)
            lines = max(lines, line + 1)
    pdf.set_y(top + size + 6.5 + 3.5 * lines)


def _metrics_lines(metrics: dict | None, method: str) -> list[str]:
    """The validation numbers; the study's only where they measure the rule this study was judged by (``method``)."""
    if not metrics:
        return ["No validation numbers ship with this model."]

    def number(key: str) -> str:
        value = metrics.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    lines = [metrics.get("title", "Validation"),
             f"slice AUC {number('auc')}; at the slice threshold: sensitivity {number('sensitivity')}, "
             f"specificity {number('specificity')}"]
    if "study_auc" in metrics and metrics.get("study_method") == method:
        lines.append(f"study AUC {number('study_auc')} ({method}); at the study threshold: sensitivity "
                     f"{number('study_sensitivity')}, specificity {number('study_specificity')}")
        again = replicates_sentence(metrics)
        if again:
            lines.append(_latin1(again))
    return lines


def studies_pdf(studies: list[Study], model_version: str, metrics: dict | None = None,
                provenance: dict | None = None, opacity: float = 0.4) -> bytes:
    """One page per study: verdict, curve, key slices, validation numbers, notice, time and model version."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    for study in studies:
        _page(pdf, study, model_version, metrics, provenance, opacity)
    return bytes(pdf.output())


def study_notes(study: Study) -> list[str]:
    """What a report says beside the verdict (the PDF page, the SR): the notes of the whole series (a tilt, an 8-bit
    export), once, as the app does; a study of one slice has only that slice's notes, and no report shows a slice
    row to carry them."""
    if len(study.slices) == 1:
        return [f"Note: {note}" for note in study.slices[0].warnings]
    said = [f"Every slice: {note}" for note in sorted(study.notes)]
    trained = sum(seen.NOTE in r.warnings for r in study.slices)  # a page must not pass these off as new either
    if 0 < trained < len(study.slices):
        said.append(f"{trained} of {len(study.slices)} slices: {seen.NOTE}")
    return said


def _page(pdf: FPDF, study: Study, model_version: str, metrics: dict | None, provenance: dict | None,
          opacity: float) -> None:
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 9, f"hemo study report - {study.label}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pdf.cell(0, 5, f"Generated {generated} - model {model_version}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(160, 0, 0)
    pdf.multi_cell(0, 5, NOTICE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, f"Study verdict: {study.verdict}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    count = f" ({len(study.slices)} slices)" if len(study.slices) > 1 else ""  # one slice: ``how`` says so
    pdf.multi_cell(0, 5, f"Probability {study.probability:.3f}, operating point {study.threshold:.3f}: {study.how}"
                         f"{count}.", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    for note in study_notes(study):
        pdf.multi_cell(0, 4, _latin1(note), new_x="LMARGIN", new_y="NEXT")
    _curve(pdf, study, 22, pdf.get_y() + 4, 140, 40)
    pdf.set_y(pdf.get_y() + 53)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, "Key slices (highest probability): Grad-CAM x probability, fixed scale blue 0 to red 1",
             new_x="LMARGIN", new_y="NEXT")
    keys = key_slices(study)
    mapped = any(result.bleed is not None for _, result in keys)
    size = 46 if mapped else 60  # two rows of pictures leave the page room for its numbers
    _row(pdf, [(number, result.overlay(opacity), _caption(study, number, result)) for number, result in keys], size)
    if mapped:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 6, "The same slices: bleed map (decoder trained on bleed masks), probability of blood per cell, "
                       "same scale", new_x="LMARGIN", new_y="NEXT")
        _row(pdf, [(number, result.bleed_overlay(opacity), f"map peak {float(result.bleed.max()):.3f}")
                   for number, result in keys if result.bleed is not None], size)
    pdf.set_font("Helvetica", size=8)
    for line in _metrics_lines(metrics, study.method):
        pdf.multi_cell(0, 4.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 4.5, "Grad-CAM is an 8x8 map of where the EfficientNet stage found evidence, upsampled: a "
                           "region, not an outline of blood.", new_x="LMARGIN", new_y="NEXT")
    if provenance:
        pdf.set_font("Helvetica", size=7)
        pdf.multi_cell(0, 3.5, _latin1("How the operating points were chosen: " + "; ".join(
            f"{k.replace('_', ' ')}: {v}" for k, v in provenance.items())), new_x="LMARGIN", new_y="NEXT")
