"""A training bleed pasted into a normal slice (hemo.transplant): where it lands, and what the batches learn."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from conftest import phantom_slices

from hemo import train
from hemo.train import Batches
from hemo.transplant import transplant


def _head(size: int = 128) -> np.ndarray:
    """A ring of clipped bone (255) round brain at 40 HU (127.5), air outside."""
    image = np.zeros((size, size), np.float32)
    cv2.circle(image, (size // 2, size // 2), 50, 255.0, -1)
    cv2.circle(image, (size // 2, size // 2), 45, 127.5, -1)
    return image


def _donor(rows: slice, columns: slice) -> tuple[np.ndarray, np.ndarray]:
    """The same head with blood (70 HU, grey 191) where the mask says, mirrored left-right so a flip is no matter."""
    image, mask = _head(), np.zeros((128, 128), np.float32)
    for cols in (columns, slice(128 - columns.stop, 128 - columns.start)):
        image[rows, cols], mask[rows, cols] = 191.0, 255.0
    return image, mask


def test_a_bleed_is_pasted_into_the_brain_with_its_mask_and_nowhere_else():
    recipient = _head()
    donor, mask = _donor(slice(55, 70), slice(30, 40))
    pasted, kept = transplant(recipient, donor, mask, np.random.default_rng(0))
    assert np.array_equal(kept, mask)  # all of it lies in the recipient's brain
    assert np.allclose(pasted[58:67, 32:38], 191.0, atol=1) and np.allclose(pasted[58:67, 90:96], 191.0, atol=1)
    far = cv2.dilate((mask > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    assert np.array_equal(pasted[far], recipient[far])  # only the bleed and its feathered edge change
    assert np.array_equal(pasted[recipient == 255], recipient[recipient == 255])  # the skull stays as it was


def test_a_bleed_that_would_land_on_bone_or_air_is_not_pasted():
    donor, mask = _donor(slice(55, 70), slice(2, 20))  # outside the recipient's inner table
    assert transplant(_head(), donor, mask, np.random.default_rng(0)) is None
    flat = np.full((128, 128), 127.5, np.float32)  # no skull: no inside to paste into
    assert transplant(flat, *_donor(slice(55, 70), slice(30, 40)), np.random.default_rng(0)) is None


def _fold(count: int = 8) -> train.datasets.Dataset:
    data = phantom_slices(count)
    heads = np.stack([cv2.resize(_head(), data.images.shape[1:])] * count).astype(np.uint8)
    masks = np.zeros(heads.shape, np.uint8)
    masks[data.labels == 1, 100:130, 60:80] = 255
    heads[data.labels == 1, 100:130, 60:80] = 191
    return replace(data, images=heads, masks=masks)


def test_batches_turn_some_normal_slices_into_bleeds_of_this_folds_own_patients(monkeypatch):
    data = _fold()
    monkeypatch.setattr(train, "TRANSPLANT_SHARE", 1.0)
    images, targets, weights = Batches(data, 8, augment=True, balance=True, seed=0, masks=True, transplant=True)[0]
    _, plain_targets, plain_weights = Batches(data, 8, augment=True, balance=True, seed=0, masks=True)[0]
    drawn = data.labels[Batches(data, 8, augment=True, balance=True, seed=0).order[:8]]
    pasted = (drawn == 0) & (targets["probabilities"][:, 1] > 0.5)
    assert pasted.sum() == (drawn == 0).sum() > 0  # every normal slice took a bleed (share 1)
    assert np.all(targets["bleed"][pasted].max(axis=(1, 2, 3)) > 0.5)  # its map moves with it,
    assert np.array_equal(weights["bleed"], (~pasted).astype(np.float32))  # but the decoder learns real bleeds only
    assert np.array_equal(weights["probabilities"], plain_weights["probabilities"])  # weighted as the slice drawn
    assert np.array_equal(plain_targets["probabilities"][:, 1], drawn)
    normal_only = replace(data, labels=np.zeros_like(data.labels), masks=np.zeros_like(data.masks))
    untouched = Batches(normal_only, 8, augment=True, balance=True, seed=0, masks=True, transplant=True)[0]
    assert not untouched[1]["probabilities"][:, 1].any()  # a fold without bleeds has nothing to give


def test_transplanting_needs_the_masks():
    with pytest.raises(ValueError, match="masks"):
        Batches(phantom_slices(8), 4, augment=True, balance=True, seed=0, transplant=True)
