"""How long the app takes to redraw a long series when the user moves through it (BENCHMARKS.md).

    python tools/app_rerun.py [--slices 300] [--moves 5]

Uploads a synthetic series of 512 x 512 16-bit DICOM slices (512 KiB each, a typical thin head CT) to the
app under Streamlit's AppTest, times the first run (every slice analysed and explained) and then each
move of the viewer's slider: a rerun of the whole page that must analyse nothing, and how much of a move
the page's calls to its results cache take (one per file: the key worked out, the results unpickled).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--moves", type=int, default=5)
    args = parser.parse_args(argv)

    import numpy as np
    from conftest import dicom_bytes, head_phantom
    from streamlit.testing.v1 import AppTest

    from hemo.app import resources

    cached, looked_up = resources.analyse, []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return cached(*args, **kwargs)
        finally:
            looked_up.append(time.perf_counter() - started)

    resources.analyse = timed  # the page calls it through the module, so every look-up is timed
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=1800)
    app.run()
    image = (head_phantom(512) + 1024).astype(np.int16)
    for z in range(args.slices):
        app.file_uploader[0].upload(f"s{z}.dcm", dicom_bytes(image, position=(0, 0, 5.0 * z)), "application/dicom")
    started = time.perf_counter()
    app.run()
    first = time.perf_counter() - started
    if app.exception:
        raise SystemExit(f"the app failed: {app.exception}")
    moves, lookups = [], []
    for number in range(1, args.moves + 1):
        looked_up.clear()
        started = time.perf_counter()
        app.slider(key="viewer-study1").set_value(1 + number * (args.slices - 1) // args.moves).run()
        moves.append(time.perf_counter() - started)
        lookups.append(sum(looked_up))
    print(f"{args.slices} slices: first run {first:.1f} s; slider move median {statistics.median(moves):.2f} s "
          f"(all: {', '.join(f'{m:.2f}' for m in moves)}), of which the results cache "
          f"{statistics.median(lookups):.2f} s ({len(looked_up)} look-ups a move)")


if __name__ == "__main__":
    main()
