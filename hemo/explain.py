"""Why the model says what it says: Grad-CAM of the EfficientNet stage and the attention weights.

The backbone runs once, compiled, for a batch; the small sequence head then gives the
probabilities, the attention weights and, through tf-keras-vis, the Grad-CAM gradients with
respect to ``top_activation``. That is the same Grad-CAM as on the whole model (the gradient
of the score with respect to that feature map), without tracing 240 EfficientNet layers
eagerly on every call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import keras
import numpy as np
import tensorflow as tf
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

from hemo import bleed
from hemo.backbones import FEATURE_LAYER
from hemo.imaging import SIZE
from hemo.model import ModelInfo, load, split

CAM_METHODS = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus}


def haemorrhage_evidence(probabilities: tf.Tensor) -> tf.Tensor:
    """Grad-CAM target: the log-odds of haemorrhage over normal, i.e. the pre-softmax logit difference."""
    return tf.math.log(probabilities[:, 1] + 1e-12) - tf.math.log(probabilities[:, 0] + 1e-12)


class _CompiledHead(keras.layers.Layer):
    """The head as one compiled TensorFlow function.

    tf-keras-vis runs its model eagerly, layer by layer; the BiLSTM's step loop then costs
    ~150 ms a call. As one tf.function the gradient tape still sees the feature map go in and
    the probabilities come out, which is all Grad-CAM differentiates.
    """

    def __init__(self, head: keras.Model) -> None:
        super().__init__(name="compiled_head", trainable=False)
        self._run = tf.function(lambda f: head(f, training=False)[0], reduce_retracing=True)

    def call(self, features):
        return self._run(features)


@dataclass(frozen=True)
class Explanation:
    """The model's answer for one slice and the evidence for it."""

    probability: float  # of haemorrhage: the model's raw softmax output
    label: int  # 1 when probability >= threshold
    cam: np.ndarray  # SIZE x SIZE in 0..1, where the EfficientNet stage saw haemorrhage evidence
    attention: np.ndarray  # (2 heads, 10, 10): how much each pseudo-time step attends to each other
    embedding: np.ndarray | None = None  # the 256-d ``dense`` features (the study model's input)
    bleed: np.ndarray | None = None  # MAP_SIZE x MAP_SIZE bleed probability per cell (a model with a decoder)
    score: float = float("nan")  # the raw slice score calibration applies to (ModelInfo.slice_score)


class Explainer:
    """Built once per model; explains batches of slices (N, 256, 256, 1) in 0..255.

    Safe to share between threads: TensorFlow's first trace of a function and tf-keras-vis's
    gradient tape are not, so calls take turns (on a CPU they would compete for the same cores
    anyway). :meth:`warm` traces everything once, so the first real caller waits no longer
    than the others. With a bleed ``decoder`` (hemo.bleed) the backbone runs once for both: its
    finer stages feed the decoder, its top stage the paper's head.
    """

    def __init__(self, model: keras.Model, info: ModelInfo | None = None, batch_size: int = 16,
                 decoder: keras.Model | None = None) -> None:
        self.info = info or ModelInfo()
        if bleed.cells_of(self.info.slice_score) and decoder is None:
            raise ValueError("this model's slice score combines the head with its bleed decoder: load it with its "
                             "decoder (Analyzer.load reads it from the model's JSON)")
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self.head = split(model)[1]
        stages = [model.get_layer(FEATURE_LAYER).output]
        if decoder is not None:
            stages = bleed.stages(model, bleed.map_size(decoder))
        backbone = keras.Model(model.input, stages)
        self._stages = tf.function(lambda x: tf.nest.flatten(backbone(x, training=False)), reduce_retracing=True)
        self._bleed = None if decoder is None else tf.function(lambda maps: decoder(maps, training=False),
                                                                reduce_retracing=True)
        self._head = tf.function(lambda f: self.head(f, training=False), reduce_retracing=True)
        features = keras.Input(self.head.input.shape[1:], name=FEATURE_LAYER)
        cam_model = keras.Model(features, _CompiledHead(self.head)(features))
        self._cams = {name: cls(cam_model, clone=False) for name, cls in CAM_METHODS.items()}

    @classmethod
    def load(cls, path: str | Path) -> "Explainer":
        """The saved model with its ModelInfo and, when the model names one, its bleed decoder."""
        model, info = load(path)
        decoder = None
        if info.bleed and info.bleed.get("file"):
            decoder = bleed.load_decoder(Path(path).parent / info.bleed["file"])
        return cls(model, info, decoder=decoder)

    def features(self, slices: np.ndarray) -> list[np.ndarray]:
        """The backbone's stages per slice (top_activation first, then the decoder's), in compiled batches."""
        parts = [self._stages(tf.constant(slices[i : i + self.batch_size]))
                 for i in range(0, len(slices), self.batch_size)]
        return [np.concatenate([part[stage].numpy() for part in parts]) for stage in range(len(parts[0]))]

    def _bleed_maps(self, stages: list[np.ndarray]) -> np.ndarray | None:
        if self._bleed is None:
            return None
        return bleed.probabilities(self._bleed([tf.constant(s) for s in stages]).numpy())[..., 0]

    def _head_outputs(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probabilities, attention, embedding = self._head(tf.constant(features))
        return probabilities.numpy()[:, 1], attention.numpy(), embedding.numpy()

    def predict(self, slices: np.ndarray) -> np.ndarray:
        """Raw probability of haemorrhage per slice."""
        with self._lock:
            return self._head_outputs(self.features(slices)[0])[0]

    def warm(self) -> None:
        """Trace the backbone, the head and both CAM methods once (the first call costs seconds)."""
        blank = np.zeros((1, SIZE, SIZE, 1), np.float32)
        for method in self._cams:
            self.explain(blank, method)

    def cam(self, features: np.ndarray, method: str = "gradcam",
            target: Callable[[tf.Tensor], tf.Tensor] = haemorrhage_evidence) -> np.ndarray:
        """Grad-CAM maps (N, SIZE, SIZE) in 0..1 from top_activation feature maps."""
        if method not in self._cams:
            raise ValueError(f"unknown method '{method}'; choose one of {', '.join(self._cams)}")
        raw = self._cams[method](target, features, penultimate_layer=FEATURE_LAYER,
                                 seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False)
        return np.stack([_upsample(np.asarray(c)) for c in np.reshape(raw, (len(features), *raw.shape[-2:]))])

    def explain(self, slices: np.ndarray, method: str = "gradcam") -> list[Explanation]:
        """Probability, label, Grad-CAM, attention, embedding (and bleed map) for every slice of the batch."""
        if method not in self._cams:
            raise ValueError(f"unknown method '{method}'; choose one of {', '.join(self._cams)}")
        with self._lock:
            stages = self.features(slices)
            probabilities, attention, embeddings = self._head_outputs(stages[0])
            cams = self.cam(stages[0], method)
            maps = self._bleed_maps(stages)
        scores = probabilities
        if bleed.cells_of(self.info.slice_score):
            scores = bleed.combined(probabilities, bleed.top_cells(maps, bleed.cells_of(self.info.slice_score)),
                                    self.info.decoder_weight)
        shown = self.info.calibrate(scores)
        per_slice = maps if maps is not None else [None] * len(probabilities)
        return [Explanation(float(p), int(q >= self.info.threshold), c, a, e, m, float(r))
                for p, q, c, a, e, m, r in zip(probabilities, shown, cams, attention, embeddings, per_slice, scores)]


def _upsample(cam: np.ndarray) -> np.ndarray:
    cam = cv2.resize(cam.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max())
    return cam / peak if peak > 0 else cam


def colour_bar(width: int = SIZE, height: int = 14) -> np.ndarray:
    """The overlay's colour scale as an RGB strip, 0 (left, blue) to 1 (right, red)."""
    ramp = np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1))
    return cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay(pixels: np.ndarray, cam: np.ndarray, opacity: float = 0.4) -> np.ndarray:
    """RGB uint8 picture of the slice with a 0..1 map over it: jet colours on a fixed scale, each pixel
    blended in proportion to its value, so where the map is 0 the slice shows through untouched."""
    gray = np.clip(pixels.squeeze(), 0, 255).astype(np.uint8)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).astype(np.float32)
    value = np.clip(np.asarray(cam, np.float32), 0, 1)
    heat = cv2.cvtColor(cv2.applyColorMap((value * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    alpha = (float(opacity) * np.sqrt(value))[..., np.newaxis]  # sqrt: weak evidence stays visible, zero does not
    return (base * (1 - alpha) + heat.astype(np.float32) * alpha).round().astype(np.uint8)
