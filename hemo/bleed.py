"""Training-time bleed supervision: a small decoder on the EfficientNet stage, trained on the masks.

The radiologists' masks tell the backbone *where* the blood is, not only *whether* there is
some; the paper's model learns its slice label from the same ``top_activation`` features, so
Grad-CAM on them is pulled towards the bleed. The paper's model is saved alone, unchanged; the
trained decoder is saved beside it as a small model of its own (:func:`decoder`), so its map can
be shown as a second, sharper piece of evidence. Its peak (or top-4 mean) joins the slice score only where
the model's JSON says so (``slice_score`` "head+bleed" or "head+bleed-top4", chosen out of fold by
``hemo calibrate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import keras
import numpy as np
from keras import layers, ops

from hemo.backbones import FEATURE_LAYER
from hemo.model import logit
from hemo.options import MAP_SIZE, MAP_SIZES, SLICE_SCORES

#: The EfficientNet stages the decoder joins on its way up, coarse to fine (16x16, 32x32, 64x64), and its
#: filters there. A MAP_SIZE map reads the first two; a 64 x 64 map (cells of 4 x 4 pixels) all three.
SKIPS = ("block5c_add", "block3b_add", "block2b_add")
_FILTERS = (64, 32, 16)


def _checked(size: int) -> int:
    if size not in MAP_SIZES:
        raise ValueError(f"a bleed map is {' or '.join(map(str, MAP_SIZES))} cells wide, not {size}")
    return size


def _skips(size: int) -> tuple[str, ...]:
    return SKIPS[: MAP_SIZES.index(_checked(size)) + 2]


def map_size(model: keras.Model) -> int:
    """The map size of a decoder, or of a hybrid model holding one (by the stages it joins)."""
    joined = sum(1 for filters in _FILTERS if any(layer.name == f"bleed_conv_{filters}" for layer in model.layers))
    if joined < 2:
        raise ValueError(f"{model.name} holds no bleed decoder")
    return MAP_SIZES[joined - 2]


def _new_layers(size: int) -> dict[str, layers.Layer]:
    made = [layers.Conv2D(64, 1, activation="relu", name="bleed_reduce"), layers.Conv2D(1, 1, name="bleed")]
    for filters in _FILTERS[: len(_skips(size))]:
        made += [layers.UpSampling2D(2, interpolation="bilinear", name=f"bleed_up_{filters}"),
                 layers.Concatenate(name=f"bleed_skip_{filters}"),
                 layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"bleed_conv_{filters}")]
    return {layer.name: layer for layer in made}


def _decode(layer: Callable[[str], layers.Layer], top, skips):
    """Wire the decoder (its layers looked up by name) on the top feature map and the finer stages."""
    x = layer("bleed_reduce")(top)
    for skip, filters in zip(skips, _FILTERS):
        x = layer(f"bleed_conv_{filters}")(layer(f"bleed_skip_{filters}")([layer(f"bleed_up_{filters}")(x), skip]))
    return layer("bleed")(x)


def stages(model: keras.Model, size: int = MAP_SIZE) -> list:
    """The backbone outputs a decoder of ``size`` reads: ``top_activation`` then its skips, coarse to fine."""
    return [model.get_layer(name).output for name in (FEATURE_LAYER, *_skips(size))]


def with_decoder(model: keras.Model, size: int = MAP_SIZE) -> keras.Model:
    """The hybrid model with a second output ``bleed``: a ``size`` x ``size`` map of bleed *logits*.

    Shares every layer and weight with ``model``; training it trains ``model``. Logits, not
    probabilities: the loss then has a gradient however sure the decoder is (see ``bleed_loss``).
    """
    top, *skips = stages(model, size)
    bleed = _decode(_new_layers(size).__getitem__, top, skips)
    return keras.Model(model.input, {"probabilities": model.output, "bleed": bleed}, name="hemo_hybrid_bleed")


def decoder(hybrid: keras.Model) -> keras.Model:
    """The trained decoder alone: (top_activation, *skips) feature maps -> bleed logits.

    Shares its layers with ``hybrid`` (a model from :func:`with_decoder`); at inference the
    backbone runs once and feeds both the paper's head and this.
    """
    size = map_size(hybrid)
    inputs = [keras.Input(tensor.shape[1:], name=name)
              for tensor, name in zip(stages(hybrid, size), (FEATURE_LAYER, *_skips(size)))]
    return keras.Model(inputs, _decode(hybrid.get_layer, inputs[0], inputs[1:]), name="hemo_bleed_decoder")


def attach(model: keras.Model, saved_decoder: keras.Model) -> keras.Model:
    """The hybrid model again, from a saved paper model and its saved decoder (for checks on held-out data)."""
    hybrid = with_decoder(model, map_size(saved_decoder))
    for layer in saved_decoder.layers:
        if layer.weights:
            hybrid.get_layer(layer.name).set_weights(layer.get_weights())
    return hybrid


def decoder_peaks(model: keras.Model, saved_decoder: keras.Model, images: np.ndarray, batch_size: int = 32,
                  cells: int = 1):
    """The decoder's peak (or top-``cells`` mean) per slice for a batch (N, 256, 256, 1), as ``hemo cv`` records it."""
    return peaks(attach(model, saved_decoder).predict(images, batch_size=batch_size, verbose=0)["bleed"], cells)


def load_decoder(path: str | Path) -> keras.Model:
    """The decoder saved beside a model (``ModelInfo.bleed["file"]``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"the model names its bleed decoder {path.name}, which is not beside it: copy it "
                                "with the model, or remove the 'bleed' entry of the model's JSON to run without it")
    return keras.models.load_model(path, compile=False)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Logit maps -> the bleed probability of each map cell."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def peaks(logits: np.ndarray, cells: int = 1) -> np.ndarray:
    """Each map's highest bleed probability (or the mean of its ``cells`` highest): the decoder's own slice score."""
    return top_cells(probabilities(logits), cells)


def top_cells(maps: np.ndarray, cells: int = 1) -> np.ndarray:
    """Probability maps (N, ...) -> the mean of each map's ``cells`` highest cells (1: its peak).

    More than one cell reads a thin bleed spread over several partly-bleed cells by its extent, and weighs
    one bright cell at the skull less.
    """
    maps = np.asarray(maps, np.float64).reshape(len(maps), -1)
    if cells == 1:
        return maps.max(axis=1)
    return -np.mean(np.partition(-maps, cells - 1, axis=1)[:, :cells], axis=1)


def cells_of(score: str) -> int:
    """How many of the map's highest cells the named slice score reads (0: it needs no decoder)."""
    if score not in SLICE_SCORES:
        raise ValueError(f"unknown slice score '{score}': use one of {', '.join(SLICE_SCORES)}")
    return SLICE_SCORES[score]


def oof_key(cells: int) -> str:
    """The name ``hemo cv`` gives a reading of the map in a fold's oof.npz."""
    return "bleed_peak" if cells == 1 else f"bleed_top{cells}"


#: The decoder's weights in a joined slice score that ``hemo calibrate`` chooses from (0.5: the plain mean).
DECODER_WEIGHTS = (0.25, 0.375, 0.5, 0.625, 0.75)


def combined(head: np.ndarray, peak: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """The slice score "head+bleed": the mean of the head's and the decoder peak's logits, as a probability
    ("head+bleed-top4": the mean of the map's top 4 cells in place of its peak), the decoder's logit weighed
    ``weight`` and the head's ``1 - weight``.

    The head reads the whole slice through the paper's sequence model, the decoder looks for blood
    cell by cell; a slice both call bloody scores high, one that only one of them likes less. The weight
    is chosen out of fold (``ModelInfo.decoder_weight``): a head trained to be surer (focal loss) needs less
    of the decoder. Nothing else is fitted: calibration and the operating point come afterwards, out of fold.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the decoder's weight must lie in 0..1, not {weight}")
    return 1.0 / (1.0 + np.exp(-((1.0 - weight) * logit(head) + weight * logit(peak))))


def bleed_loss(y_true, logits):
    """Per-slice pixel cross-entropy on the logits, plus soft Dice on the slices that have a bleed.

    Two traps, both met: a loss on clipped probabilities has no gradient once every pixel is
    below the clip, and Dice on an empty mask rewards predicting no blood anywhere, which 87 % of
    the slices ask for. Together they let the decoder settle on an empty map within the warm-up
    epoch and pass nothing to the backbone after it. Cross-entropy on logits always has a
    gradient (sigmoid - target), and Dice only where there is blood to find keeps small bleeds
    from vanishing in the pixel mean.
    """
    axes = (1, 2, 3)
    cross_entropy = ops.mean(ops.binary_crossentropy(y_true, logits, from_logits=True), axis=axes)
    y_pred = ops.sigmoid(logits)
    mask_sum = ops.sum(y_true, axis=axes)
    dice = 1.0 - (2.0 * ops.sum(y_true * y_pred, axis=axes) + 1.0) / (mask_sum + ops.sum(y_pred, axis=axes) + 1.0)
    return cross_entropy + ops.where(mask_sum > 0, dice, ops.zeros_like(dice))


def slice_term(y_true, logits, cells: int = 4):
    """Cross-entropy of the map's top-``cells`` mean (the decoder's part of the shipped slice score) against the
    slice's label (any bleed in its mask).

    Why: the cell loss averages over the map's 1,024 cells, so one bright cell at the skull of a normal slice
    costs it a thousandth of what it costs the slice score, and a bleed smaller than a cell may never ask for a
    high peak. This term trains the few cells the slice score reads, and only them. Measured in CV on CT-ICH
    (BENCHMARKS, ``--map-score-weight 1``): the decoder then errs where the paper's model errs, and the slice score,
    the mean of the two, ranks worse; off by default.
    """
    maps = ops.reshape(ops.sigmoid(logits), (ops.shape(logits)[0], -1))
    top = ops.mean(ops.top_k(maps, cells)[0], axis=1)
    label = ops.cast(ops.sum(y_true, axis=(1, 2, 3)) > 0, top.dtype)
    return ops.binary_crossentropy(label, ops.clip(top, 1e-6, 1.0 - 1e-6))


def loss(slice_weight: float = 0.0):
    """The decoder's loss: :func:`bleed_loss`, plus ``slice_weight`` times :func:`slice_term` when above 0."""
    if slice_weight < 0:
        raise ValueError(f"the slice term's weight must be at least 0, not {slice_weight}")
    if slice_weight == 0:
        return bleed_loss

    def bleed_and_slice_loss(y_true, logits):
        return bleed_loss(y_true, logits) + slice_weight * slice_term(y_true, logits)
    return bleed_and_slice_loss


#: What a decoder map cell is trained to say: "share", the share of the cell the bleed covers; "any", whether
#: any of it is bleed. With "share" a bleed smaller than a cell (8 x 8 pixels of the 256 crop) can never ask for
#: a high peak: the smallest third of CT-ICH's bleed slices ask for 0.62 at most (median), so the decoder's
#: peak, a slice score, is built to be unsure of exactly the bleeds that are missed.
MASK_TARGETS = ("share", "any")


def targets(masks: np.ndarray, kind: str = "share", size: int = MAP_SIZE) -> np.ndarray:
    """(N, H, W) 0..255 masks -> (N, size, size, 1): each map cell's target (``MASK_TARGETS``)."""
    if kind not in MASK_TARGETS:
        raise ValueError(f"unknown mask target '{kind}': use one of {', '.join(MASK_TARGETS)}")
    shape = (_checked(size),) * 2
    if kind == "any":
        masks = [(np.asarray(m) > 127).astype(np.float32) * 255.0 for m in masks]
    cells = np.stack([cv2.resize(np.asarray(m, np.float32), shape, interpolation=cv2.INTER_AREA) / 255.0
                      for m in masks])[..., np.newaxis].astype(np.float32)
    return (cells > 0).astype(np.float32) if kind == "any" else cells


def evidence(logits: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per slice: the map's highest bleed probability (a slice score), and its soft Dice against ``target``.

    Soft Dice is what the decoder is trained on; on a slice without blood it is 0 whatever the map.
    """
    maps = probabilities(logits)
    axes = tuple(range(1, maps.ndim))
    overlap = (maps * target).sum(axis=axes)
    dice = 2 * overlap / np.maximum(maps.sum(axis=axes) + target.sum(axis=axes), 1e-9)
    return peaks(logits), dice
