"""What every page shares: the model (loaded and warmed once per server), the shipped records, the notice."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import streamlit as st

from hemo.analysis import Analyzer, SliceResult
from hemo.model import DEFAULT_MODEL

NOTICE = ("**Research and teaching demo — not a medical device.** It has not been validated for clinical use; "
          "never use it to diagnose or to decide treatment.")


def keep_tensorflow_kernels() -> None:
    """Skip the ``keras.backend.clear_session()`` that Streamlit runs after every script run.

    Streamlit does it for apps that build a model on each run. This app builds its model once
    per server (``st.cache_resource``), so the clean-up frees nothing and makes the next slice
    cost ~0.7 s instead of ~0.08 s. Called explicitly by ``hemo.app.main`` at start; every
    other caller of ``keras.backend.clear_session`` in the process still gets the real one.
    """
    import keras

    original = keras.backend.clear_session
    if getattr(original, "_hemo_keeps_kernels", False):
        return

    @functools.wraps(original)
    def clear_session(*args, **kwargs):
        caller = inspect.currentframe().f_back
        if caller is not None and caller.f_globals.get("__name__", "").startswith("streamlit."):
            return None
        return original(*args, **kwargs)

    clear_session._hemo_keeps_kernels = True
    keras.backend.clear_session = clear_session


def model_path() -> Path:
    return Path(os.environ.get("HEMO_MODEL", DEFAULT_MODEL))


_loading: dict[str, Future] = {}
_loading_lock = threading.Lock()


def start_loading(path: str) -> Future:
    """Load and warm the model in the background, once per server process and model file.

    Called when the app starts: pages render at once while the model loads (~9 s here), and the
    first upload finds it traced and warm instead of paying for it.
    """
    with _loading_lock:
        if path not in _loading:
            _loading[path] = ThreadPoolExecutor(1, thread_name_prefix="hemo-load").submit(
                lambda: Analyzer.load(path, warm=True) if Path(path).exists() else None)
        return _loading[path]


def analyzer(path: str) -> Analyzer | None:
    """The model, its explainer and its metadata, shared by all sessions; None when no file is there."""
    future = start_loading(path)
    if not future.done():
        with st.spinner("Loading and warming the model (once per server)…"):
            return future.result()
    return future.result()


#: How long a file's results stay cached (seconds), and how many files' results at most.
KEEP_SECONDS, KEEP_FILES = 3600, 1024


@st.cache_data(max_entries=KEEP_FILES, ttl=KEEP_SECONDS, show_spinner=False)
def analyse(digest: str, _data: bytes, name: str, window: str, method: str, _analyzer: Analyzer, model: str,
            folder: str = "", _ready: list[SliceResult] | None = None) -> list[SliceResult]:
    """One file's results, kept in memory for reruns (sliders, page switches); never written to disk.

    Room for several 300-slice series at once, so moving a slider never recomputes a series. The file is
    known by ``digest`` (:func:`digest`), not by its bytes: Streamlit would hash every file's bytes again on
    every rerun. ``model`` (the model's path) is part of the key; the unhashed ``_analyzer`` is not.
    ``folder`` groups files without DICOM study identifiers (a zip's folder) into one study. ``_ready``:
    results already worked out (:func:`analyse_all`), kept as they are.
    """
    return _ready if _ready is not None else _analyzer.analyse(_data, name, window, method, folder=folder)


def _now() -> float:
    """Seconds on a clock that never goes back (what the cache's hour is counted on)."""
    return time.monotonic()


@st.cache_resource
def _cached_keys() -> tuple[dict, threading.Lock]:
    """The keys :func:`analyse` has been called with, in any session, and when: which files need no analysis.
    A key older than the cache's hour counts as new; one whose entry the cache let go for room (``KEEP_FILES``
    newer files) is analysed again on its own, as before."""
    return {}, threading.Lock()


def analyse_all(entries: list[tuple[str, str, bytes, str]], window: str, method: str, analyzer: Analyzer, model: str,
                progress=None, reading=None) -> list[list[SliceResult]]:
    """Each (name, folder, bytes, digest) file's results through :func:`analyse`: what no session has analysed yet
    is analysed first in one go (``Analyzer.analyse_each``: batches across files, about half the time a slice of
    file by file); ``reading(done, total)`` follows its reading, in files, ``progress(done, total)`` the rest, in
    slices."""
    keys = [(digest, name, window, method, model, folder) for name, folder, _, digest in entries]
    known, lock = _cached_keys()
    now = _now()
    with lock:
        new = [i for i, key in enumerate(keys) if now - known.get(key, -math.inf) >= KEEP_SECONDS]
    fresh = dict(zip(new, analyzer.analyse_each([(entries[i][0], entries[i][2], entries[i][1]) for i in new],
                                                window, method, progress, reading))) if new else {}
    # by keyword: Streamlit reads the function's signature for each positional argument, on every call
    found = [analyse(digest=digest, _data=data, name=name, window=window, method=method, _analyzer=analyzer,
                     model=model, folder=folder, _ready=fresh.get(i)) for i, (name, folder, data, digest) in
             enumerate(entries)]
    with lock:
        for i in new:  # the time each entry was made: a look-up does not make it younger
            known[keys[i]] = now
        if len(known) > 10 * KEEP_FILES:  # long gone from the cache: forget them
            for key in [key for key, made in known.items() if now - made >= KEEP_SECONDS]:
                del known[key]
    return found


def digest(data: bytes) -> str:
    """The key a file's results are cached under: SHA-256 of its bytes, so a demo series that a class
    uploads is analysed once for all of them. Pages work it out once per upload, not on every rerun."""
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=4)
def model_version(path: str) -> str:
    """Name and SHA-256 prefix of the model file, hashed once per server."""
    from hemo.options import version

    return version(path)


def shipped_json(name: str) -> dict | None:
    """A record beside the model in use (models/ unless HEMO_MODEL points elsewhere)."""
    path = model_path().parent / name
    return json.loads(path.read_text()) if path.exists() else None


def number(value, digits: int = 3) -> str:
    """A metric for display; "n/a" for the null of a one-class evaluation."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def no_model_help(path: Path) -> None:
    st.warning(
        f"No model file at `{path}`. Train one with\n\n"
        "`python -m hemo train ../shared/data/ct-ich --out models`\n\n"
        "or put a trained `hemo-hybrid.keras` (with its `hemo-hybrid.json`) there, or set `HEMO_MODEL`. "
        "The training dashboard works without a model."
    )
