"""Training history as a table: reads hemo's history.json or a plain Keras ``History.history`` dict."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

REQUIRED = ("accuracy", "loss")  # validation curves are optional: a final model trains on every patient
PAPER_OUTPUT = "probabilities_"  # Keras's prefix for the paper's output when a bleed decoder trains beside it


def plain(series: dict) -> dict:
    """The paper's curves under their plain names, whether or not a bleed decoder trained beside it.

    With two outputs Keras logs ``probabilities_accuracy``/``probabilities_loss`` and calls the
    weighted sum ``loss``; a dashboard comparing runs wants the paper's own loss as ``loss``, so
    the sum becomes ``total_loss`` and the decoder's stays ``bleed_loss``.
    """
    if not any(key.startswith(PAPER_OUTPUT) or key.startswith("val_" + PAPER_OUTPUT) for key in series):
        return dict(series)
    renamed = {}
    for key, values in series.items():
        side, name = ("val_", key[4:]) if key.startswith("val_") else ("", key)
        if name == "loss":
            name = "total_loss"
        elif name.startswith(PAPER_OUTPUT):
            name = name[len(PAPER_OUTPUT):]
        renamed[side + name] = values
    return renamed


def read(source: str | Path | bytes | dict) -> tuple[pd.DataFrame, dict]:
    """One row per epoch (epoch, accuracy, loss, val_*, learning_rate, ...) and the run metadata."""
    if isinstance(source, (str, Path)):
        source = Path(source).read_bytes()
    raw = json.loads(source) if isinstance(source, bytes) else source
    if not isinstance(raw, dict):
        raise ValueError("a history JSON is an object of per-epoch lists")
    series, run = (raw["history"], raw.get("run", {})) if "history" in raw else (raw, {})
    series = plain(series)
    missing = [key for key in REQUIRED if key not in series]
    if missing:
        raise ValueError(f"the history has no {', '.join(missing)}; expected Keras History.history keys")
    lengths = {len(v) for v in series.values() if isinstance(v, list)}
    if len(lengths) != 1:
        raise ValueError("the per-epoch lists of the history have different lengths")
    table = pd.DataFrame({k: v for k, v in series.items() if isinstance(v, list)})
    table.insert(0, "epoch", range(1, len(table) + 1))
    if "val_accuracy" in table:
        table["gap"] = table["accuracy"] - table["val_accuracy"]
    return table, run


def sides(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(column prefix, name) of the curves the table holds: train, and validation when there was one."""
    return [("", "train")] + ([("val_", "validation")] if {"val_accuracy", "val_loss"} <= set(table) else [])


def smooth(values: pd.Series, weight: float = 0.6) -> pd.Series:
    """Exponential moving average, as TensorBoard smooths curves."""
    return values.ewm(alpha=1 - weight, adjust=False).mean()
