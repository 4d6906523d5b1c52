"""Measure the window the CT-ICH JPEGs were exported with, from the raw-HU copies of the same slices.

    python tools/measure_window.py ../shared/data

For each slice of dicom/ct-ich-hu/images with its JPEG in ct-ich/, the HU image is put in the
JPEG's orientation (transposed, flipped), registered to the JPEG (affine, ECC), and the JPEG's
grey levels are regressed on HU inside the unsaturated range. grey = 255 * ((HU - level) / width
+ 0.5) gives level and width. Slices whose registration correlation is below 0.8 are left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pydicom


def fit(hu: np.ndarray, jpeg: np.ndarray) -> tuple[float, float, float]:
    """(correlation, level, width) of one registered pair."""
    hu = cv2.resize(np.ascontiguousarray(np.flip(hu.T, 0)), jpeg.shape[::-1], interpolation=cv2.INTER_LINEAR)
    guess = (np.clip((hu + 20) / 120, 0, 1) * 255).astype(np.float32)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    _, warp = cv2.findTransformECC(jpeg, guess, warp, cv2.MOTION_AFFINE, criteria, None, 5)
    hu = cv2.warpAffine(hu, warp, jpeg.shape[::-1], flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP)
    inside = (jpeg > 15) & (jpeg < 240) & (hu > -30) & (hu < 130)
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    x, y = hu[inside], jpeg[inside]
    slope = np.sqrt(np.polyfit(x, y, 1)[0] / np.polyfit(y, x, 1)[0])  # geometric mean: noise on both sides
    intercept = y.mean() - slope * x.mean()
    return float(np.corrcoef(x, y)[0, 1]), float((127.5 - intercept) / slope), float(255 / slope)


def main(root: str) -> None:
    data = Path(root)
    levels, widths = [], []
    for path in sorted((data / "dicom" / "ct-ich-hu" / "images").glob("*.dcm")):
        patient, number = path.stem.split("_")
        jpeg_path = data / "ct-ich" / "Patients_CT" / patient / "brain" / f"{int(number)}.jpg"
        if not jpeg_path.exists():
            print(f"{path.name}: no JPEG here (patient held back)")
            continue
        hu = pydicom.dcmread(path).pixel_array.astype(np.float32)
        correlation, level, width = fit(hu, cv2.imread(str(jpeg_path), cv2.IMREAD_GRAYSCALE).astype(np.float32))
        print(f"{path.name}: correlation {correlation:.3f}, level {level:.1f}, width {width:.1f}")
        if correlation > 0.8:
            levels.append(level)
            widths.append(width)
    print(f"{len(levels)} slices: median level {np.median(levels):.1f} HU, median width {np.median(widths):.1f} HU "
          f"(interquartile {np.percentile(widths, 25):.1f}-{np.percentile(widths, 75):.1f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="../shared/data", help="the shared data folder")
    main(parser.parse_args().data)
