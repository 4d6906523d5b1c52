"""A slice blended with its neighbour (hemo.partial_volume): the physics, the cache, the training draws."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import ct_ich_folder

from hemo import augment as augmentation
from hemo import datasets
from hemo.augment import TRAIN_WINDOW, augment
from hemo.partial_volume import shoulder, thicken


def test_bone_dominates_a_voxel_it_half_fills_as_it_does_in_hounsfield_units():
    bone, brain = np.full((4, 4), 255.0, np.float32), np.full((4, 4), 127.5, np.float32)  # brain: 40 HU
    assert np.allclose(thicken(brain, bone, 0.5, 700.0, TRAIN_WINDOW), 255.0)  # (700 + 40) / 2 HU: still bone
    assert np.allclose(thicken(brain, bone, 0.5, 120.0, TRAIN_WINDOW), 212.5)  # 80 HU: what grey-level averaging
    assert np.allclose(thicken(brain, brain, 0.4, 700.0, TRAIN_WINDOW), brain, atol=1e-3)  # would give for any bone
    assert np.allclose(thicken(brain, np.zeros_like(brain), 0.1, 700.0, TRAIN_WINDOW), 0.0)  # air: -1000 HU


def test_the_cache_keeps_each_slices_same_label_neighbour_cropped_like_it(tmp_path):
    root = ct_ich_folder(tmp_path / "data", patients=2, slices=6)
    second = root / "Patients_CT" / "049" / "brain" / "2.jpg"  # brighter, so that it can be told apart
    picture = cv2.imread(str(second), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(second), np.where(picture > 0, np.clip(picture.astype(int) + 30, 0, 255), 0).astype(np.uint8))
    data = datasets.load(root, neighbours=True)
    assert datasets.load(root).neighbours is None  # only when asked: it doubles the cache
    where = {name: i for i, name in enumerate(data.names)}

    def neighbour(patient: str, number: int) -> np.ndarray:
        return data.neighbours[where[f"Patients_CT/{patient}/brain/{number}.jpg"]].astype(float)

    def image(patient: str, number: int) -> np.ndarray:
        return data.images[where[f"Patients_CT/{patient}/brain/{number}.jpg"]].astype(float)

    assert np.abs(neighbour("049", 1) - image("049", 2)).mean() < 1.0  # the next slice
    assert np.abs(neighbour("049", 3) - image("049", 4)).mean() < 1.0 and image("049", 2).mean() > \
        image("049", 4).mean() + 10
    assert np.abs(neighbour("049", 6) - image("049", 5)).mean() < 1.0  # the last: the previous one
    assert neighbour("050", 2).any() and not neighbour("050", 6).any()  # 3 bleeds, 5 bleeds and 7 is not there
    data.save(tmp_path / "cache.npz")
    assert np.array_equal(datasets.load(tmp_path / "cache.npz").subset([3, 1]).neighbours, data.neighbours[[3, 1]])


def test_training_draws_blend_the_neighbour_in_first_and_leave_other_draws_as_they_were(monkeypatch):
    rng = np.random.default_rng(0)
    image, beside = rng.uniform(0, 255, (2, 64, 64)).astype(np.float32)
    alone = augment(image, np.random.default_rng(5))[0]
    assert np.array_equal(augment(image, np.random.default_rng(5), neighbour=None)[0], alone)
    assert np.array_equal(augment(image, np.random.default_rng(5), neighbour=np.zeros_like(beside))[0], alone)
    monkeypatch.setattr(augmentation, "THICK_SHARE", 1.0)
    draw = np.random.default_rng(5)
    draw.random()
    weight, bone = draw.uniform(0.2, 0.5), draw.uniform(200, 1000)
    expected = augment(thicken(image, beside, weight, bone, TRAIN_WINDOW), draw)[0]
    assert np.allclose(augment(image, np.random.default_rng(5), neighbour=beside)[0], expected)


def test_training_with_thick_slices_asks_for_a_cache_with_neighbours():
    from conftest import phantom_slices

    from hemo.train import Batches

    with pytest.raises(ValueError, match="--neighbours"):
        Batches(phantom_slices(8), 4, augment=True, balance=True, seed=0, thick=True)


def test_batches_trained_with_thick_slices_blend_the_cached_neighbour_in(monkeypatch):
    from dataclasses import replace

    from conftest import phantom_slices

    from hemo.train import Batches

    data = phantom_slices(8)
    data = replace(data, neighbours=np.roll(data.images, 1, axis=0))  # another slice beside each one
    monkeypatch.setattr(augmentation, "THICK_SHARE", 1.0)
    thick = Batches(data, 4, augment=True, balance=True, seed=0, thick=True)[0][0]
    plain = Batches(data, 4, augment=True, balance=True, seed=0)[0][0]
    assert thick.shape == plain.shape and not np.allclose(thick, plain)
    assert np.array_equal(Batches(replace(data, neighbours=np.zeros_like(data.images)), 4, augment=True,
                                  balance=True, seed=0, thick=True)[0][0], plain)  # no neighbour: drawn as before


def _skull(size: int = 128) -> np.ndarray:
    """A ring of clipped bone (255) round brain at 40 HU (127.5), air outside: a slice with an inner table."""
    image = np.zeros((size, size), np.float32)
    cv2.circle(image, (size // 2, size // 2), 50, 255.0, -1)
    cv2.circle(image, (size // 2, size // 2), 45, 127.5, -1)
    return image


def test_a_shoulder_raises_only_the_band_just_inside_part_of_the_skull():
    image = _skull()
    raised = shoulder(image, np.random.default_rng(3), TRAIN_WINDOW) - image
    rows, columns = np.indices(image.shape)
    radius = np.hypot(rows - 64, columns - 64)
    band, deep = (radius > 43) & (radius < 44.5), radius < 30
    assert raised[band].max() > 10 and (raised[band] < 1).mean() > 0.05  # bright on an arc, not all round
    assert raised[deep].max() < 2 and np.all(raised[radius > 45.5] == 0)  # not deep inside, not bone or air
    assert raised.min() >= 0
    flat = np.full((64, 64), 127.5, np.float32)  # no skull to draw a shoulder inside
    assert np.array_equal(shoulder(flat, np.random.default_rng(3), TRAIN_WINDOW), flat)


def test_training_draws_shoulders_on_the_slice_and_move_its_mask_as_before(monkeypatch):
    from dataclasses import replace

    from conftest import phantom_slices

    from hemo.train import Batches

    data = phantom_slices(8)
    masks = np.zeros(data.images.shape, np.uint8)
    masks[data.labels == 1, 100:120, 100:120] = 255
    data = replace(data, images=np.stack([cv2.resize(_skull(), data.images.shape[1:]).astype(np.uint8)] * 8),
                   masks=masks)
    monkeypatch.setattr(augmentation, "SHOULDER_SHARE", 1.0)
    drawn = Batches(data, 8, augment=True, balance=True, seed=0, masks=True, shoulder=True)[0]
    plain = Batches(data, 8, augment=True, balance=True, seed=0, masks=True)[0]
    assert drawn[0].shape == plain[0].shape and not np.allclose(drawn[0], plain[0])
    image, mask = data.images[1].astype(np.float32), masks[1].astype(np.float32)
    draw = np.random.default_rng(5)
    draw.random()
    expected = augment(shoulder(image, draw, TRAIN_WINDOW), draw, mask)
    got = augment(image, np.random.default_rng(5), mask, shoulders=True)
    assert np.allclose(got[0], expected[0]) and np.array_equal(got[1], expected[1])  # the mask only moves
