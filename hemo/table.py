"""The results tables that leave hemo (CLI CSV, app download): one row per slice, or per study; safe to open.

File names are often patient names, so the app labels rows by study and slice unless the user
asks for names. A cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR) is
prefixed with an apostrophe.
"""

from __future__ import annotations

import math
from typing import Callable, TextIO

from hemo.analysis import SliceResult
from hemo.study import Study, places

FIELDS = ["study", "series", "slice", "file", "frame", "probability", "verdict", "threshold",
          "probability_with_neighbours", "threshold_with_neighbours", "error", "note", "model"]
STUDY_FIELDS = ["study", "series", "slices", "verdict", "probability", "threshold", "rule", "highest_slice",
                "highest_probability", "slices_above_with_neighbours", "threshold_with_neighbours", "note", "model"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """The value, with text that a spreadsheet would evaluate made inert."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def without_name(message: str, source: str) -> str:
    """A message with the file's name taken out, for when names are hidden."""
    return message.replace(f"{source}: ", "").replace(source, "this file") if source else message


def row(result: SliceResult, study: int | None, series: int | None, number: int | None, name: str,
        neighbours: tuple[float, float] | None = None, model: str = "") -> dict:
    """One slice's row; ``series`` counts within its study (1 when it came alone); ``name`` is what identifies
    the file (its name, or "" to hide it everywhere); ``neighbours``: the slice read with its neighbours and
    that reading's threshold, where its study read the series so (``Study.with_neighbours``); ``model``: what
    scored it (``hemo.model.version``), so a table saved today still says so after the model changes."""
    analysed = result.analysed
    error = result.error or ""
    if not name:
        error = without_name(error, result.source)
    return {key: safe_cell(value) for key, value in {
        "study": "" if study is None else study,
        "series": "" if series is None else series,
        "slice": "" if number is None else number,
        "file": name,
        "frame": result.frame,
        "probability": round(result.probability, 4) if analysed and math.isfinite(result.probability) else "",
        "verdict": "error" if result.error else result.verdict,
        "threshold": round(result.threshold, 4) if analysed else "",
        "probability_with_neighbours": round(neighbours[0], 4) if neighbours else "",
        "threshold_with_neighbours": round(neighbours[1], 4) if neighbours else "",
        "error": error,
        "note": " ".join(result.warnings),
        "model": model,
    }.items()}


def slice_rows(found: list[Study], results: list[SliceResult], name: Callable[[SliceResult], str],
               model: str = "") -> list[dict]:
    """Each result's row, numbered by study, series and place in scan order as the app, the PDF and the SR number
    slices (``hemo.study.places``), with its reading with neighbours where its study has one; ``name(result)``
    fills the file column ("" hides it)."""
    where = places(found)
    rows = []
    for result in results:
        study, number = where.get(id(result), (None, None))
        place = (study.number, study.series or 1, number) if study else (None, None, None)
        rows.append(row(result, *place, name(result), study.with_neighbours(number) if study else None, model))
    return rows


def study_row(study: Study, model: str = "") -> dict:
    """One study's (or series') verdict as the app and the PDF give it: its rule, its operating point, its
    highest slice (numbered in scan order, as the slice rows are) and, where it read the series with
    neighbours, how many slices that reading puts at or above its own threshold; no identifiers. ``model``: what
    scored it, as in :func:`row`."""
    # Study.top's place in scan order (list.index would compare the results' arrays)
    top = max(range(len(study.slices)), key=lambda i: study.slices[i].probability)
    context = study.refined_threshold is not None
    return {key: safe_cell(value) for key, value in {
        "study": study.number,
        "series": study.series or 1,
        "slices": len(study.slices),
        "verdict": study.verdict,
        "probability": round(study.probability, 4),
        "threshold": round(study.threshold, 4),
        "rule": study.method,
        "highest_slice": top + 1,
        "highest_probability": round(study.slices[top].probability, 4),
        "slices_above_with_neighbours": sum(p >= study.refined_threshold for p in study.refined) if context else "",
        "threshold_with_neighbours": round(study.refined_threshold, 4) if context else "",
        "note": " ".join(sorted(study.notes)),
        "model": model,
    }.items()}


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def terminal(rows: list[dict], stream: TextIO) -> None:
    """The slice rows as a person reads them in a terminal: one aligned line per slice, without the columns that
    repeat on every row (note, model, thresholds: said once, below the table and with each study's verdict).

    The CSV stays what a pipe or ``--csv`` gets: the wide table is for programs, and a 250-character note on each
    of 300 lines is not for reading."""
    heads = {"study": "study", "series": "series", "slice": "slice", "file": "file", "probability": "probability",
             "probability_with_neighbours": "with neighbours", "verdict": "verdict"}
    said = {"series": lambda v: v not in ("", 1), "file": bool, "probability_with_neighbours": lambda v: v != ""}
    shown = [key for key in heads if key not in said or any(map(said[key], (r[key] for r in rows)))]
    cells = {key: [heads[key], *(_cell(r[key]) for r in rows)] for key in shown}
    for line, r in enumerate(rows, start=1):  # the reason beside "error" (without the file's name unless shown)
        if r["error"]:
            cells["verdict"][line] = f"error: {r['error']}"
    widths = {key: max(map(len, column)) for key, column in cells.items()}
    for line in range(len(rows) + 1):  # text left-aligned, numbers right-aligned
        stream.write("  ".join(cells[k][line].ljust(widths[k]) if k in ("file", "verdict") else
                               cells[k][line].rjust(widths[k]) for k in shown).rstrip() + "\n")
    alone, read = ({r[key] for r in rows} - {""} for key in ("threshold", "threshold_with_neighbours"))
    points = [f"{t:.4f} for a slice alone" for t in sorted(alone)]
    points += [f"{t:.4f} read with its neighbours" for t in sorted(read)]
    if points:
        stream.write(f"indicative at or above the slice operating point: {', '.join(points)}\n")
