"""What a sharp reconstruction kernel does to the model, emulated on real HU slices (BENCHMARKS.md).

    python tools/kernel_probe.py ../shared/data [--model models/hemo-hybrid.keras]

No bone-kernel series is in the shared data, so a sharper kernel is emulated on two real soft-kernel sets:
each slice's HU plus ``amount`` times its difference from a Gaussian blur (sigma 1.5 pixels, the edge boost of
a sharp kernel), plus white noise of ``noise`` HU inside the head (the quantum noise a sharp kernel lets
through). For each setting: the pixel noise in brain tissue that ``hemo.imaging.tissue_noise`` measures, how
many slices the shipped model calls haemorrhage, and on how many ``hemo.sanity`` warns. The CT-ICH raw-HU
slices all hold a bleed (sensitivity); the GE series has no label and no collection a non-radiologist sees.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SETTINGS = ((0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (0.0, 8.0), (0.0, 15.0), (3.0, 10.0))  # (amount, noise HU)


def sharpened(path: Path, amount: float, noise: float, rng: np.random.Generator) -> bytes:
    """The DICOM file at ``path`` with its pixels as a sharper kernel would have made them."""
    ds = pydicom.dcmread(path)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    stored = ds.pixel_array
    hu = stored.astype(np.float32) * slope + intercept
    hu = hu + amount * (hu - cv2.GaussianBlur(hu, (0, 0), 1.5)) + rng.normal(0, noise, hu.shape) * (hu > -500)
    limits = np.iinfo(stored.dtype)
    ds.PixelData = np.clip(np.round((hu - intercept) / slope), limits.min, limits.max).astype(stored.dtype).tobytes()
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the shared data folder (its dicom/ subfolder)")
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)

    from hemo.analysis import Analyzer
    from hemo.errors import HemoInputError
    from hemo.dicom import read_frames
    from hemo.imaging import read_slices, tissue_noise
    from hemo.sanity import NOISY_NOTE

    analyzer = Analyzer.load(args.model) if args.model else Analyzer.load()
    sets = {"CT-ICH raw HU, 22 bleed slices": sorted((args.data / "dicom" / "ct-ich-hu" / "images").glob("*.dcm")),
            "GE series, 28 slices": sorted((args.data / "dicom" / "ge-head-ct").glob("*.dcm"))}
    for name, files in sets.items():
        if not files:
            raise SystemExit(f"{args.data}: no files for '{name}'")
        for amount, noise in SETTINGS:
            rng = np.random.default_rng(0)
            measured, called, warned, read = [], 0, 0, 0
            for path in files:
                data = sharpened(path, amount, noise, rng)
                try:
                    [piece] = read_slices(data, path.name, model_window=analyzer.model_window)
                except HemoInputError:  # refused (values no longer look like CT): counted as not analysed
                    continue
                if piece.quality.get("noise_hu") is not None:
                    measured.append(piece.quality["noise_hu"])
                [result] = analyzer.analyse(data, path.name)
                if result.analysed:
                    read += 1
                    called += result.probability >= result.threshold
                    warned += NOISY_NOTE in result.warnings
            if amount == noise == 0:  # what measuring the noise costs a slice, as the files come
                hus = [read_frames(path.read_bytes(), path.name)[0].hu for path in files]
                started = time.perf_counter()
                for hu in hus:
                    tissue_noise(hu)
                print(f"{name}: tissue_noise {1000 * (time.perf_counter() - started) / len(hus):.1f} ms a slice")
            print(f"{name}: edge boost {amount:g}, noise {noise:g} HU: tissue noise median {np.median(measured):.1f} "
                  f"HU ({min(measured):.1f}-{max(measured):.1f}); called haemorrhage {called} of {read} analysed "
                  f"({len(files)} files); noise warning on {warned}")


if __name__ == "__main__":
    main()
