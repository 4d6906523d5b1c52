"""What hemo's commands offer (backbones, bleed maps, slice scores, the shipped model and how a model file is
named), without Keras.

Importing TensorFlow takes seconds: ``hemo --help``, ``hemo --version`` and a mistyped path should answer at once,
so the command line takes its choices from here, and the modules that build and read models take them from here too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

BACKBONES = ("efficientnet_lite0", "efficientnet_b0")
PRETRAINED = ("imagenet", "none")

#: The bleed decoder's default output resolution (stride 8 at a 256x256 input), and those it can have.
MAP_SIZE = 32
MAP_SIZES = (32, 64)

#: The slice scores ``hemo calibrate`` chooses from, each with how many of the decoder map's highest cells it
#: joins to the paper model's probability (0: the paper model alone). ``hemo cv`` records both readings.
SLICE_SCORES = {"head": 0, "head+bleed": 1, "head+bleed-top4": 4}


def _shipped_model() -> Path:
    """The shipped model: ``models/`` beside the package in a checkout, ``hemo/models`` where hemo is installed
    (``pyproject.toml`` maps one to the other)."""
    package = Path(__file__).resolve().parent
    installed = package / "models" / "hemo-hybrid.keras"
    return installed if installed.exists() else package.parent / "models" / "hemo-hybrid.keras"


DEFAULT_MODEL = _shipped_model()


def version(path: str | Path) -> str:
    """The model file's name and the start of its SHA-256: what a report says it was made with."""
    path = Path(path)
    return f"{path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"
