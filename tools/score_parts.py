"""Which part of a slice score carried each slice of a series (BENCHMARKS.md, the GE series).

    python tools/score_parts.py ../shared/data/dicom/ge-head-ct --model runs/final-ema/hemo-hybrid.keras

Per slice in scan order: the paper model's own probability (raw softmax, before calibration), and, for a
model with a bleed decoder, the decoder's highest cell and where it lies on its map (row, column;
column 0 is the image's left edge), then the shown probability. Slices are named by their place in the
series (and their position along the scan axis where the header gives it), never by file name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.analysis import Analyzer  # noqa: E402
from hemo.model import DEFAULT_MODEL  # noqa: E402
from hemo.study import studies  # noqa: E402


def where(result) -> str:
    return "" if result.position is None else f" at {result.position:.1f} mm"


def parts(result) -> str:
    line = f"paper model {result.raw:.3f}"
    if result.bleed is not None:
        bleed = result.bleed.astype(np.float32)
        row, column = np.unravel_index(np.argmax(bleed), bleed.shape)
        line += f", bleed peak {bleed.max():.3f} at cell ({row}, {column})"
    return line + f"; shown {result.probability:.3f}"


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    analyzer = Analyzer.load(args.model)
    files = [(path.name, path.read_bytes()) for path in sorted(args.folder.iterdir()) if path.is_file()]
    lines = []
    for study in studies([r for r in analyzer.analyse_files(files) if r.analysed], analyzer):
        lines += [f"study {study.number}, slice {k}{where(result)}: {parts(result)}"
                  for k, result in enumerate(study.slices, 1)]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
