"""Grad-CAM against the radiologists' masks on the raw-HU CT-ICH slices (BENCHMARKS.md).

    python tools/raw_hu_check.py ../shared/data

Each slice of dicom/ct-ich-hu/images is analysed as a user's DICOM upload would be; its mask (masks/, same
name) is cropped and resized as the slice was. Prints how many are called haemorrhage and how much more
Grad-CAM energy lies inside the bleed than outside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.analysis import Analyzer  # noqa: E402
from hemo.imaging import head_bbox, prepare, window  # noqa: E402


def check(folder: Path, analyzer: Analyzer | None = None) -> dict[str, float]:
    """Per-slice inside/outside Grad-CAM ratios, probabilities and peaks inside, summarised; the shipped model
    unless ``analyzer`` is given."""
    images = sorted((folder / "images").glob("*.dcm"))
    if not images:
        raise SystemExit(f"{folder / 'images'}: no .dcm slices")
    analyzer = analyzer or Analyzer.load()
    level, width = analyzer.model_window
    ratios, probabilities, peaks = [], [], 0
    for image in images:
        bleed = pydicom.dcmread(folder / "masks" / image.name).pixel_array > 0
        top, bottom, left, right = head_bbox(window(pydicom.dcmread(image).pixel_array.astype(float), level, width))
        mask = prepare(bleed[top:bottom, left:right].astype(np.float32) * 255, crop=False) > 127
        [result] = analyzer.analyse(image.read_bytes(), image.name)
        cam = result.cam.astype(np.float32)
        ratios.append(cam[mask].mean() / cam[~mask].mean())
        probabilities.append(result.probability)
        peaks += bool(mask[np.unravel_index(np.argmax(cam), cam.shape)])
    return {"slices": len(ratios), "called": sum(p >= analyzer.info.threshold for p in probabilities),
            "mean_probability": float(np.mean(probabilities)), "median_ratio": float(np.median(ratios)),
            "ratio_above_1": sum(r > 1 for r in ratios), "peaks_inside": peaks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="../shared/data", help="the shared data folder")
    found = check(Path(parser.parse_args(argv).data) / "dicom" / "ct-ich-hu")
    print(f"{found['slices']} slices; called haemorrhage {found['called']}, mean probability "
          f"{found['mean_probability']:.3f}; inside/outside Grad-CAM ratio median {found['median_ratio']:.2f}, "
          f"above 1 on {found['ratio_above_1']}; peak inside on {found['peaks_inside']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
