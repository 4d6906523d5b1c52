"""Which real slices ``hemo.imaging.looks_inverted`` takes for negatives, and which of their negatives it recognises.

    python tools/negative_check.py ../shared/data

Why: a negative picture (white air, dark bone) read as it was made turns normal slices into bleeds, so hemo turns
one back; the test must never fire on a slice as it should be. Every CT-ICH JPEG, and the real DICOM slices (the GE
head series, the raw-HU CT-ICH slices) windowed to 8 bits in the brain (40/80), model (40/120) and subdural (80/200)
windows, are tried as they are and inverted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.datasets import ignored, is_annotation  # noqa: E402
from hemo.dicom import read_frames  # noqa: E402
from hemo.imaging import looks_inverted, window  # noqa: E402

WINDOWS = ((40, 80), (40, 120), (80, 200))


def pictures(data: Path):
    """(source, 8-bit picture) of every CT-ICH JPEG and of every real DICOM slice in each of ``WINDOWS``."""
    for path in sorted((data / "ct-ich").rglob("*.jpg")):
        if not is_annotation(path):
            yield "ct-ich jpeg", cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    for path in sorted((data / "dicom").rglob("*")):
        if path.is_file() and not ignored(path.relative_to(data)) and "masks" not in path.parts:
            for frame in read_frames(path.read_bytes(), path.name):
                for level, width in WINDOWS:
                    yield "dicom, windowed", np.round(window(frame.hu, level, width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder (../shared/data)")
    args = parser.parse_args()
    counts: dict[str, list[int]] = {}
    for source, picture in pictures(args.data):
        seen = counts.setdefault(source, [0, 0, 0])
        seen[0] += 1
        seen[1] += looks_inverted(picture)
        seen[2] += looks_inverted(255.0 - picture)
    for source, (tried, taken, recognised) in counts.items():
        print(f"{source}: {tried} pictures, {taken} taken for negatives; of their negatives {recognised} recognised")


if __name__ == "__main__":
    main()
