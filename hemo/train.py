"""Train the hybrid model: augmentation, class balance, warm-up, early stopping on validation AUC.

Backend-neutral Keras (the data pipeline is a ``keras.utils.PyDataset`` of NumPy/OpenCV
augmentations), so the same code trains on the TensorFlow CPU stack and on a GPU backend.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import keras
import numpy as np

from hemo import datasets
from hemo.evaluate import choose_threshold, report
from hemo.model import ModelInfo, build, copy_weights, load, predict, save


@dataclass
class TrainConfig:
    backbone: str = "efficientnet_lite0"
    pretrained: str = "imagenet"
    epochs: int = 15
    warmup_epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 1e-4
    label_smoothing: float = 0.1
    patience: int = 4
    augment: bool = True
    balance: bool = True
    seed: int = 0
    init: str | None = None  # start from a saved model's weights (skips the warm-up)


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented, class-weighted batches of (slice, one-hot label, sample weight)."""

    def __init__(self, data: datasets.Dataset, batch_size: int, augment: bool, balance: bool, seed: int) -> None:
        super().__init__()
        self.data, self.batch_size, self.augment = data, batch_size, augment
        self.rng = np.random.default_rng(seed)
        counts = np.bincount(data.labels, minlength=2).astype(float)
        self.class_weight = len(data) / (2 * np.maximum(counts, 1)) if balance else np.ones(2)
        self.order = self.rng.permutation(len(data))

    def __len__(self) -> int:
        return int(np.ceil(len(self.data) / self.batch_size))

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.data))

    def __getitem__(self, index: int):
        batch = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        images = self.data.images[batch].astype(np.float32)
        if self.augment:
            images = np.stack([augment(image, self.rng) for image in images])
        labels = self.data.labels[batch]
        return images[..., np.newaxis], np.eye(2, dtype=np.float32)[labels], self.class_weight[labels].astype(np.float32)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible other acquisition: flip, small rotation/shift/zoom, contrast and brightness."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    size = image.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-10, 10), rng.uniform(0.93, 1.07))
    matrix[:, 2] += rng.uniform(-0.05, 0.05, 2) * size
    image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    image = (image - 127.5) * rng.uniform(0.85, 1.15) + 127.5 + rng.uniform(-12, 12)
    return np.clip(image, 0, 255)


class ValidationAUC(keras.callbacks.Callback):
    """Adds ``val_auc`` (slice level) and the learning rate to the epoch logs; early stopping watches val_auc."""

    def __init__(self, data: datasets.Dataset, batch_size: int) -> None:
        super().__init__()
        self.data, self.batch_size = data, batch_size

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from sklearn.metrics import roc_auc_score

        if logs is None:
            return
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if len(set(self.data.labels.tolist())) == 2:
            scores = predict(self.model, self.data.inputs(), self.batch_size)
            logs["val_auc"] = float(roc_auc_score(self.data.labels, scores))


class EpochLog(keras.callbacks.Callback):
    """One readable line per epoch, for logs of long background runs."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage, self.start = stage, time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items() if isinstance(v, (int, float)))
        print(f"[{self.stage}] epoch {epoch + 1} {shown} ({time.time() - self.start:.0f}s)", flush=True)


def _set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """(Un)freeze the EfficientNet stage; its batch norms stay frozen (small batches, ImageNet statistics)."""
    for layer in model.layers:
        if layer.name == "gap":
            break
        layer.trainable = trainable and not isinstance(layer, keras.layers.BatchNormalization)


def _compile(model: keras.Model, config: TrainConfig) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def fit(train: datasets.Dataset, validation: datasets.Dataset, config: TrainConfig,
        verbose: int = 1) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train on ``train``, select by validation AUC; returns the model with its best weights and the history."""
    keras.utils.set_random_seed(config.seed)
    model = build(config.backbone, config.pretrained)
    if config.init:
        copy_weights(load(config.init)[0], model)
    batches = Batches(train, config.batch_size, config.augment, config.balance, config.seed)
    val_data = (validation.inputs(), np.eye(2, dtype=np.float32)[validation.labels])
    history: dict[str, list[float]] = {}

    def run(stage: str, epochs: int, callbacks: list) -> None:
        _compile(model, config)
        result = model.fit(batches, validation_data=val_data, epochs=epochs, verbose=verbose,
                           callbacks=[ValidationAUC(validation, 32), *callbacks, EpochLog(stage)])
        for key, values in result.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        history.setdefault("stage", []).extend([stage] * len(result.history["loss"]))

    if config.warmup_epochs and config.pretrained != "none" and not config.init:
        _set_backbone_trainable(model, False)
        run("warm-up", config.warmup_epochs, [])
        _set_backbone_trainable(model, True)
    run("fine-tune", config.epochs, [
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=config.patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6),
    ])
    return model, history


def train(data: datasets.Dataset, out_dir: str | Path, config: TrainConfig, split: str = "patient",
          val_fraction: float = 0.2, source: str = "", verbose: int = 1) -> dict:
    """Split, fit, choose the threshold on validation patients, and write the model and its records."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if split == "patient":
        parts = datasets.split_patients(data, val_fraction, config.seed)
        train_set = data.subset(datasets.indices(data, parts["train"]))
        val_set = data.subset(datasets.indices(data, parts["validation"]))
    elif split == "slice":
        print("WARNING: --split slice reproduces the paper's protocol; it leaks neighbouring slices of one "
              "patient into validation and overstates every metric.")
        parts = datasets.split_slices(data, val_fraction, config.seed)
        train_set, val_set = data.subset(parts["train"]), data.subset(parts["validation"])
    else:
        raise ValueError(f"unknown split '{split}': use 'patient' or 'slice'")
    started = time.time()
    model, history = fit(train_set, val_set, config, verbose)
    seconds = time.time() - started
    scores = predict(model, val_set.inputs())
    threshold = choose_threshold(val_set.labels, scores)
    metrics = report(val_set.labels, scores, threshold, val_set.patients if split == "patient" else None)
    info = ModelInfo(config.backbone, config.pretrained, threshold)
    save(model, out / "hemo-hybrid.keras", info)
    run = {"data": source, "split": split, "val_fraction": val_fraction, "n_train": len(train_set),
           "n_validation": len(val_set), "seconds": round(seconds, 1), "epochs_run": len(history["loss"]),
           "backend": keras.backend.backend(), "machine": platform.machine(), **asdict(config)}
    (out / "history.json").write_text(json.dumps({"history": history, "run": run}, indent=1) + "\n")
    datasets.write_split(out / "split.json", {"split": split, "seed": config.seed, **parts})
    (out / "metrics.json").write_text(json.dumps({"run": run, **metrics}, indent=1) + "\n")
    return metrics


def cross_validate(data: datasets.Dataset, config: TrainConfig, folds: int = 5, only: list[int] | None = None,
                   verbose: int = 0) -> list[dict]:
    """Patient-grouped k-fold CV: one row per fold with AUC, patient AUC, epochs and time.

    Sensitivity and specificity use the Youden threshold of the fold's own validation slices,
    so they are optimistic; compare variants by AUC.
    """
    rows = []
    for fold, patients in enumerate(datasets.patient_folds(data, folds, config.seed)):
        if only is not None and fold not in only:
            continue
        val_set = data.subset(datasets.indices(data, patients))
        train_set = data.subset(np.setdiff1d(np.arange(len(data)), datasets.indices(data, patients)))
        started = time.time()
        model, history = fit(train_set, val_set, config, verbose)
        scores = predict(model, val_set.inputs())
        metrics = report(val_set.labels, scores, choose_threshold(val_set.labels, scores), val_set.patients)
        rows.append({"fold": fold, "backbone": config.backbone, "pretrained": config.pretrained,
                     "patients": len(patients), "n": metrics["n"], "positives": metrics["positives"],
                     "auc": metrics["auc"], "patient_auc": metrics["patient_auc"],
                     "sensitivity": metrics["sensitivity"], "specificity": metrics["specificity"],
                     "epochs": len(history["loss"]), "seconds": round(time.time() - started, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows
