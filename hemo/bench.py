"""``python -m hemo bench``: per-slice times of prediction and explanation on this machine."""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def _best_of(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def run(model_path: str | None = None, repeats: int = 10) -> str:
    """Median seconds after warm-up: predict 1 slice, explain 1 slice, explain 30 slices."""
    from hemo.explain import Explainer
    from hemo.model import build

    explainer = Explainer.load(model_path) if model_path else Explainer(build(pretrained="none"))
    rng = np.random.default_rng(0)
    one = rng.uniform(0, 255, (1, 256, 256, 1)).astype(np.float32)
    thirty = rng.uniform(0, 255, (30, 256, 256, 1)).astype(np.float32)
    for batch in (one, thirty):  # warm-up: tracing for each batch shape
        explainer.explain(batch)
        explainer.explain(batch, "gradcam++")
    rows = [
        ("predict, 1 slice", _best_of(lambda: explainer.predict(one), repeats), 1, 0.050),
        ("predict + Grad-CAM + attention, 1 slice", _best_of(lambda: explainer.explain(one), repeats), 1, 0.250),
        ("same with Grad-CAM++, 1 slice", _best_of(lambda: explainer.explain(one, "gradcam++"), repeats), 1, 0.250),
        ("predict + Grad-CAM + attention, 30 slices",
         _best_of(lambda: explainer.explain(thirty), max(3, repeats // 3)), 30, 6.0),
    ]
    lines = [f"hemo bench: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"median of {repeats} after warm-up", f"{'':<44}{'total s':>9}{'per slice ms':>14}{'target':>10}"]
    for name, seconds, n, target in rows:
        lines.append(f"{name:<44}{seconds:>9.3f}{1000 * seconds / n:>14.0f}{target:>9.3g}s")
    return "\n".join(lines)
