"""What every page shares: the model (loaded once per server), the shipped records, the notice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from hemo.analysis import Analyzer, SliceResult
from hemo.model import DEFAULT_MODEL

MODELS = DEFAULT_MODEL.parent
NOTICE = ("**Research and teaching demo — not a medical device.** It has not been validated for clinical use; "
          "never use it to diagnose or to decide treatment.")


def _keep_tensorflow_kernels() -> None:
    """Stop Streamlit's per-rerun ``keras.backend.clear_session()`` from emptying TensorFlow's kernel cache.

    Streamlit calls it after every script run, for apps that build a model on each run. This
    app builds its model once per server (``st.cache_resource``), so the clean-up frees nothing
    and makes the next slice cost ~0.7 s instead of ~0.08 s.
    """
    import keras

    keras.backend.clear_session = lambda *args, **kwargs: None


_keep_tensorflow_kernels()


def model_path() -> Path:
    return Path(os.environ.get("HEMO_MODEL", DEFAULT_MODEL))


@st.cache_resource(show_spinner="Loading the model (once per server)…")
def analyzer(path: str) -> Analyzer | None:
    """The model, its explainer and its metadata, shared by all sessions; None when no file is there."""
    return Analyzer.load(path) if Path(path).exists() else None


@st.cache_data(max_entries=64, show_spinner=False)
def analyse(data: bytes, name: str, window: str, method: str, _analyzer: Analyzer, model: str) -> list[SliceResult]:
    """One file's results, kept in memory for reruns (opacity, page switches); never written to disk.

    ``model`` (the model's path) is part of the cache key; the unhashed ``_analyzer`` is not.
    """
    return _analyzer.analyse(data, name, window, method)


def shipped_json(name: str) -> dict | None:
    path = MODELS / name
    return json.loads(path.read_text()) if path.exists() else None


def no_model_help(path: Path) -> None:
    st.warning(
        f"No model file at `{path}`. Train one with\n\n"
        "`python -m hemo train ../shared/data/ct-ich --out models`\n\n"
        "or put a trained `hemo-hybrid.keras` (with its `hemo-hybrid.json`) there, or set `HEMO_MODEL`. "
        "The training dashboard works without a model."
    )
