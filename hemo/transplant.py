"""Bleed transplant: a slice without haemorrhage with another patient's annotated bleed pasted in.

With 29 bleed patients the model can learn a bleed patient's skull, swelling or fracture instead of the
blood. A normal slice and the same slice with a real bleed in it differ by the blood alone, so training on
both points the paper's head at the blood. (The bleed decoder is not taught on them: taught on the pasted
masks, fold 0's decoder flagged more normal slices; BENCHMARKS.md.) The slices
arrive cropped to the head and resized alike, so a bleed keeps roughly its anatomical place; it is kept
only where the recipient has brain-like soft tissue inside its skull, and its edge is feathered so that no
seam marks it.
"""

from __future__ import annotations

import cv2
import numpy as np

from hemo.partial_volume import skull

#: Grey level (0..255, the training window) above which a recipient's pixel is tissue rather than air or fat.
TISSUE = 40.0
#: The share of a donor's bleed that must land on the recipient's soft tissue for a transplant to count.
LEAST_SHARE = 0.6
#: Fewest bleed pixels (of the 256 crop) a transplant keeps.
LEAST_PIXELS = 20
#: Share of the normal slices drawn in training that get a bleed transplanted.
TRANSPLANT_SHARE = 0.2
#: Donors tried per slice before it is left normal (about half of them fit a given recipient).
TRANSPLANT_TRIES = 3
#: Feathering of the pasted edge (Gaussian sigma, pixels).
FEATHER = 0.8


def transplant(image: np.ndarray, donor: np.ndarray, donor_mask: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """``image`` with the bleed of ``donor`` (where ``donor_mask`` > 127) pasted in, and the pasted mask (0/255).

    All three are 0..255 arrays of one shape. The donor is mirrored left-right on half of the draws. None when
    the recipient shows no skull or too little of the bleed lands on its soft tissue (a transplant into bone,
    air or the orbit would teach nothing true).
    """
    if rng.random() < 0.5:
        donor, donor_mask = donor[:, ::-1], donor_mask[:, ::-1]
    found = skull(image, least=50)
    if found is None:
        return None
    bone, hull = found
    tissue = hull & ~bone & (image > TISSUE)
    bleed = donor_mask > 127
    kept = bleed & tissue
    if kept.sum() < max(LEAST_PIXELS, LEAST_SHARE * bleed.sum()):
        return None
    alpha = cv2.GaussianBlur(kept.astype(np.float32), (0, 0), FEATHER) * tissue
    pasted = image * (1 - alpha) + donor.astype(np.float32) * alpha
    return pasted.astype(np.float32), kept.astype(np.float32) * 255.0
