"""8-bit exports in other windows than the brain window: what the model reads, and how to tell them.

    python tools/window_probe.py ../shared/data [--model models/hemo-hybrid.keras]

Why: a PNG or JPEG carries no window; hemo takes an 8-bit image as already in a brain window (the CT-ICH
exports the model learnt are level 40, width 120 HU). Teachers' and other viewers' exports are sometimes in a
bone, subdural or soft-tissue window. Here real slices with their Hounsfield units (the GE head series, no label;
the 22 raw-HU CT-ICH bleed slices, turned to the usual view) are written as 8-bit PNG in five windows and read by
the shipped model: mean probability, slices at or above the slice operating point, and the share of the head's
pixels that are white (at or above ``hemo.sanity.WHITE``: the skull, in any window narrower than bone). Last, that
share on every third CT-ICH training JPEG, the range a brain-window export lies in.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.analysis import Analyzer  # noqa: E402
from hemo.datasets import is_annotation  # noqa: E402
from hemo.dicom import read_frames  # noqa: E402
from hemo.imaging import read_file, window  # noqa: E402
from hemo.model import DEFAULT_MODEL  # noqa: E402
from hemo.sanity import white_share  # noqa: E402

WINDOWS = ((40, 120), (40, 80), (80, 200), (50, 350), (600, 2800))


def hounsfield(path: Path) -> np.ndarray:
    return read_frames(path.read_bytes(), path.name)[0].hu  # as hemo reads the file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    args = parser.parse_args(argv)
    analyzer = Analyzer.load(args.model, warm=True)
    series = {"GE head (no label)": [hounsfield(p) for p in sorted((args.data / "dicom" / "ge-head-ct").glob("*.dcm"))],
              "CT-ICH raw HU (22 bleed slices)": [hounsfield(p).T for p in  # stored transposed, without orientation
                                                  sorted((args.data / "dicom" / "ct-ich-hu" / "images").glob("*.dcm"))]}
    for label, slices in series.items():
        for level, width in WINDOWS:
            pngs = [cv2.imencode(".png", np.round(window(hu, level, width)).astype(np.uint8))[1] for hu in slices]
            files = [(f"{i}.png", png.tobytes(), "") for i, png in enumerate(pngs)]
            results = [r for each in analyzer.analyse_each(files) for r in each if r.analysed]
            probabilities = np.array([r.probability for r in results])
            white = np.array([white_share(r.slice.pixels) for r in results]) * 100
            print(f"{label}, window {level}/{width}: mean probability {probabilities.mean():.3f}, "
                  f"{int((probabilities >= analyzer.info.threshold).sum())} of {len(results)} called; white "
                  f"{np.median(white):.1f} % of the head (median; {white.min():.1f}-{white.max():.1f})")
    jpegs = sorted(p for p in (args.data / "ct-ich" / "Patients_CT").glob("*/brain/*.jpg") if not is_annotation(p))
    white = np.array([white_share(read_file(p)[0].pixels) for p in jpegs[::3]]) * 100
    print(f"CT-ICH training JPEGs (every third, {len(white)}): white {np.median(white):.1f} % of the head (median; "
          f"lowest {white.min():.1f}, 1st percentile {np.percentile(white, 1):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
