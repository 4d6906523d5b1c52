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
from typing import NamedTuple

import keras
import numpy as np

from hemo import bleed, datasets, distribution, seen
from hemo.augment import TRAIN_WINDOW, augment
from hemo.evaluate import choose_threshold, report
from hemo.history import plain
from hemo.model import ModelInfo, build, copy_weights, embed, load, predict, save, save_plain
from hemo.transplant import TRANSPLANT_SHARE, TRANSPLANT_TRIES, transplant


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
    mask_weight: float = 0.0  # > 0: train a bleed decoder on the masks jointly (hemo.bleed)
    robust: bool = False  # other-source augmentation (hemo.augment)
    thick: bool = False  # blend in each slice's neighbour on some draws (hemo.partial_volume; a cache with them)
    mask_target: str = "share"  # what a bleed-map cell learns: the share of it that is bleed, or "any" bleed in it
    map_size: int = bleed.MAP_SIZE  # the bleed map's cells across the 256 crop: 32 (8 x 8 pixels each) or 64 (4 x 4)
    shoulder: bool = False  # draw a partial-volume band inside the skull on some draws (hemo.partial_volume)
    transplant: bool = False  # paste a training bleed into some normal slices, for the head (hemo.transplant)
    freeze_below: str | None = None  # keep EfficientNet layers before this one (e.g. "block4a") frozen
    train_bn: bool = False  # fine-tune the EfficientNet's batch norms too (their statistics then follow CT)
    schedule: str = "plateau"  # "plateau" (constant without validation) or "cosine" (over the fixed epoch count)
    distribute: str | None = None  # "mirrored": data-parallel over this host's GPUs (hemo.distribution)
    ema: float = 0.0  # > 0: fine-tuning ends on the moving average of its weights, with this momentum per step
    size_weight: float = 0.0  # > 0: the paper head weighs a bleed slice up as its bleed is smaller (size_weights)
    focal: float = 0.0  # > 0: the paper head's loss is focal with this gamma (easy slices count less)
    map_score_weight: float = 0.0  # > 0: the decoder also learns its top-4 slice score (hemo.bleed.slice_term)


def size_weights(labels: np.ndarray, masks: np.ndarray | None, power: float, limit: float = 3.0) -> np.ndarray:
    """Per slice, a factor on its loss weight: (median bleed share / its bleed share) ** ``power`` for a bleed
    slice with a mask, within [1 / limit, limit] and scaled to a mean of 1 over them (the class balance stays);
    1 for every other slice.

    The smallest bleeds are the ones every recipe misses (BENCHMARKS.md, error anatomy), while a large bleed
    is found from the first epochs: this moves the head's attention from the easy bleeds to the small ones.
    Measured on the shipped recipe (``--size-weight 0.5``, 5-fold CV): no gain, off by default (BENCHMARKS.md).
    """
    weights = np.ones(len(labels), np.float32)
    if power <= 0 or masks is None:
        return weights
    share = np.array([(mask > 127).mean() for mask in masks])
    bleeding = (labels == 1) & (share > 0)
    if bleeding.any():
        factor = np.clip((np.median(share[bleeding]) / share[bleeding]) ** power, 1 / limit, limit)
        weights[bleeding] = factor / factor.mean()
    return weights


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented, class-weighted batches of (slice, one-hot label, sample weight).

    With ``masks`` the targets and weights are dicts for the model with a bleed decoder.
    """

    def __init__(self, data: datasets.Dataset, batch_size: int, augment: bool, balance: bool, seed: int,
                 masks: bool = False, robust: bool = False, thick: bool = False, mask_target: str = "share",
                 map_size: int = bleed.MAP_SIZE, shoulder: bool = False, transplant: bool = False,
                 size_weight: float = 0.0) -> None:
        super().__init__()
        self.data, self.batch_size, self.augment, self.robust = data, batch_size, augment, robust
        if thick and data.neighbours is None:
            raise ValueError("training with thick slices needs each slice's neighbour: 'hemo cache DATA OUT "
                             "--neighbours', then train on OUT")
        self.neighbours = data.neighbours if thick else None
        self.masks, self.mask_target, self.map_size = masks and data.masks is not None, mask_target, map_size
        self.shoulder = shoulder
        if transplant and data.masks is None:
            raise ValueError("transplanting bleeds needs the bleed masks: a cache of a folder with them (CT-ICH)")
        donors = np.flatnonzero((data.labels == 1) & (data.masks > 127).any(axis=(1, 2))) if transplant else None
        self.donors = donors if donors is not None and donors.size else None  # this fold's own bleeds only
        self.seed, self.epoch = seed, 0
        counts = np.bincount(data.labels, minlength=2).astype(float)
        self.class_weight = len(data) / (2 * np.maximum(counts, 1)) if balance else np.ones(2)
        if size_weight > 0 and data.masks is None:
            raise ValueError("weighing bleeds by their size needs the bleed masks: a cache of a folder with them "
                             "(CT-ICH)")
        self.size_weight = size_weights(data.labels, data.masks, size_weight)
        self.order = np.random.default_rng([seed, 0]).permutation(len(data))

    def __len__(self) -> int:
        return int(np.ceil(len(self.data) / self.batch_size))

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Order (and augment) as epoch ``epoch`` of the run does, e.g. when a run resumes mid-way."""
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))

    def __getitem__(self, index: int):
        batch = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        images = self.data.images[batch].astype(np.float32)
        masks = list(self.data.masks[batch].astype(np.float32)) if self.masks else [None] * len(batch)
        labels = self.data.labels[batch]
        weights = (self.class_weight[labels] * self.size_weight[batch]).astype(np.float32)  # by the slice drawn
        real = np.ones(len(batch), np.float32)  # the decoder learns from real bleeds only (BENCHMARKS.md)
        if self.augment:  # randomness from (seed, epoch, batch): the same whoever asks for a batch, how often
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if self.donors is not None:
                labels = self._transplant(images, masks, labels.copy(), rng)
                real[labels != self.data.labels[batch]] = 0.0
            beside = [None] * len(batch) if self.neighbours is None else list(self.neighbours[batch])
            pairs = [augment(image, rng, mask, self.robust, other, self.shoulder)
                     for image, mask, other in zip(images, masks, beside)]
            images, masks = np.stack([p[0] for p in pairs]), [p[1] for p in pairs]
        targets = np.eye(2, dtype=np.float32)[labels]
        if not self.masks:
            return images[..., np.newaxis], targets, weights
        cells = bleed.targets(masks, self.mask_target, self.map_size)
        return (images[..., np.newaxis], {"probabilities": targets, "bleed": cells},
                {"probabilities": weights, "bleed": real})

    def _transplant(self, images: np.ndarray, masks: list, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Paste a donor's bleed into some of the normal slices, in place; the labels after it."""
        for i in np.flatnonzero(labels == 0):
            if rng.random() >= TRANSPLANT_SHARE:
                continue
            for donor in rng.choice(self.donors, size=TRANSPLANT_TRIES):
                done = transplant(images[i], self.data.images[donor], self.data.masks[donor], rng)
                if done is not None:
                    images[i], pasted = done
                    masks[i] = pasted if self.masks else None  # moved with the slice; its loss weighs nothing
                    labels[i] = 1
                    break
        return labels


class EpochOfRun(keras.callbacks.Callback):
    """Tells the batches which epoch of the whole run (warm-up included) begins; logs the learning rate.

    A run resumed by ``BackupAndRestore`` starts at a later epoch; without this its batches would
    replay the first epochs' order and augmentation instead of the ones the uninterrupted run draws.
    """

    def __init__(self, batches: Batches, offset: int) -> None:
        super().__init__()
        self.batches, self.offset = batches, offset

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.set_epoch(self.offset + epoch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:  # in every history, validation or not (the dashboard plots it)
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class ValidationAUC(keras.callbacks.Callback):
    """Adds ``val_auc`` (slice level) to the epoch logs; early stopping watches it.

    With ``trace`` each epoch's AUC is also appended to that JSON-lines file (epoch of the run, warm-up
    included), so a fixed-epoch run can show afterwards what stopping on these patients would have chosen.
    When the model being trained has the bleed decoder, the trace also holds the decoder's map on these
    patients (``bleed_dice`` on their bleed slices, ``bleed_peak_auc`` of its highest pixel as a slice score):
    a decoder that stopped learning shows.
    """

    def __init__(self, data: datasets.Dataset, batch_size: int, scored: keras.Model | None = None,
                 trace: Path | None = None, offset: int = 0) -> None:
        super().__init__()
        self.data, self.batch_size, self.scored = data, batch_size, scored
        self.trace, self.offset = trace, offset

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from sklearn.metrics import roc_auc_score

        if logs is None:
            return
        if len(set(self.data.labels.tolist())) == 2:
            scores = predict(self.scored or self.model, self.data.inputs(), self.batch_size)
            logs["val_auc"] = float(roc_auc_score(self.data.labels, scores))
            if self.trace is not None:
                row = {"epoch": self.offset + epoch + 1, "auc": logs["val_auc"], **self._bleed()}
                with open(self.trace, "a") as out:
                    out.write(json.dumps(row) + "\n")

    def _bleed(self) -> dict:
        from sklearn.metrics import roc_auc_score

        if not isinstance(self.model.output, dict) or self.data.masks is None:
            return {}
        logits = self.model.predict(self.data.inputs(), batch_size=self.batch_size, verbose=0)["bleed"]
        peak, dice = bleed.evidence(logits, bleed.targets(self.data.masks, size=logits.shape[1]))
        labels = self.data.labels
        return {"bleed_dice": float(dice[labels == 1].mean()), "bleed_peak_auc": float(roc_auc_score(labels, peak))}


class EpochLog(keras.callbacks.Callback):
    """One readable line per epoch, for logs of long background runs."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage, self.start = stage, time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items() if isinstance(v, (int, float)))
        print(f"[{self.stage}] epoch {epoch + 1} {shown} ({time.time() - self.start:.0f}s)", flush=True)


def _set_backbone_trainable(model: keras.Model, trainable: bool, freeze_below: str | None = None,
                            batch_norm: bool = False) -> None:
    """(Un)freeze the EfficientNet stage; its batch norms stay frozen unless ``batch_norm``.

    Frozen, a batch norm normalises with its ImageNet statistics (small batches of one kind of image would
    make noisy ones); ``batch_norm`` lets it learn CT's, in training mode. ``freeze_below`` keeps the early,
    generic layers frozen too: half the backward pass on a CPU.
    """
    frozen_prefix = freeze_below is not None
    for layer in model.layers:
        if layer.name == "gap":
            break
        if frozen_prefix and layer.name.startswith(freeze_below):
            frozen_prefix = False
        norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable and not frozen_prefix and (batch_norm or not norm)


def _optimizer(config: TrainConfig, steps: int, average: bool) -> keras.optimizers.Optimizer:
    """Adam; with ``average`` (and ``config.ema``) the weights a stage ends on are the moving average of its steps.

    Why: the held-out AUC of one run moves by up to 0.07 from one epoch to the next, and a fixed epoch count
    cannot pick the good ones; an average over the last epochs' weights does not depend on where the last
    step happened to land.
    """
    rate = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.02)
    if average and config.ema > 0:
        return keras.optimizers.Adam(rate, use_ema=True, ema_momentum=config.ema)
    return keras.optimizers.Adam(rate)


def _classification(config: TrainConfig) -> keras.losses.Loss:
    """The paper head's loss: cross-entropy, or focal (``config.focal`` > 0).

    Why focal: most normal slices are easy and their many small losses outweigh the few hard ones, a skull rim
    on a normal slice or a bleed of a few pixels. alpha 1: the class weights of ``Batches`` already balance.
    """
    if config.focal > 0:
        return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=config.focal,
                                                         label_smoothing=config.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)


def _compile(model: keras.Model, config: TrainConfig, steps: int, average: bool = False) -> None:
    classification = _classification(config)
    if isinstance(model.output, dict):
        model.compile(optimizer=_optimizer(config, steps, average),
                      loss={"probabilities": classification, "bleed": bleed.loss(config.map_score_weight)},
                      loss_weights={"probabilities": 1.0, "bleed": config.mask_weight},
                      metrics={"probabilities": [keras.metrics.CategoricalAccuracy(name="accuracy")]})
    else:
        model.compile(optimizer=_optimizer(config, steps, average), loss=classification,
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


class Fitted(NamedTuple):
    model: keras.Model  # the paper's model, alone
    history: dict[str, list[float]]
    hybrid: keras.Model | None = None  # the same model with the bleed decoder, when trained with masks


def fit(train: datasets.Dataset, validation: datasets.Dataset | None, config: TrainConfig,
        verbose: int = 1, backup: str | Path | None = None,
        trace: tuple[datasets.Dataset, Path] | None = None) -> Fitted:
    """Train on ``train``; returns the paper's model, the history and, with masks, the model with its decoder.

    With ``validation``, early stopping on its AUC restores the best epoch. Without, it trains
    exactly ``config.epochs`` epochs (the count chosen by cross-validation): no patient is then
    used both to stop training and to measure it. ``backup`` is a folder that lets an
    interrupted run resume from its last finished epoch. ``trace`` (data, file) records the AUC
    on that data after every epoch and nothing else: it never steers training.
    """
    if config.ema > 0 and validation is not None:  # early stopping restores one epoch, the average would replace it
        raise ValueError("--ema ends training on an average of its weights, which early stopping on validation "
                         "patients cannot restore: use it with a fixed epoch count ('train --split none', 'cv --out')")
    keras.utils.set_random_seed(config.seed)
    chosen = distribution.strategy(config.distribute)
    with distribution.scope(chosen):
        model = build(config.backbone, config.pretrained)
        if config.init:
            copy_weights(load(config.init)[0], model)
        masks = config.mask_weight > 0 and train.masks is not None
        trained = bleed.with_decoder(model, config.map_size) if masks else model
    batches = Batches(train, config.batch_size, config.augment, config.balance, config.seed, masks, config.robust,
                      config.thick, config.mask_target, config.map_size, config.shoulder, config.transplant,
                      config.size_weight)
    history: dict[str, list[float]] = {}
    first_epoch = 0  # the epoch of the run at which the next stage starts
    if chosen is not None:
        count = distribution.replicas(chosen)
        print(f"training on {count} replicas: global batch {config.batch_size}, "
              f"{config.batch_size / count:g} slices per replica per step", flush=True)

    def run(stage: str, epochs: int, callbacks: list) -> None:
        nonlocal first_epoch
        with distribution.scope(chosen):
            _compile(trained, config, epochs * len(batches), average=stage == "fine-tune")
        if validation is not None and not masks:
            extra = {"validation_data": (validation.inputs(), np.eye(2, dtype=np.float32)[validation.labels])}
        else:
            extra = {}
        watch = [EpochOfRun(batches, first_epoch)]
        if validation is not None:
            watch.append(ValidationAUC(validation, 32, model))
        elif trace is not None:
            watch.append(ValidationAUC(trace[0], 32, model, trace[1], first_epoch))
        if backup is not None:
            callbacks = [keras.callbacks.BackupAndRestore(str(Path(backup) / stage)), *callbacks]
        # shuffle=False: Batches orders itself from (seed, epoch); Keras's own reshuffle draws from Python's
        # global random state, so the same seed gave different batch orders on one device and on several.
        result = trained.fit(batches, epochs=epochs, verbose=verbose, shuffle=False,
                             callbacks=[*watch, *callbacks, EpochLog(stage)], **extra)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        history.setdefault("stage", []).extend([stage] * len(result.history["loss"]))
        first_epoch += epochs  # planned, not run: a resumed stage reports only the epochs it ran

    if config.warmup_epochs and config.pretrained != "none" and not config.init:
        if backup is not None and (Path(backup) / "fine-tune").exists():  # that backup holds the warm-up's work
            first_epoch = config.warmup_epochs
        else:
            _set_backbone_trainable(model, False)
            run("warm-up", config.warmup_epochs, [])
    _set_backbone_trainable(model, True, config.freeze_below, config.train_bn)
    callbacks = []
    if validation is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=config.patience,
                                                       restore_best_weights=True))
        if config.schedule == "plateau" and not masks:
            callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6))
    run("fine-tune", config.epochs, callbacks)
    return Fitted(model, plain(history), trained if masks else None)


def save_trained(fitted: Fitted, path: Path, config: TrainConfig, threshold: float,
                 trained_on: dict | None = None) -> None:
    """The paper's model and its ModelInfo; with a decoder, the decoder beside it (``<stem>-bleed.keras``).
    ``trained_on``: the slices that trained it (:func:`hemo.seen.fingerprint`)."""
    info = ModelInfo(config.backbone, config.pretrained, threshold, input_window=list(TRAIN_WINDOW),
                     trained_on=trained_on)
    if fitted.hybrid is not None:
        decoder_path = save_plain(bleed.decoder(fitted.hybrid), path.with_name(path.stem + "-bleed.keras"))
        info.bleed = {"file": decoder_path.name, "map_size": bleed.map_size(fitted.hybrid)}
    save(fitted.model, path, info)


def _run_record(config: TrainConfig, source: str, split: str, n_train: int, n_validation: int, seconds: float,
                history: dict) -> dict:
    return {"data": source, "split": split, "n_train": n_train, "n_validation": n_validation,
            "seconds": round(seconds, 1), "epochs_run": len(history.get("loss", [])),
            "backend": keras.backend.backend(), "machine": platform.machine(), **asdict(config)}


def train(data: datasets.Dataset, out_dir: str | Path, config: TrainConfig, split: str = "patient",
          val_fraction: float = 0.2, source: str = "", verbose: int = 1) -> dict:
    """Split, fit, choose the threshold on validation patients, and write the model and its records.

    ``split="none"`` trains on every patient for exactly ``config.epochs`` epochs (the final
    model); its operating points then come from ``hemo calibrate`` on cross-validation.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if split == "none":
        started = time.time()
        fitted = fit(data, None, config, verbose, backup=out / "backup")
        history = fitted.history
        save_trained(fitted, out / "hemo-hybrid.keras", config, 0.5,
                     {"data": source, "slices": seen.fingerprint(data.images)})
        run = _run_record(config, source, split, len(data), 0, time.time() - started, history)
        (out / "history.json").write_text(json.dumps({"history": history, "run": run}, indent=1) + "\n")
        return {"run": run}
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
        raise ValueError(f"unknown split '{split}': use 'patient', 'slice' or 'none'")
    started = time.time()
    fitted = fit(train_set, val_set, config, verbose)
    history, seconds = fitted.history, time.time() - started
    scores = predict(fitted.model, val_set.inputs())
    threshold = choose_threshold(val_set.labels, scores)
    metrics = report(val_set.labels, scores, threshold, val_set.patients if split == "patient" else None)
    save_trained(fitted, out / "hemo-hybrid.keras", config, threshold,
                 {"data": source, "slices": seen.fingerprint(train_set.images)})
    run = {**_run_record(config, source, split, len(train_set), len(val_set), seconds, history),
           "val_fraction": val_fraction}
    (out / "history.json").write_text(json.dumps({"history": history, "run": run}, indent=1) + "\n")
    datasets.write_split(out / "split.json", {"split": split, "seed": config.seed, **parts})
    (out / "metrics.json").write_text(json.dumps({"run": run, **metrics}, indent=1) + "\n")
    return metrics


def cross_validate(data: datasets.Dataset, config: TrainConfig, folds: int = 5, only: list[int] | None = None,
                   verbose: int = 0, out_dir: str | Path | None = None, trace: bool = False) -> list[dict]:
    """Patient-grouped k-fold CV: one row per fold with AUC, patient AUC, epochs and time.

    With ``out_dir`` each fold trains exactly ``config.epochs`` epochs without looking at its
    held-out patients, and writes their out-of-fold scores and embeddings (``fold<k>/oof.npz``):
    what ``hemo calibrate`` fits thresholds, calibration and the study model on. The fold's model
    (with its decoder, when trained with masks) is kept beside them for audits. A finished fold
    is skipped and an interrupted one resumes, so the command can simply be run again.
    Without ``out_dir`` (the older protocol) early stopping watches the held-out fold, and
    sensitivity/specificity use its own Youden threshold: optimistic, compare by AUC only.
    ``trace`` (with ``out_dir``) records the held-out AUC after every epoch in
    ``fold<k>/heldout.jsonl`` without acting on it: how much stopping on the held-out fold flatters.
    """
    rows = []
    for fold, patients in enumerate(datasets.patient_folds(data, folds, config.seed)):
        if only is not None and fold not in only:
            continue
        val_set = data.subset(datasets.indices(data, patients))
        train_set = data.subset(np.setdiff1d(np.arange(len(data)), datasets.indices(data, patients)))
        folder = Path(out_dir) / f"fold{fold}" if out_dir is not None else None
        if folder is not None and (folder / "oof.npz").exists():
            with np.load(folder / "oof.npz") as done:
                scores, seconds, epochs = done["scores"], float(done["seconds"]), int(done["epochs"])
        else:
            started = time.time()
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            traced = (val_set, folder / "heldout.jsonl") if folder is not None and trace else None
            fitted = fit(train_set, None if folder else val_set, config, verbose, backup=folder, trace=traced)
            seconds, epochs = time.time() - started, len(fitted.history.get("loss", []))
            scores, embeddings = embed(fitted.model, val_set.inputs())
            if folder is not None:
                decoded = {}
                if fitted.hybrid is not None:  # the decoder's own slice score beside the head's
                    logits = fitted.hybrid.predict(val_set.inputs(), batch_size=32, verbose=0)["bleed"]
                    decoded = {bleed.oof_key(cells): bleed.peaks(logits, cells)
                               for cells in sorted(set(bleed.SLICE_SCORES.values()) - {0})}
                save_trained(fitted, folder / "hemo-hybrid.keras", config, 0.5,  # for audits; no operating point
                             {"slices": seen.fingerprint(train_set.images)})
                np.savez(folder / "oof.npz", scores=scores, embeddings=embeddings, labels=val_set.labels,
                         patients=val_set.patients, names=val_set.names, seconds=seconds, epochs=epochs,
                         config=json.dumps(asdict(config)), **decoded)
        metrics = report(val_set.labels, scores, choose_threshold(val_set.labels, scores), val_set.patients)
        rows.append({"fold": fold, "backbone": config.backbone, "pretrained": config.pretrained,
                     "patients": len(patients), "n": metrics["n"], "positives": metrics["positives"],
                     "auc": metrics["auc"], "patient_auc": metrics["patient_auc"],
                     "sensitivity": metrics["sensitivity"], "specificity": metrics["specificity"],
                     "epochs": epochs, "seconds": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows
