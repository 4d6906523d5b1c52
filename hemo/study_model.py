"""The study model: read a whole series in scan order, as the RSNA 2019 winners did.

The paper's model scores one slice at a time. A bleed is a 3-D object: it spans neighbouring
slices, and a run of "positive" slices along the skull rim on one side only looks different
from a collection that grows and shrinks. This small bidirectional GRU reads the paper model's
per-slice embeddings (the 256-d ``dense`` layer) and raw scores along the scan axis and gives a
refined score per slice and one per study (the highest refined slice).

It is trained on *out-of-fold* embeddings of patient-grouped cross-validation, so it learns
from embeddings of patients the backbone never saw, like those of a new patient.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

EMBEDDING = 256


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def features(embeddings: np.ndarray, raw_scores: np.ndarray) -> np.ndarray:
    """Per-slice input: the embedding and the raw score's logit, (T, 257) float32."""
    return np.concatenate([embeddings, _logit(raw_scores)[:, None] / 4.0], axis=1).astype(np.float32)


class MaskedMax(layers.Layer):
    """The study logit: the highest slice logit, ignoring padding."""

    def call(self, logits, mask):
        return ops.max(logits[..., 0] - 1e4 * (1.0 - mask), axis=1, keepdims=True)

    def compute_mask(self, inputs, previous_mask=None):
        return None


def build() -> keras.Model:
    """(slices (B, T, 257), mask (B, T)) -> {"slices": (B, T, 1) logits, "study": (B, 1) logit}.

    Each slice's refined logit is its raw logit plus a learned correction from the neighbourhood
    (a small bottleneck on the embedding, then a bidirectional GRU along the scan). The correction
    starts at zero: untrained, the study model *is* the highest-slice rule, and 66 studies can
    only move it as far as they justify (L2 and dropout keep it small).
    """
    x = keras.Input((None, EMBEDDING + 1), name="slices_in")
    mask = keras.Input((None,), name="mask")
    raw = layers.Dense(1, use_bias=False, trainable=False, kernel_initializer="zeros", name="raw_logit")(x)
    h = layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3), name="reduce")(x)
    h = layers.Dropout(0.5, name="dropout")(h)
    h = layers.Bidirectional(layers.GRU(8, return_sequences=True), name="bigru")(h, mask=ops.cast(mask, "bool"))
    correction = layers.Dense(1, kernel_initializer="zeros", name="refine")(h)
    slice_logits = layers.Add(name="slices")([raw, correction])
    study_logit = MaskedMax(name="study")(slice_logits, mask)
    model = keras.Model([x, mask], {"slices": slice_logits, "study": study_logit}, name="hemo_study")
    picks_raw = np.zeros((EMBEDDING + 1, 1), np.float32)
    picks_raw[-1, 0] = 4.0  # features() stores logit / 4
    model.get_layer("raw_logit").set_weights([picks_raw])
    return model


def _pad(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(s) for s in sequences)
    x = np.zeros((len(sequences), length, EMBEDDING + 1), np.float32)
    mask = np.zeros((len(sequences), length), np.float32)
    for i, s in enumerate(sequences):
        x[i, : len(s)], mask[i, : len(s)] = s, 1.0
    return x, mask


def fit(sequences: list[np.ndarray], slice_labels: list[np.ndarray], epochs: int = 80, seed: int = 0) -> keras.Model:
    """Train on whole studies (each a (T, 257) array in scan order with per-slice labels)."""
    keras.utils.set_random_seed(seed)
    model = build()
    x, mask = _pad(sequences)
    y_slices = np.zeros_like(mask)
    for i, y in enumerate(slice_labels):
        y_slices[i, : len(y)] = y
    y_study = np.array([float(np.max(y)) for y in slice_labels], np.float32)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss={"slices": loss, "study": loss},
                  loss_weights={"slices": 1.0, "study": 0.5})
    model.fit([x, mask], {"slices": y_slices[..., None], "study": y_study[:, None]},
              sample_weight={"slices": mask, "study": np.ones(len(x), np.float32)},
              batch_size=8, epochs=epochs, verbose=0, shuffle=True)
    return model


def predict(model: keras.Model, sequence: np.ndarray) -> tuple[np.ndarray, float]:
    """Refined raw probabilities per slice and the study's raw probability for one ordered series."""
    x, mask = _pad([sequence])
    out = model([x, mask], training=False)
    slices = 1.0 / (1.0 + np.exp(-np.asarray(out["slices"])[0, :, 0]))
    study = 1.0 / (1.0 + np.exp(-float(np.asarray(out["study"])[0, 0])))
    return slices, study


def save(model: keras.Model, path: str | Path) -> Path:
    path = Path(path)
    model.save_weights(path)
    return path


def load(path: str | Path) -> keras.Model:
    model = build()
    model.load_weights(Path(path))
    return model
