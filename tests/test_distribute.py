"""``hemo train --distribute mirrored``: the same training on two (logical CPU) devices as on one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import ROOT, ct_ich_folder

# Dropout draws its masks per replica, so two devices cannot reproduce one device's masks; with the
# dropout rates at zero every other part of a step (data order, augmentation, loss scaling, gradient
# sum, optimizer) must give the same numbers whatever the device count.
SCRIPT = textwrap.dedent("""
    import json, keras, numpy as np
    from conftest import phantom_slices
    from hemo import distribution, train
    distribution.split_cpu(2)

    built = train.build
    def build(*args, **kwargs):
        model = built(*args, **kwargs)
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        return model
    train.build = build

    data = phantom_slices(32)
    rows = {}
    for mode in (None, "mirrored"):
        config = train.TrainConfig(epochs=2, warmup_epochs=1, batch_size=16, schedule="cosine", learning_rate=1e-3,
                                   freeze_below="block5a", distribute=mode)
        model, history, _ = train.fit(data, None, config, verbose=0)
        rows[mode or "one"] = {"loss": history["loss"], "scores": train.predict(model, data.inputs()).tolist()}
    print("RESULT " + json.dumps(rows))
""")


def _run(args: list[str], cwd) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
                               "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_mirrored_training_follows_the_one_device_trajectory(tmp_path):
    out = _run(["-c", SCRIPT], tmp_path)
    assert "training on 2 replicas: global batch 16, 8 slices per replica per step" in out
    rows = json.loads(out.split("RESULT ", 1)[1])
    one, two = rows["one"], rows["mirrored"]
    assert len(one["loss"]) == len(two["loss"]) == 3  # warm-up + 2 epochs
    for a, b in zip(one["loss"], two["loss"]):
        assert abs(a - b) < 1e-3 * max(1.0, abs(a)), (one["loss"], two["loss"])
    assert max(abs(a - b) for a, b in zip(one["scores"], two["scores"])) < 1e-3
    assert one["loss"][0] != one["loss"][-1]  # it did train


def test_train_command_runs_mirrored_on_split_cpu(tmp_path):
    root = ct_ich_folder(tmp_path / "data", patients=2, slices=4)
    out = _run(["-m", "hemo", "train", str(root), "--split", "none", "--epochs", "1", "--warmup-epochs", "0",
                "--pretrained", "none", "--batch-size", "4", "--distribute", "mirrored", "--cpu-devices", "2",
                "--out", str(tmp_path / "run")], ROOT)
    assert "training on 2 replicas" in out
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["run"]["distribute"] == "mirrored" and (tmp_path / "run" / "hemo-hybrid.keras").exists()
    assert len(history["history"]["learning_rate"]) == 1  # logged without validation patients too
