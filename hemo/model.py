"""The paper's hybrid model: EfficientNet -> pseudo-time steps -> BiLSTM -> self-attention -> softmax.

Kokkula & Chandra Sekhar, "Brain Haemorrhage Analysis Using Deep Learning". Layer names are
stable ("top_activation", "bilstm", "mha", ...) because the explanation code looks them up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers

from hemo.backbones import FEATURE_LAYER, build_backbone
from hemo.imaging import SIZE

STEPS, STEP_FEATURES = 10, 128
CLASSES = ("normal", "haemorrhage")
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "hemo-hybrid.keras"


@dataclass
class ModelInfo:
    """What travels beside the weights: how to prepare a slice and where to cut the probability."""

    backbone: str = "efficientnet_lite0"
    pretrained: str = "imagenet"
    threshold: float = 0.5
    window: str = "brain"
    crop: bool = True
    input_size: int = SIZE
    extra: dict = field(default_factory=dict)


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
    """Wire the sequence head on a (8, 8, 1280) feature map; returns (probabilities, attention)."""
    gap, reshape, bilstm, mha, residual, flatten, dense, dropout, probabilities = head
    sequence = bilstm(reshape(gap(features)))
    attended, scores = mha(sequence, sequence, return_attention_scores=True)
    x = dropout(dense(flatten(residual([sequence, attended]))))
    return probabilities(x), scores


def build(backbone: str = "efficientnet_lite0", pretrained: str = "imagenet") -> keras.Model:
    """Build the hybrid model with the backbone flat in the graph (Grad-CAM needs that)."""
    image = keras.Input((SIZE, SIZE, 1), name="slice")
    rgb = layers.Concatenate(name="gray_to_rgb")([image, image, image])
    features = build_backbone(backbone, rgb, pretrained).output
    probabilities, _ = _apply_head(_head_layers(), features)
    return keras.Model(image, probabilities, name="hemo_hybrid")


def split(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Split into backbone (slice -> top_activation) and head (top_activation -> probabilities, attention).

    The head shares the model's layers and weights; its input is named after the feature layer.
    """
    feature_layer = model.get_layer(FEATURE_LAYER)
    backbone = keras.Model(model.input, feature_layer.output, name="backbone")
    features = keras.Input(feature_layer.output.shape[1:], name=FEATURE_LAYER)
    head_layers = [model.get_layer(layer.name) for layer in _head_layers()]
    probabilities, scores = _apply_head(head_layers, features)
    return backbone, keras.Model(features, [probabilities, scores], name="head")


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy all weights, refreshing the Normalization layer's cached statistics."""
    target.set_weights(source.get_weights())
    for layer in target.layers:
        if isinstance(layer, layers.Normalization):
            layer.finalize_state()


def info_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def save(model: keras.Model, path: str | Path, info: ModelInfo) -> Path:
    """Save weights and graph without optimizer state, and the ModelInfo as JSON beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = build(info.backbone, "none")
    copy_weights(model, clean)
    clean.save(path)
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
    model = keras.models.load_model(path, compile=False)
    meta = info_path(path)
    info = ModelInfo(**json.loads(meta.read_text())) if meta.exists() else ModelInfo()
    return model, info


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Probability of haemorrhage for a batch (N, 256, 256, 1) of 0..255 slices."""
    return np.asarray(model.predict(images, batch_size=batch_size, verbose=0))[:, 1]
