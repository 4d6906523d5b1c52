"""Grad-CAM on the 22 raw-HU CT-ICH slices with masks (BENCHMARKS.md): python tools/raw_hu_check.py ../shared/data"""

import sys
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hemo.analysis import Analyzer  # noqa: E402
from hemo.imaging import head_bbox, prepare, window  # noqa: E402

root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data") / "dicom" / "ct-ich-hu"
analyzer = Analyzer.load()
level, width = analyzer.model_window
ratios, probabilities, peaks = [], [], 0
for image in sorted((root / "images").glob("*.dcm")):
    bleed = pydicom.dcmread(root / "masks" / image.name).pixel_array > 0
    top, bottom, left, right = head_bbox(window(pydicom.dcmread(image).pixel_array.astype(float), level, width))
    mask = prepare(bleed[top:bottom, left:right].astype(np.float32) * 255, crop=False) > 127
    [result] = analyzer.analyse(image.read_bytes(), image.name)
    cam = result.cam.astype(np.float32)
    ratios.append(cam[mask].mean() / cam[~mask].mean())
    probabilities.append(result.probability)
    peaks += bool(mask[np.unravel_index(np.argmax(cam), cam.shape)])
print(f"{len(ratios)} slices; called haemorrhage {sum(p >= analyzer.info.threshold for p in probabilities)}, "
      f"mean probability {np.mean(probabilities):.3f}; inside/outside Grad-CAM ratio median {np.median(ratios):.2f}, "
      f"above 1 on {sum(r > 1 for r in ratios)}; peak inside on {peaks}")
