"""Is it a head CT? Refuse pictures the model would score without meaning, warn on doubtful ones.

The classifier answers on anything 256x256: a blank frame scored 0.45 and random noise 0.56.
These checks run on every slice before it reaches the model, on the model's own input (and on
the Hounsfield units when the file has them), with messages a radiologist understands.
"""

from __future__ import annotations

import numpy as np

from hemo.acquisition import KERNEL_NOTE
from hemo.errors import HemoInputError
from hemo.imaging import EIGHT_BIT_NOTE, Slice

#: Below this standard deviation (grey levels of 255) the picture is blank.
BLANK_STD = 3.0
#: Real CT slices have strongly correlated neighbouring pixels (> 0.9); noise has none.
MIN_NEIGHBOUR_CORRELATION = 0.5
#: Share of the picture that must be more than background for a head to be there.
MIN_HEAD_FRACTION = 0.05
#: Share of a slice in HU that must be air (below -500 HU): a head CT slice has air round the head (42-58 % of each
#: of the 50 real slices in HU in ``../shared/data``); a page a scanner saves as CT (a dose report) has none.
MIN_AIR = 0.01
#: Above this pixel noise in brain tissue (HU, ``imaging.tissue_noise``) the model misses blood: real soft-kernel
#: slices measure 0.7-3.1 HU, 8 HU of added noise cost nothing, 15 HU or an emulated sharp kernel at 10-14 HU
#: cost it from a fifth to more than half of the bleeds it found (``tools/kernel_probe.py``, BENCHMARKS.md).
NOISY_HU = 10.0
NOISY_NOTE = (f"Noisy or sharp image (pixel noise in brain tissue above {NOISY_HU:g} HU): a bone or other sharp "
              "reconstruction kernel, or a very thin slice. The model misses more blood on such images; read a "
              "soft-tissue series of 4-5 mm if the study has one.")

#: Grey level from which a pixel of an 8-bit slice counts as white, and the share of the head below which the skull
#: is not white: in a brain window the skull is (every CT-ICH training JPEG: 6.8 % of the head or more; subdural
#: and soft-tissue windows too), in a bone window it is grey (0.0-0.1 %): ``tools/window_probe.py``, BENCHMARKS.md.
WHITE, MIN_WHITE_SHARE = 250, 0.01
GREY_SKULL_NOTE = ("The skull is not white in this 8-bit image: it was probably exported in a bone or other wide "
                   "window, not the brain window the model learnt (level 40, width 120 HU). On real slices exported "
                   "in a bone window the model missed bleeds and called normal slices; export the slice in a brain "
                   "window, or give the DICOM.")


def white_share(pixels: np.ndarray) -> float:
    """Share of the head's pixels (above the background) that are white (at or above ``WHITE``)."""
    head = pixels[pixels > 5]
    return float((head >= WHITE).mean()) if head.size else 0.0


def check(slice_: Slice) -> tuple[str, ...]:
    """Raise HemoInputError for blank, noise or non-finite slices; return warnings for doubtful ones."""
    name, q = slice_.source, slice_.quality
    frame = f" (frame {slice_.frame + 1})" if slice_.frame else ""
    if not q.get("finite", True) or not np.isfinite(slice_.pixels).all():
        raise HemoInputError(f"{name}{frame}: the image holds values that are not numbers (NaN or infinite).")
    if q.get("std", BLANK_STD) < BLANK_STD or q.get("foreground", 1.0) < MIN_HEAD_FRACTION:
        raise HemoInputError(f"{name}{frame}: the image is blank in the brain window; there is no head to analyse.")
    if q.get("neighbour_correlation", 1.0) < MIN_NEIGHBOUR_CORRELATION:
        raise HemoInputError(f"{name}{frame}: the image looks like random noise, not a CT slice.")
    unrescaled = "hu_min" in q and q["hu_min"] > -200 and q["hu_max"] > 1000
    if "air" in q and q["air"] < MIN_AIR and not unrescaled:
        raise HemoInputError(f"{name}{frame}: no air in the image (nothing below -500 HU), where a head CT slice has "
                             "air round the head: a page saved as CT (a dose report, a protocol) or a reconstruction "
                             "inside the head, not a whole axial slice.")
    warnings: list[str] = []
    if "hu_min" in q:
        if unrescaled:
            warnings.append("The values look un-rescaled (no air near -1000 HU, values far above bone): check "
                            "RescaleIntercept; the verdict may be meaningless.")
        elif q["tissue"] < 0.03:
            warnings.append("Few pixels in the range of brain tissue (-100..100 HU): this may not be a head CT "
                            "slice; the verdict may be meaningless.")
        elif (q.get("noise_hu") or 0.0) > NOISY_HU and not any(w.startswith(KERNEL_NOTE) for w in slice_.warnings):
            warnings.append(NOISY_NOTE)  # the header's kernel, where it is named, has already said why
    elif EIGHT_BIT_NOTE in slice_.warnings and white_share(slice_.pixels) < MIN_WHITE_SHARE:  # exported in a window
        warnings.append(GREY_SKULL_NOTE)
    return tuple(warnings)
