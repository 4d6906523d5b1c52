"""Is a series' alarm a matter of its texture, its brightness or its inner table? (BENCHMARKS.md, the GE series)

    python tools/source_probe.py ../shared/data/dicom/ge-head-ct --model runs/final-ema/hemo-hybrid.keras \
        [--cache cache/ctich.npz]

Reads the series' slices through the model's input window, as the app does, and scores them as they are and
changed in one respect at a time: smoothed (Gaussian, sigma 0.7 and 1.0 pixels), brighter inside the head
(+10, +20 grey levels), and with the band just inside the skull (4 or 8 pixels of the 256 crop) set to the
brain's median grey level. Per variant and score (the paper model's raw probability; the decoder's peak and
head+bleed and head+bleed-top4 where the model has a decoder): the highest score and how many slices reach
0.5. If one change removed the alarm, training against that difference would be the fix; if none does, it is
not the cause.

It also measures the two differences: fine-grain noise (standard deviation of the image minus its Gaussian
blur, sigma 2, inside the brain; grey levels) and the mean profile inward from the skull's inner table (the
first pixels after the bone on each row of the middle half, left and right, in HU through the input window).
With ``--cache`` (``hemo cache``) the same for the cache's slices without haemorrhage. Slices are never named.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hemo.bleed import load_decoder  # noqa: E402
from hemo.errors import HemoInputError  # noqa: E402
from hemo.imaging import WINDOWS, read_file, sort_series  # noqa: E402
from hemo.model import DEFAULT_MODEL, load  # noqa: E402
from hemo.partial_volume import skull  # noqa: E402
from shift_check import scores_of  # noqa: E402

BONE = 250  # grey level at and above which a pixel is bone through a brain-like window
DEPTH = 6  # pixels of the inner-table profile


def read_series(folder: Path, info) -> np.ndarray:
    """The folder's slices through the model's input window, cropped as the model expects, in scan order."""
    slices = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            slices += read_file(path, crop=info.crop, model_window=info.input_window)
        except HemoInputError:
            continue
    return np.stack([s.pixels for s in sort_series(slices)]).astype(np.float32)


def flatten_inner_table(image: np.ndarray, depth: int) -> np.ndarray:
    """``image`` with the ``depth`` pixels just inside the skull set to the brain's median grey level.

    Inside is the skull's convex hull less the bone; the scalp outside it is left alone. A slice that
    shows no bone, or too little brain to take a median of, is returned as it is.
    """
    found = skull(image, BONE)
    if found is None:
        return image
    bone, inside = found
    band = (cv2.dilate(bone.astype(np.uint8), np.ones((2 * depth + 1,) * 2, np.uint8)) > 0) & inside & ~bone
    brain = inside & ~band & (image > 40) & (image < 200)
    if brain.sum() < 500:
        return image
    return np.where(band, np.float32(np.median(image[brain])), image)


def variants(images: np.ndarray) -> dict[str, np.ndarray]:
    head = images > 0
    return {
        "as read": images,
        "smoothed, sigma 0.7": np.stack([cv2.GaussianBlur(i, (0, 0), 0.7) for i in images]),
        "smoothed, sigma 1.0": np.stack([cv2.GaussianBlur(i, (0, 0), 1.0) for i in images]),
        "brighter, +10": np.where(head, np.clip(images + 10, 0, 255), images),
        "brighter, +20": np.where(head, np.clip(images + 20, 0, 255), images),
        "inner table flattened, 4 px": np.stack([flatten_inner_table(i, 4) for i in images]),
        "inner table flattened, 8 px": np.stack([flatten_inner_table(i, 8) for i in images]),
    }


def grain(image: np.ndarray) -> float:
    """Fine-grain noise inside the brain (grey levels); NaN where too little brain is in the slice."""
    brain = cv2.erode(((image > 40) & (image < 200)).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    residual = image - cv2.GaussianBlur(image, (0, 0), 2.0)
    return float(residual[brain].std()) if brain.sum() > 500 else float("nan")


def inner_table(image: np.ndarray, depth: int = DEPTH) -> list[np.ndarray]:
    """Per row of the middle half, from each side: the ``depth`` pixels just inside the first run of bone."""
    rows = image.shape[0]
    profiles = []
    for row in image[rows // 4: 3 * rows // 4]:
        for line in (row, row[::-1]):
            bone = np.flatnonzero(line >= BONE)
            if not bone.size:
                continue
            after = np.flatnonzero(line[bone[0]:] < BONE)
            if not after.size or after[0] > 40:  # no inner edge, or not a skull but a bright block
                continue
            start = bone[0] + after[0]
            inside = line[start:start + depth]
            if inside.size == depth and inside.min() > 0:
                profiles.append(inside)
    return profiles


def describe(images: np.ndarray, window: tuple[float, float]) -> str:
    level, width = window
    profiles = [p for image in images for p in inner_table(image)]
    noise = np.nanmedian([grain(image) for image in images])
    if not profiles:
        return f"noise {noise:.1f}; no inner table found"
    hu = (np.mean(profiles, axis=0) / 255.0 - 0.5) * width + level
    return f"noise {noise:.1f}; inner table inward (HU): " + " ".join(f"{v:.0f}" for v in hu)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--cache", type=Path, help="a cache of the training slices (hemo cache) to compare with")
    args = parser.parse_args(argv)
    model, info = load(args.model)
    decoder = load_decoder(args.model.parent / info.bleed["file"]) if info.bleed else None
    images = read_series(args.folder, info)
    lines = [f"{len(images)} slices"]
    for name, changed in variants(images).items():
        scores = scores_of(model, decoder, changed)
        lines.append(f"{name}: " + "; ".join(f"{key} max {value.max():.2f}, {int((value >= 0.5).sum())} >= 0.5"
                                             for key, value in scores.items()))
    window = tuple(info.input_window) if info.input_window else WINDOWS["brain"]  # what older models were fed
    lines.append(f"series: {describe(images, window)}")
    if args.cache:
        with np.load(args.cache) as cache:
            normal = cache["images"][cache["labels"] == 0].astype(np.float32)
        lines.append(f"cache, {len(normal)} slices without haemorrhage: {describe(normal, window)}")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
