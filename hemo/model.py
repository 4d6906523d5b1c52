"""The paper's hybrid model: EfficientNet -> pseudo-time steps -> BiLSTM -> self-attention -> softmax.

Kokkula & Chandra Sekhar, "Brain Haemorrhage Analysis Using Deep Learning". Layer names are
stable ("top_activation", "bilstm", "mha", ...) because the explanation code looks them up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import keras
import numpy as np
from keras import layers

from hemo.backbones import FEATURE_LAYER, build_backbone
from hemo.imaging import SIZE
from hemo.options import DEFAULT_MODEL

STEPS, STEP_FEATURES = 10, 128
CLASSES = ("normal", "haemorrhage")


@dataclass
class ModelInfo:
    """What travels beside the weights: how to prepare a slice and where to cut the probability."""

    backbone: str = "efficientnet_lite0"
    pretrained: str = "imagenet"
    threshold: float = 0.5  # slice operating point, on the (calibrated) probability that is shown
    window: str = "brain"
    crop: bool = True
    input_size: int = SIZE
    extra: dict = field(default_factory=dict)
    #: The HU window (level, width) the model was trained in; DICOM always reaches the model through
    #: it, whatever window the user looks at. None: the named ``window`` (models before this field).
    input_window: list[float] | None = None
    #: Platt scaling of the raw score's logit, fitted on out-of-fold predictions: {"a": .., "b": ..}.
    calibration: dict | None = None
    #: The study model beside this file and its operating point: {"file", "threshold", "calibration", ...}.
    study: dict | None = None
    #: How the operating points were chosen, in words and numbers (shown by the app and the CLI).
    provenance: dict = field(default_factory=dict)
    #: The bleed decoder beside this file ({"file": ...}, hemo.bleed): its map is shown as evidence.
    #: None: a model trained without the masks.
    bleed: dict | None = None
    #: What calibration and the slice threshold apply to: "head" (the paper model's softmax), "head+bleed"
    #: (hemo.bleed.combined with the decoder's peak) or "head+bleed-top4" (with the mean of its 4 highest
    #: cells), as chosen out of fold by hemo calibrate (hemo.bleed.SLICE_SCORES).
    slice_score: str = "head"
    #: How much the decoder's logit weighs in a joined slice score (hemo.bleed.combined; 0.5: the plain mean
    #: of the two logits), chosen out of fold by hemo calibrate.
    decoder_weight: float = 0.5
    #: Slices of an ordered series read with their neighbours (hemo.context): {"width", "calibration",
    #: "threshold"}, chosen out of fold by hemo calibrate; None: every slice is read alone.
    context: dict | None = None
    #: The slices that trained the weights, {"data": ..., "slices": "<a short hash of each>"} (hemo.seen), so
    #: that evaluate, the app and the CLI can say when they meet one again. None: not recorded.
    trained_on: dict | None = None

    def calibrate(self, scores):
        """The shown probability: the raw score through the stored calibration (identity without one)."""
        return platt(scores, self.calibration)


def logit(scores) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [1e-7, 1 - 1e-7] so that a saturated softmax stays finite."""
    scores = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(scores) - np.log1p(-scores)


def mean_logit(*scores) -> np.ndarray:
    """sigmoid of the mean of several readings' logits: two readings that agree keep their certainty, one that
    disagrees pulls the result toward 0.5 (head and decoder in ``hemo.bleed.combined``; a slice and its mirror)."""
    return 1.0 / (1.0 + np.exp(-np.mean([logit(s) for s in scores], axis=0)))


def platt(scores, calibration: dict | None):
    """sigmoid(a * logit(score) + b); identity when ``calibration`` is None."""
    scores = np.asarray(scores, dtype=np.float64)
    if not calibration:
        return scores
    return 1.0 / (1.0 + np.exp(-(calibration["a"] * logit(scores) + calibration["b"])))


def _head_layers() -> list[layers.Layer]:
    return [
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Reshape((STEPS, STEP_FEATURES), name="pseudo_time_steps"),
        layers.Bidirectional(layers.LSTM(64, return_sequences=True), name="bilstm"),
        layers.MultiHeadAttention(num_heads=2, key_dim=64, name="mha"),
        layers.Add(name="residual"),
        layers.Flatten(name="flatten"),
        layers.Dense(256, activation="relu", name="dense"),
        layers.Dropout(0.4, name="dropout"),
        layers.Dense(len(CLASSES), activation="softmax", name="probabilities"),
    ]


def _apply_head(head: list[layers.Layer], features):
    """Wire the sequence head on a (8, 8, 1280) feature map; returns (probabilities, attention, embedding)."""
    gap, reshape, bilstm, mha, residual, flatten, dense, dropout, probabilities = head
    sequence = bilstm(reshape(gap(features)))
    attended, scores = mha(sequence, sequence, return_attention_scores=True)
    embedding = dense(flatten(residual([sequence, attended])))
    return probabilities(dropout(embedding)), scores, embedding


def build(backbone: str = "efficientnet_lite0", pretrained: str = "imagenet") -> keras.Model:
    """Build the hybrid model with the backbone flat in the graph (Grad-CAM needs that)."""
    image = keras.Input((SIZE, SIZE, 1), name="slice")
    rgb = layers.Concatenate(name="gray_to_rgb")([image, image, image])
    features = build_backbone(backbone, rgb, pretrained).output
    probabilities = _apply_head(_head_layers(), features)[0]
    return keras.Model(image, probabilities, name="hemo_hybrid")


def split(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Split into backbone (slice -> top_activation) and head (top_activation -> probabilities, attention, embedding).

    The head shares the model's layers and weights; its input is named after the feature layer.
    """
    feature_layer = model.get_layer(FEATURE_LAYER)
    backbone = keras.Model(model.input, feature_layer.output, name="backbone")
    features = keras.Input(feature_layer.output.shape[1:], name=FEATURE_LAYER)
    head_layers = [model.get_layer(layer.name) for layer in _head_layers()]
    return backbone, keras.Model(features, list(_apply_head(head_layers, features)), name="head")


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy all weights, refreshing the Normalization layer's cached statistics."""
    target.set_weights(source.get_weights())
    for layer in target.layers:
        if isinstance(layer, layers.Normalization):
            layer.finalize_state()


def info_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def save_plain(model: keras.Model, path: str | Path) -> Path:
    """Save weights and graph without optimizer state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The same graph (B0's ImageNet rescaling too), uncompiled: clone_model would compile the copy like the
    # trained model, and a built optimizer is saved with it (Adam's moments: 3 times the file).
    clean = keras.Model.from_config(model.get_config())
    copy_weights(model, clean)
    clean.save(path)
    return path


def save(model: keras.Model, path: str | Path, info: ModelInfo) -> Path:
    """Save the model (:func:`save_plain`) and the ModelInfo as JSON beside it."""
    path = save_plain(model, path)
    info_path(path).write_text(json.dumps(asdict(info), indent=2) + "\n")
    return path


def load(path: str | Path = DEFAULT_MODEL) -> tuple[keras.Model, ModelInfo]:
    """Load a saved hybrid model (compile=False) and its ModelInfo."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no model at {path}: train one with 'python -m hemo train DATA_DIR --out {path.parent}' "
            "or pass --model PATH"
        )
    info = read_info(path)
    return keras.models.load_model(path, compile=False), info


def read_info(path: str | Path) -> ModelInfo:
    """The ModelInfo stored beside a saved model, without loading its weights."""
    path = Path(path)
    meta = info_path(path)
    if not meta.exists():
        raise FileNotFoundError(
            f"{meta.name} is missing beside {path.name}: without it the operating threshold and the input "
            "window are unknown. Copy it with the model, or re-create it with 'python -m hemo train'."
        )
    known = {f.name for f in fields(ModelInfo)}
    return ModelInfo(**{k: v for k, v in json.loads(meta.read_text()).items() if k in known})


def embed(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Raw probability of haemorrhage and the 256-d ``dense`` embedding per slice (the study model's input)."""
    both = keras.Model(model.input, [model.output, model.get_layer("dense").output])
    probabilities, embeddings = both.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(probabilities)[:, 1], np.asarray(embeddings)


def evaluation(path: str | Path) -> dict | None:
    """The evaluation JSON that ships beside a model file (its cross-validated numbers), if any."""
    record = Path(path).parent / "evaluation.json"
    return json.loads(record.read_text()) if record.exists() else None


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Probability of haemorrhage for a batch (N, 256, 256, 1) of 0..255 slices."""
    return np.asarray(model.predict(images, batch_size=batch_size, verbose=0))[:, 1]
