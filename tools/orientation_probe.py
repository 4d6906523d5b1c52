"""What the model reads when a slice reaches it turned: real slices, their pixels turned, the header not saying so.

    python tools/orientation_probe.py ../shared/data [--model models/hemo-hybrid.keras]

Why: DICOM stores the pixels in whatever order ImageOrientationPatient says (a prone scan turned half a circle, a
converter's export transposed), and viewers show the usual axial view. Before ``hemo.acquisition.usual_view`` the model
read the pixels as stored. Here each slice is turned (half a circle, flipped top to bottom, transposed) with its
header left as it was, which is what the model saw of such a file before; the shipped model then reads each
version. Two series: the GE head (no label; the model's false alarms) and the 22 raw-HU CT-ICH bleed slices
(stored transposed from the usual view and without an ImageOrientationPatient, so ``as stored`` is the transposed
one and ``transposed`` the usual view). Printed per version: mean probability and slices at or above the slice
operating point.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.analysis import Analyzer  # noqa: E402
from hemo.model import DEFAULT_MODEL  # noqa: E402

TURNS = {"as stored": lambda a: a, "half a circle": lambda a: a[::-1, ::-1], "top to bottom": lambda a: a[::-1],
         "transposed": lambda a: a.T}


def turned(path: Path, turn) -> bytes:
    """The file with its pixels turned and its header otherwise unchanged."""
    import pydicom

    ds = pydicom.dcmread(path)
    pixels = np.ascontiguousarray(turn(ds.pixel_array))
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder (dicom/ge-head-ct, dicom/ct-ich-hu/images)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    args = parser.parse_args(argv)
    analyzer = Analyzer.load(args.model, warm=True)
    series = {"GE head (no label)": sorted((args.data / "dicom" / "ge-head-ct").glob("*.dcm")),
              "CT-ICH raw HU (22 bleed slices)": sorted((args.data / "dicom" / "ct-ich-hu" / "images").glob("*.dcm"))}
    for label, files in series.items():
        for name, turn in TURNS.items():
            files_in = [(f"{i}.dcm", turned(path, turn), "probe") for i, path in enumerate(files)]
            results = [r for each in analyzer.analyse_each(files_in) for r in each if r.analysed]
            probabilities = np.array([r.probability for r in results])
            above = int((probabilities >= analyzer.info.threshold).sum())
            print(f"{label}, {name}: mean probability {probabilities.mean():.3f}, {above} of {len(results)} at or "
                  f"above {analyzer.info.threshold:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
