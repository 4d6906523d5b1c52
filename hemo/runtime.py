"""Process settings for hemo's entry points (the CLI and the app), never applied on import."""

from __future__ import annotations

import os
from pathlib import Path


def quiet_tensorflow() -> None:
    """Hide the CUDA probe on machines without an NVIDIA driver, and TensorFlow's info chatter.

    Without a driver TensorFlow still calls cuInit and prints "failed call to cuInit ... (303)",
    which reads like an error to a newcomer. Setting CUDA_VISIBLE_DEVICES skips the probe; a
    machine with a GPU (or a user who set the variable) is left alone.
    """
    if "CUDA_VISIBLE_DEVICES" not in os.environ and not Path("/dev/nvidiactl").exists():
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
