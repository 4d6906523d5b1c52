"""Training runs that are interrupted resume where they stopped, drawing what the whole run would have drawn."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import head_phantom

from hemo import datasets, train


class Interrupted(Exception):
    pass


def _slices(count: int = 16) -> datasets.Dataset:
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 2
    images = []
    for label in labels:
        hu = head_phantom(256, (100 + int(rng.integers(-20, 20)), 150) if label else None)
        images.append(np.clip((hu - 40) / 120 * 255 + 127.5 + rng.normal(0, 4, hu.shape), 0, 255).astype(np.uint8))
    return datasets.Dataset(np.stack(images), labels, np.arange(count) // 4,
                            np.array([f"{i}.png" for i in range(count)]))


def test_a_resumed_run_ends_where_the_uninterrupted_one_does(tmp_path, monkeypatch):
    built = train.build

    def build(*args, **kwargs):  # dropout draws from Keras's global seed state, which a backup does not keep
        model = built(*args, **kwargs)
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        return model

    monkeypatch.setattr(train, "build", build)
    data = _slices()
    config = train.TrainConfig(epochs=2, warmup_epochs=1, batch_size=8, schedule="cosine", learning_rate=1e-3,
                               freeze_below="block5a")
    whole, history = train.fit(data, None, config, verbose=0, backup=tmp_path / "whole")

    class StopAfterFirstFineTuneEpoch(train.EpochLog):  # runs after BackupAndRestore has saved the epoch
        def on_epoch_end(self, epoch, logs=None):
            if self.stage == "fine-tune" and epoch == 0:
                raise Interrupted

    monkeypatch.setattr(train, "EpochLog", StopAfterFirstFineTuneEpoch)
    with pytest.raises(Interrupted):
        train.fit(data, None, config, verbose=0, backup=tmp_path / "resumed")
    monkeypatch.undo()
    monkeypatch.setattr(train, "build", build)
    resumed, resumed_history = train.fit(data, None, config, verbose=0, backup=tmp_path / "resumed")

    assert resumed_history["stage"].count("fine-tune") == 1  # it did resume: the second epoch only
    last, resumed_last = history["loss"][-1], resumed_history["loss"][-1]  # 0.063 apart when the draws replay
    assert abs(last - resumed_last) < 1e-3 * max(1.0, abs(last)), (history["loss"], resumed_history["loss"])
    scores, resumed_scores = train.predict(whole, data.inputs()), train.predict(resumed, data.inputs())
    assert np.max(np.abs(scores - resumed_scores)) < 1e-3
