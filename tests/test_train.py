"""Training runs that are interrupted resume where they stopped, drawing what the whole run would have drawn."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import ct_ich_folder, load_tool, phantom_slices

from hemo import history, train
from hemo.model import read_info


class Interrupted(Exception):
    pass


def test_a_resumed_run_ends_where_the_uninterrupted_one_does(tmp_path, monkeypatch):
    built = train.build

    def build(*args, **kwargs):  # dropout draws from Keras's global seed state, which a backup does not keep
        model = built(*args, **kwargs)
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        return model

    monkeypatch.setattr(train, "build", build)
    data = phantom_slices()
    config = train.TrainConfig(epochs=2, warmup_epochs=1, batch_size=8, schedule="cosine", learning_rate=1e-3,
                               freeze_below="block5a")
    whole, history, _ = train.fit(data, None, config, verbose=0, backup=tmp_path / "whole")

    class StopAfterFirstFineTuneEpoch(train.EpochLog):  # runs after BackupAndRestore has saved the epoch
        def on_epoch_end(self, epoch, logs=None):
            if self.stage == "fine-tune" and epoch == 0:
                raise Interrupted

    monkeypatch.setattr(train, "EpochLog", StopAfterFirstFineTuneEpoch)
    with pytest.raises(Interrupted):
        train.fit(data, None, config, verbose=0, backup=tmp_path / "resumed")
    monkeypatch.undo()
    monkeypatch.setattr(train, "build", build)
    resumed, resumed_history, _ = train.fit(data, None, config, verbose=0, backup=tmp_path / "resumed")

    assert resumed_history["stage"] == ["fine-tune"]  # it did resume: the second epoch only, no warm-up again
    last, resumed_last = history["loss"][-1], resumed_history["loss"][-1]  # 0.063 apart when the draws replay
    assert abs(last - resumed_last) < 1e-3 * max(1.0, abs(last)), (history["loss"], resumed_history["loss"])
    scores, resumed_scores = train.predict(whole, data.inputs()), train.predict(resumed, data.inputs())
    assert np.max(np.abs(scores - resumed_scores)) < 1e-3


def test_ema_ends_fine_tuning_on_the_moving_average_of_its_weights_not_on_the_last_step(monkeypatch):
    built, start = train.build, {}

    def build(*args, **kwargs):
        model = built(*args, **kwargs)
        start["dense"] = model.get_layer("dense").get_weights()[0].copy()
        return model

    monkeypatch.setattr(train, "build", build)
    moved = {}
    for ema in (0.0, 0.9999):  # 8 steps; at 0.9999 the average stays at the first step's weights
        config = train.TrainConfig(epochs=1, warmup_epochs=0, batch_size=2, learning_rate=1e-2,
                                   freeze_below="block5a", ema=ema)
        model = train.fit(phantom_slices(), None, config, verbose=0).model
        moved[ema] = float(np.abs(model.get_layer("dense").get_weights()[0] - start["dense"]).max())
    assert moved[0.0] > 1e-3, moved
    assert moved[0.9999] < 0.3 * moved[0.0], moved
    with pytest.raises(ValueError, match="early stopping"):  # it would silently replace the restored best epoch
        train.fit(phantom_slices(), phantom_slices(), train.TrainConfig(ema=0.99), verbose=0)


def test_batch_norms_learn_the_training_images_statistics_only_when_asked(monkeypatch):
    built, start = train.build, {}

    def build(*args, **kwargs):
        model = built(*args, **kwargs)
        start["top_bn"] = [w.copy() for w in model.get_layer("top_bn").get_weights()]
        return model

    monkeypatch.setattr(train, "build", build)
    moved = {}
    for train_bn in (False, True):
        config = train.TrainConfig(epochs=1, warmup_epochs=0, batch_size=4, learning_rate=1e-3,
                                   freeze_below="block5a", train_bn=train_bn)
        model = train.fit(phantom_slices(), None, config, verbose=0).model
        now = model.get_layer("top_bn").get_weights()  # gamma, beta, moving mean, moving variance
        moved[train_bn] = [float(np.abs(a - b).max()) for a, b in zip(now, start["top_bn"])]
    assert max(moved[False]) == 0.0, moved  # ImageNet's statistics and scales, untouched
    assert max(moved[True][2:]) > 1e-2 and moved[True][0] > 0.0, moved  # phantom statistics; scales learnt


def test_cv_traces_the_held_out_auc_of_every_epoch_without_acting_on_it(cv_run):
    from sklearn.metrics import roc_auc_score

    _, out, _ = cv_run  # 'hemo cv --epochs 2 --trace-heldout', two folds
    aucs = []
    for fold in (0, 1):
        folder = out / f"fold{fold}"
        lines = [json.loads(line) for line in (folder / "heldout.jsonl").read_text().splitlines()]
        assert [line["epoch"] for line in lines] == [1, 2]  # every epoch
        with np.load(folder / "oof.npz") as oof:
            assert int(oof["epochs"]) == 2  # fixed epochs: nothing stopped early
            aucs.append(roc_auc_score(oof["labels"], oof["scores"]))
        assert lines[-1]["auc"] == pytest.approx(aucs[-1], abs=1e-6)  # the trace scored the same model

    trace = load_tool("heldout_trace")  # what BENCHMARKS reads these traces with
    summary = trace.summary(trace.curves(out))
    assert summary["fold"] == [0, 1] and summary["last"] == pytest.approx(aucs, abs=1e-6)


def test_heldout_trace_never_picks_a_warm_up_epoch():
    trace = load_tool("heldout_trace")
    curves = {0: np.array([0.95, 0.80, 0.85]), 1: np.array([0.90, 0.86, 0.82])}  # warm-up best in both folds
    rows = trace.summary(curves, warmup=1)
    assert rows["best"] == [0.85, 0.86]  # early stopping restores fine-tuning epochs only
    assert rows["nested_epoch"] == [2, 3] and rows["nested"] == [0.80, 0.82]


def test_heldout_trace_sets_a_weight_averaged_model_against_its_last_epoch(tmp_path, capsys):
    trace = load_tool("heldout_trace")
    labels = np.array([0, 0, 1, 1])
    (tmp_path / "fold0").mkdir()
    np.savez(tmp_path / "fold0" / "oof.npz", scores=np.array([0.1, 0.2, 0.3, 0.4]), labels=labels,
             bleed_peak=np.array([0.1, 0.3, 0.2, 0.4]))  # the kept model: head AUC 1.0, peak 0.75
    rows = [{"epoch": 1, "auc": 0.6, "bleed_peak_auc": 0.5}, {"epoch": 2, "auc": 0.9, "bleed_peak_auc": 0.8}]
    (tmp_path / "fold0" / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert trace.kept(tmp_path) == {0: {"head": 1.0, "head_last": 0.9, "peak": 0.75, "peak_last": 0.8}}
    trace.main([str(tmp_path)])
    printed = capsys.readouterr().out
    assert "kept model (head) against its last epoch, per fold: 1.000 / 0.900; mean difference +0.100" in printed
    assert "kept model (peak) against its last epoch, per fold: 0.750 / 0.800; mean difference -0.050" in printed


def test_highest_slice_rule_calls_a_study_on_its_highest_out_of_fold_slice(tmp_path):
    (tmp_path / "fold0").mkdir()
    np.savez(tmp_path / "fold0" / "oof.npz", scores=np.array([0.05, 0.2, 0.01, 0.02, 0.3, 0.1]),
             embeddings=np.zeros((6, 2)), labels=np.array([0, 0, 0, 0, 1, 0]),
             patients=np.array(["a", "a", "b", "b", "c", "c"]), names=np.array(["1", "2", "1", "2", "1", "2"]))
    labels, called = load_tool("highest_slice_rule").study_calls(tmp_path, 0.107)
    assert labels.tolist() == [0, 0, 1] and called.tolist() == [True, False, True]  # a's 0.2 is a false alarm


def _oof_run(folder, scores, folds=(0, 0, 0, 1, 1, 1), order=None):
    order = np.arange(6) if order is None else np.asarray(order)
    patients, names = np.array(["a", "a", "b", "c", "c", "d"]), np.array(["1", "2", "1", "1", "2", "1"])
    labels, folds = np.array([0, 1, 0, 0, 1, 0]), np.asarray(folds)
    for fold in (0, 1):
        index = order[folds[order] == fold]
        (folder / f"fold{fold}").mkdir(parents=True)
        np.savez(folder / f"fold{fold}" / "oof.npz", scores=np.asarray(scores)[index], labels=labels[index],
                 embeddings=np.zeros((len(index), 2)), patients=patients[index], names=names[index])
    return folder


def test_compare_cv_pairs_the_same_slices_whatever_order_the_runs_stored_them_in(tmp_path):
    compare = load_tool("compare_cv")
    a = _oof_run(tmp_path / "a", [0.2, 0.3, 0.4, 0.1, 0.6, 0.5])
    b = _oof_run(tmp_path / "b", [0.2, 0.5, 0.1, 0.1, 0.6, 0.3], order=[1, 0, 2, 4, 3, 5])
    result = compare.compare(a, b, n=50)["slices"]
    assert [f["a"] for f in result["folds"]] == [0.5, 1.0] and [f["b"] for f in result["folds"]] == [1.0, 1.0]
    assert result["b_higher_folds"] == 1 and result["pooled_difference"] > 0
    with pytest.raises(SystemExit, match="not comparable"):
        compare.compare(a, _oof_run(tmp_path / "c", [0.2] * 6, folds=(0, 0, 1, 1, 1, 0)), n=10)
    for part in (tmp_path / "b" / "fold1").iterdir():  # a run still in progress: fold 1 not finished
        part.unlink()
    partial = compare.compare(a, b, n=10)
    assert partial["folds"] == [0] and [f["fold"] for f in partial["slices"]["folds"]] == [0]


def test_a_model_trained_with_the_bleed_decoder_logs_the_papers_curves_under_their_plain_names(tmp_path, capsys):
    from hemo.cli import main

    out = tmp_path / "model"
    assert main(["train", str(ct_ich_folder(tmp_path / "data", patients=2, slices=5)), "--split", "none",
                 "--epochs", "1", "--warmup-epochs", "0", "--pretrained", "none", "--batch-size", "8",
                 "--mask-weight", "1", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert files == ["hemo-hybrid-bleed.keras", "hemo-hybrid.json", "hemo-hybrid.keras", "history.json"]  # no split
    assert read_info(out / "hemo-hybrid.keras").bleed["file"] == "hemo-hybrid-bleed.keras"  # the decoder, kept
    assert "split.json" not in capsys.readouterr().out  # and it does not claim to have written them
    logged = json.loads((out / "history.json").read_text())["history"]
    assert {"accuracy", "loss", "bleed_loss", "total_loss", "learning_rate"} <= logged.keys()
    assert not any(key.startswith("probabilities_") for key in logged)
    assert logged["total_loss"][0] > logged["loss"][0]  # the sum holds the decoder's loss too
    table, run = history.read(out / "history.json")  # what the dashboard reads
    assert run["mask_weight"] == 1.0 and list(table["epoch"]) == [1]
    assert run["data"] == "data"  # the data's name, not the training machine's path to it


def test_the_bleed_decoder_keeps_learning_when_it_is_sure_there_is_no_blood():
    """A decoder whose map said "no blood" everywhere once had no gradient left (its loss clipped the
    probabilities), so after the warm-up the masks never reached the backbone. Found in real runs."""
    import tensorflow as tf

    from hemo.bleed import bleed_loss, with_decoder
    from hemo.model import build

    hybrid = with_decoder(build("efficientnet_lite0", "none"))
    kernel, bias = hybrid.get_layer("bleed").get_weights()
    hybrid.get_layer("bleed").set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])  # sure: no blood
    images = phantom_slices(2).images[..., np.newaxis].astype(np.float32)
    masks = np.zeros((2, 32, 32, 1), np.float32)
    masks[0, 12:18, 12:18] = 1.0
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(bleed_loss(masks, hybrid(images)["bleed"]))
    gradient = tape.gradient(loss, hybrid.get_layer("bleed").kernel)
    assert float(tf.reduce_max(tf.abs(gradient))) > 1e-6
    no_blood = np.zeros((1, 32, 32, 1), np.float32)  # an empty mask asks for low logits, nothing more
    assert float(bleed_loss(no_blood, np.zeros_like(no_blood))[0]) == pytest.approx(np.log(2), abs=1e-6)


def test_the_map_score_term_makes_one_bright_cell_on_a_normal_slice_cost_what_it_costs_the_slice_score(tmp_path):
    from hemo.bleed import bleed_loss, loss, slice_term

    no_blood = np.zeros((1, 32, 32, 1), np.float32)
    logits = np.full_like(no_blood, -10.0)
    logits[0, 3, 16] = 5.0  # one sure cell at the skull; the top-4 slice score reads about 0.25
    cells, scored = float(bleed_loss(no_blood, logits)[0]), float(slice_term(no_blood, logits)[0])
    assert cells < 0.01 and scored == pytest.approx(-np.log(1 - (1 / (1 + np.exp(-5)) + 3 / (1 + np.exp(10))) / 4),
                                                    rel=1e-3)
    assert float(loss(2.0)(no_blood, logits)[0]) == pytest.approx(cells + 2 * scored, rel=1e-5)
    assert loss(0.0) is bleed_loss
    tiny = no_blood.copy()
    tiny[0, 20, 20] = 0.2  # a bleed of a fifth of a cell: the cell loss is content with 0.2 there
    at_target = np.full_like(no_blood, -10.0)
    at_target[0, 20, 20] = np.log(0.2 / 0.8)
    assert float(slice_term(tiny, at_target)[0]) > 2.5  # the slice score asks for more than the cell's share
    with pytest.raises(SystemExit, match="--mask-weight"):
        from hemo.cli import main
        (tmp_path / "x.npz").touch()  # there, so that the flags are what is wrong
        main(["cv", str(tmp_path / "x.npz"), "--map-score-weight", "1"])


def test_a_bleed_smaller_than_a_map_cell_asks_for_a_sure_peak_only_with_any_targets():
    from dataclasses import replace

    from hemo.bleed import targets

    mask = np.zeros((256, 256), np.uint8)
    mask[100:104, 100:103] = 255  # 12 pixels, inside one 8 x 8 cell: 0.02 % of the crop
    mask[0, 0] = 100  # JPEG ringing outside the bleed stays below half and is not bleed
    share, any_ = targets([mask])[0, ..., 0], targets([mask], "any")[0, ..., 0]
    assert share.max() == pytest.approx(12 / 64, abs=0.01) and share[0, 0] > 0
    assert any_.max() == 1.0 and any_.sum() == 1.0 and any_[12, 12] == 1.0
    data = phantom_slices(8)
    small = np.zeros((8, 256, 256), np.uint8)
    small[1::2, 120:126, 120:124] = 255  # each bleed slice's mask: 24 pixels
    data = replace(data, masks=small)
    plain = train.Batches(data, 4, augment=False, balance=True, seed=0, masks=True)[0][1]["bleed"]
    cells = train.Batches(data, 4, augment=False, balance=True, seed=0, masks=True, mask_target="any")[0][1]["bleed"]
    assert set(np.unique(cells)) == {0.0, 1.0} and np.array_equal(cells > 0, plain > 0) and plain.max() < 0.5
    with pytest.raises(ValueError, match="mask target"):
        targets([mask], "most")


def test_a_finer_map_asks_a_bleed_smaller_than_a_coarse_cell_for_a_sure_peak():
    from dataclasses import replace

    from hemo.bleed import targets

    mask = np.zeros((256, 256), np.uint8)
    mask[98:104, 98:104] = 255  # 36 pixels inside one 8 x 8 cell, covering one 4 x 4 cell whole
    coarse, fine = targets([mask])[0, ..., 0], targets([mask], size=64)[0, ..., 0]
    assert coarse.max() == pytest.approx(36 / 64, abs=0.01) and fine.max() == pytest.approx(1.0, abs=0.01)
    assert fine[25, 25] == pytest.approx(1.0, abs=0.01)
    data = replace(phantom_slices(4), masks=np.stack([mask] * 4))
    cells = train.Batches(data, 4, augment=False, balance=True, seed=0, masks=True, map_size=64)[0][1]["bleed"]
    assert cells.shape == (4, 64, 64, 1)
    with pytest.raises(ValueError, match="cells wide"):
        targets([mask], size=48)


def test_size_weight_weighs_small_bleeds_up_large_ones_down_and_keeps_the_class_balance():
    from dataclasses import replace

    data = phantom_slices(8)  # slices 1, 3, 5, 7 bleed
    masks = np.zeros((8, 256, 256), np.uint8)
    for i, side in zip((1, 3, 5, 7), (4, 16, 32, 64)):  # bleeds of 16 to 4,096 pixels
        masks[i, :side, :side] = 255
    data = replace(data, masks=masks)
    factors = train.size_weights(data.labels, data.masks, 0.5)
    assert factors[0::2].tolist() == [1.0] * 4  # normal slices keep their weight
    assert factors[1] > factors[3] > factors[5] > factors[7] and factors[1::2].mean() == pytest.approx(1.0)
    # against the median bleed (640 pixels): the smallest clipped at 3, the largest sqrt(640 / 4096)
    assert factors[1] / factors[7] == pytest.approx(3 / np.sqrt(640 / 4096), rel=1e-5)
    assert train.size_weights(data.labels, data.masks, 0.0).tolist() == [1.0] * 8
    plain = train.Batches(data, 8, augment=False, balance=True, seed=0, masks=True)[0][2]["probabilities"]
    sized = train.Batches(data, 8, augment=False, balance=True, seed=0, masks=True, size_weight=0.5)
    weights = sized[0][2]["probabilities"]
    assert np.allclose(weights, plain * factors[sized.order]) and weights.sum() == pytest.approx(plain.sum())
    with pytest.raises(ValueError, match="needs the bleed masks"):  # not a silent no-op on data without masks
        train.Batches(replace(data, masks=None), 8, augment=False, balance=True, seed=0, size_weight=0.5)


def test_decoder_check_reports_a_decoder_that_draws_no_blood_as_blind(tmp_path):
    from hemo.bleed import with_decoder
    from hemo.model import build

    hybrid = with_decoder(build("efficientnet_lite0", "none"))
    kernel, bias = hybrid.get_layer("bleed").get_weights()
    hybrid.get_layer("bleed").set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])
    hybrid.save_weights(tmp_path / "fold0.weights.h5")
    data = phantom_slices(8)
    masks = np.zeros((8, 256, 256), np.uint8)
    masks[data.labels == 1, 90:110, 140:160] = 255
    np.savez(tmp_path / "cache.npz", images=data.images, labels=data.labels, patients=data.patients, masks=masks,
             names=data.names)
    (tmp_path / "fold0").mkdir()
    held_out = np.isin(data.patients, data.patients[:4])  # the first patient's slices
    np.savez(tmp_path / "fold0" / "oof.npz", scores=data.labels[held_out] * 0.5 + 0.2, labels=data.labels[held_out],
             patients=data.patients[held_out])
    found = load_tool("decoder_check").check(tmp_path / "cache.npz", tmp_path / "fold0", tmp_path / "fold0.weights.h5",
                                             scores=tmp_path / "peaks.npz")
    assert found["held_out_slices"] == 4 and found["bleed_slices"] == 2
    assert found["dice_mean"] < 1e-6 and found["map_peak_auc"] == 0.5 and found["head_auc"] == 1.0
    assert found["mask_share_median"] == pytest.approx(9 / 1024)  # 20x20 pixels touch 3x3 cells of 32x32
    with np.load(tmp_path / "peaks.npz") as peaks:
        assert peaks["labels"].tolist() == data.labels[held_out].tolist() and peaks["peak"].max() < 1e-6
    model = keras.Model(hybrid.input, hybrid.output["probabilities"])  # the fold's model as hemo cv now keeps it
    train.save_trained(train.Fitted(model, {}, hybrid), tmp_path / "fold0" / "hemo-hybrid.keras",
                       train.TrainConfig(pretrained="none"), 0.5)
    assert load_tool("decoder_check").check(tmp_path / "cache.npz", tmp_path / "fold0") == found
    (tmp_path / "fold0" / "oof.npz").unlink()  # a trained model's folder: every slice, no held-out AUC
    every = load_tool("decoder_check").check(tmp_path / "cache.npz", tmp_path / "fold0")
    assert every["training_slices"] == 8 and every["held_out_slices"] == 0 and every["bleed_slices"] == 4
    assert "head_auc" not in every
    fine = with_decoder(build("efficientnet_lite0", "none"), 64)  # a --map-size 64 checkpoint: weights only
    fine.save_weights(tmp_path / "fine.weights.h5")
    found = load_tool("decoder_check").check(tmp_path / "cache.npz", tmp_path / "fold0", tmp_path / "fine.weights.h5",
                                             map_size=64)
    assert found["mask_share_median"] == pytest.approx(30 / 4096)  # the same bleed touches 6x5 cells of 64x64


def test_map_pooling_reads_a_spread_bleed_stronger_than_its_peak_and_checks_the_recorded_peaks(tmp_path, capsys):
    from hemo.bleed import with_decoder
    from hemo.model import build

    tool = load_tool("map_pooling")
    spread, dot = np.full((32, 32), -20.0), np.full((32, 32), -20.0)
    spread[10:12, 10:12], dot[5, 5] = 1.0, 1.0  # the same peak; four cells against one
    found = tool.poolings(np.stack([spread, dot])[..., np.newaxis])
    assert found["peak"][0] == pytest.approx(found["peak"][1])
    assert found["top4"][0] > 3 * found["top4"][1] and found["area"][0] > 3 * found["area"][1]
    hybrid = with_decoder(build("efficientnet_lite0", "none"))
    data = phantom_slices(8)
    np.savez(tmp_path / "cache.npz", images=data.images, labels=data.labels, patients=data.patients, names=data.names)
    fold = tmp_path / "run" / "fold0"
    fold.mkdir(parents=True)
    train.save_trained(train.Fitted(keras.Model(hybrid.input, hybrid.output["probabilities"]), {}, hybrid),
                       fold / "hemo-hybrid.keras", train.TrainConfig(pretrained="none"), 0.5)
    logits = hybrid.predict(data.images[..., np.newaxis].astype(np.float32), verbose=0)["bleed"]
    oof = {"scores": np.linspace(0.1, 0.9, 8), "labels": data.labels, "patients": data.patients, "names": data.names}
    np.savez(fold / "oof.npz", bleed_peak=tool.poolings(logits)["peak"], **oof)
    assert tool.main([str(tmp_path / "cache.npz"), str(tmp_path / "run"), "--width", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 folds (fold0), 8 slices") and "top4:" in printed and "with 1 neighbours" in printed
    np.savez(fold / "oof.npz", bleed_peak=tool.poolings(logits)["peak"] + 0.1, **oof)  # peaks of another cache
    with pytest.raises(SystemExit, match="does not reproduce"):
        tool.main([str(tmp_path / "cache.npz"), str(tmp_path / "run")])


def test_a_keras_history_of_the_two_output_model_reads_like_the_papers():
    table, _ = history.read({"loss": [1.5], "probabilities_loss": [0.6], "probabilities_accuracy": [0.7],
                             "bleed_loss": [0.9], "val_probabilities_accuracy": [0.65], "val_loss": [1.6],
                             "val_probabilities_loss": [0.7]})
    assert table.loc[0, "loss"] == 0.6 and table.loc[0, "total_loss"] == 1.5 and table.loc[0, "val_loss"] == 0.7
    assert table.loc[0, "gap"] == pytest.approx(0.05)


def test_with_peaks_puts_the_decoders_peaks_beside_an_older_runs_scores(tmp_path):
    run, names = tmp_path / "run", np.array(["1.jpg", "2.jpg", "3.jpg"])
    for fold in (0, 1):
        (run / f"fold{fold}").mkdir(parents=True)
        np.savez(run / f"fold{fold}" / "oof.npz", scores=np.array([0.1, 0.2, 0.3]), labels=np.array([0, 1, 0]),
                 patients=np.array([f"p{fold}"] * 3), names=names)
    np.save(run / "fold0" / "heldout-bleed-peak.npy", np.array([0.5, 0.6, 0.7]))  # the trace: the fold's own order
    np.savez(tmp_path / "fold1-peaks.npz", patients=np.array(["p1"] * 3), names=names[::-1],  # by name, reordered
             peak=np.array([0.9, 0.8, 0.4]))
    tool = load_tool("with_peaks")
    with pytest.raises(FileNotFoundError, match="fold 1"):
        tool.with_peaks(run, tmp_path / "none")
    sources = tool.with_peaks(run, tmp_path / "out", {1: tmp_path / "fold1-peaks.npz"})
    assert sources[0] == "trace (final epoch)" and sources[1].startswith("checkpoint")
    with np.load(tmp_path / "out" / "fold1" / "oof.npz") as fold:
        assert fold["bleed_peak"].tolist() == [0.4, 0.8, 0.9] and fold["scores"].tolist() == [0.1, 0.2, 0.3]
    with np.load(tmp_path / "out" / "fold0" / "oof.npz") as fold:
        assert fold["bleed_peak"].tolist() == [0.5, 0.6, 0.7]


def test_context_gain_reports_each_width_and_the_patient_paired_gain(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for fold in (0, 1):
        labels = np.concatenate([np.r_[np.zeros(4), np.ones(p % 2 * 4), np.zeros(8 - p % 2 * 4)] for p in range(6)])
        logits = 2 * labels - 1 + rng.normal(0, 1.5, len(labels))
        (tmp_path / f"fold{fold}").mkdir()
        np.savez(tmp_path / f"fold{fold}" / "oof.npz", scores=1 / (1 + np.exp(-logits)), labels=labels.astype(int),
                 embeddings=np.zeros((len(labels), 4)), patients=np.repeat([f"{fold}-{p}" for p in range(6)], 12),
                 names=np.array([f"{i % 12 + 1}.jpg" for i in range(len(labels))]))
    tool = load_tool("context_gain")
    assert tool.main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "0: " in printed and "4: " in printed and "95 % CI" in printed
    assert tool.main([str(tmp_path), "--width", "0"]) == 0
    assert "width 0 against each slice alone: +0.000" in capsys.readouterr().out


def test_fold_scores_watches_each_finished_fold_with_and_without_the_decoder(tmp_path, capsys):
    labels = np.tile([0, 0, 1, 1, 1, 0, 0, 0], 4)
    for fold, peak in ((0, True), (1, False)):
        (tmp_path / f"fold{fold}").mkdir()
        extra = {"bleed_peak": labels * 0.5 + 0.2, "bleed_top4": labels * 0.4 + 0.1} if peak else {}
        np.savez(tmp_path / f"fold{fold}" / "oof.npz", scores=np.linspace(0.1, 0.9, 32), labels=labels,
                 patients=np.repeat(["a", "b", "c", "d"], 8), names=np.array([f"{i % 8 + 1}.jpg" for i in range(32)]),
                 **extra)
    rows = load_tool("fold_scores").fold_scores(tmp_path, 1)
    assert [row["fold"] for row in rows] == ["fold0", "fold1"]
    assert set(rows[0]) == {"fold", "head", "peak", "head+bleed", "head+bleed-top4"}  # the shipped reading too
    assert set(rows[1]) == {"fold", "head"}
    assert rows[0]["peak"][0] == 1.0  # the decoder's peak separates these slices exactly


def test_pair_runs_compares_two_runs_on_the_same_slices_and_studies(tmp_path, capsys):
    labels = np.concatenate([np.tile([0, 0, 1, 1, 1, 0, 0, 0], 2), np.zeros(16, int)])  # two bleed studies, two normal
    patients = np.repeat(["a", "b", "c", "d"], 8)
    for run, noise in (("a", 0.0), ("b", 0.3)):
        scores = np.clip(0.2 + 0.5 * labels + noise * np.sin(np.arange(32)), 0.01, 0.99)
        for fold, pair in enumerate((["a", "c"], ["b", "d"])):
            (tmp_path / run / f"fold{fold}").mkdir(parents=True)
            here = np.isin(patients, pair)
            np.savez(tmp_path / run / f"fold{fold}" / "oof.npz", scores=scores[here], labels=labels[here],
                     embeddings=np.zeros((16, 2)), patients=patients[here],
                     names=np.array([f"{i % 8 + 1}.jpg" for i in range(32)])[here])
    tool = load_tool("pair_runs")
    assert tool.main([str(tmp_path / "a"), "head", "0", str(tmp_path / "b"), "head", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("alone: 1.000 -> ") and printed[1].startswith("with neighbours")
    assert printed[2].startswith("studies, top-k mean: 1.000 -> ")
    patients_, study_labels, top_k = tool.study_scores(str(tmp_path / "b"), "head", 1)
    assert patients_.tolist() == ["a", "b", "c", "d"] and study_labels.tolist() == [1, 1, 0, 0]
    with pytest.raises(SystemExit):  # a run without its score and width: a usage message, not a traceback
        tool.main([str(tmp_path / "a"), "head", "0", str(tmp_path / "b")])
    assert "second_score" in capsys.readouterr().err


def test_study_k_shows_what_each_k_of_the_top_k_rule_scores_fold_by_fold(tmp_path, capsys):
    bleed = np.r_[np.full(4, 0.7), np.full(8, 0.1)]  # a bleed study: 4 bloody slices of 12
    spiky = np.r_[0.95, np.full(11, 0.05)]  # a normal study with one loud slice: first by its top 1, not by its top 12
    quiet = np.full(12, 0.05)
    for fold, studies in enumerate(((bleed, spiky, quiet, bleed), (bleed, quiet, quiet, bleed))):
        (tmp_path / f"fold{fold}").mkdir()
        scores = np.concatenate(studies)
        labels = np.concatenate([(s == 0.7).astype(int) for s in studies])
        np.savez(tmp_path / f"fold{fold}" / "oof.npz", scores=scores, labels=labels, embeddings=np.zeros((48, 2)),
                 patients=np.repeat([f"{fold}{i}" for i in range(4)], 12),
                 names=np.array([f"{i % 12 + 1}.jpg" for i in range(48)]))
    tool = load_tool("study_k")
    rows, pooled, ceiling = tool.by_fold(tmp_path, "head", width=0)
    assert [row["fold"] for row in rows] == [0, 1]
    assert pooled[12] == 1.0 and pooled[1] < 1.0  # the loud normal slice outranks the bleeds only at k = 1
    assert rows[0]["own"][1] < rows[0]["own"][12] == 1.0 and rows[1]["own"][1] == 1.0
    # every bleed study called: at k = 1 the loud normal must be flagged too (3 of 4 normals spared), at k = 12 none
    assert ceiling[1] == {"sensitivity": 1.0, "specificity": 0.75} and ceiling[12]["specificity"] == 1.0
    assert tool.main([str(tmp_path), "--slice-score", "head", "--width", "0"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2].startswith("all studies (uncalibrated): k1 ")
    assert printed[-1].endswith("k1 1.000/0.750 k2 1.000/1.000 k3 1.000/1.000 k5 1.000/1.000 k8 1.000/1.000 "
                                "k12 1.000/1.000")


def test_ensemble_runs_averages_logits_of_the_same_slices_and_refuses_another_split(tmp_path, capsys):
    labels, patients = np.tile([0, 1], 4), np.repeat(["a", "b", "c", "d"], 2)
    names = np.array([f"{i % 2 + 1}.jpg" for i in range(8)])
    for run, head in (("a", 0.2), ("b", 0.8)):
        for fold, pair in enumerate((["a", "b"], ["c", "d"])):
            here = np.isin(patients, pair)
            (tmp_path / run / f"fold{fold}").mkdir(parents=True)
            np.savez(tmp_path / run / f"fold{fold}" / "oof.npz", scores=np.full(4, head), bleed_peak=np.full(4, 0.9),
                     embeddings=np.full((4, 3), head), labels=labels[here], patients=patients[here], names=names[here])
    tool = load_tool("ensemble_runs")
    assert tool.main([str(tmp_path / "out"), str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "2 runs averaged on folds 0, 1" in capsys.readouterr().out
    with np.load(tmp_path / "out" / "fold1" / "oof.npz") as out:
        assert np.allclose(out["scores"], 0.5) and np.allclose(out["bleed_peak"], 0.9)  # logits -1.39 and +1.39
        assert np.allclose(out["embeddings"], 0.2) and out["patients"].tolist() == ["c", "c", "d", "d"]
    (tmp_path / "c" / "fold0").mkdir(parents=True)  # another split: patient b's slices in another fold
    np.savez(tmp_path / "c" / "fold0" / "oof.npz", scores=np.full(2, 0.5), embeddings=np.zeros((2, 3)),
             labels=labels[:2], patients=patients[:2], names=names[:2])
    with pytest.raises(SystemExit, match="did not score the same slices"):
        tool.ensemble([tmp_path / "a", tmp_path / "c"], tmp_path / "out2")


def test_flip_gain_scores_each_fold_model_on_its_held_out_slices_mirrored(small_model_path, tmp_path, capsys):
    import shutil

    from hemo.model import info_path, load, predict

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 256, 256), dtype=np.uint8)
    patients, names = np.repeat(["a", "b", "c", "d"], 4), np.array([f"{i % 4 + 1}.jpg" for i in range(16)])
    np.savez(tmp_path / "cache.npz", images=images, patients=patients, names=names, labels=np.zeros(16, int))
    fold = tmp_path / "run" / "fold0"
    fold.mkdir(parents=True)
    shutil.copy(small_model_path, fold / "hemo-hybrid.keras")
    shutil.copy(info_path(small_model_path), info_path(fold / "hemo-hybrid.keras"))
    order = np.arange(16)[::-1]  # the fold's own order, found again by patient and name
    scores = predict(load(small_model_path)[0], images[order, ..., np.newaxis].astype(np.float32))
    oof = {"labels": np.tile([0, 1], 8)[order], "patients": patients[order], "names": names[order]}
    np.savez(fold / "oof.npz", scores=scores, **oof)
    tool = load_tool("flip_gain")
    part = tool.fold_scores({"images": images, "patients": patients, "names": names}, fold)
    mirrored = predict(load(small_model_path)[0], images[order, :, ::-1, np.newaxis].astype(np.float32))
    assert part["labels"].tolist() == oof["labels"].tolist() and np.allclose(part["mirrored"], mirrored, atol=1e-5)
    assert tool.main([str(tmp_path / "cache.npz"), str(tmp_path / "run"), "--width", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 folds (fold0), 16 slices") and "with the mirror" in printed
    wrong = np.where(scores > 0.5, scores - 0.05, scores + 0.05)  # scores the model does not give: another cache
    np.savez(fold / "oof.npz", scores=wrong, **oof)
    with pytest.raises(SystemExit, match="does not reproduce"):
        tool.main([str(tmp_path / "cache.npz"), str(tmp_path / "run")])


def test_score_parts_says_which_part_carried_each_slice_without_file_names(tmp_path, small_model_path):
    from conftest import dicom_bytes, head_phantom
    from hemo.analysis import Analyzer
    from hemo.bleed import with_decoder
    from hemo.model import build
    from hemo.train import Fitted, TrainConfig, save_trained

    series = tmp_path / "series"
    series.mkdir()
    for z in range(3):  # names in the reverse of scan order: the tool must follow the scan
        hu = head_phantom(256)
        if z == 0:  # first in scan order, last by name; hyperdense, so that its score is unlikely to be the others'
            hu[hu == 35.0] = 75.0
        (series / f"Doe_Jane_{9 - z}.dcm").write_bytes(dicom_bytes((hu + 1024).astype(np.int16),
                                                                  position=(0, 0, float(z))))
    hybrid = with_decoder(build(pretrained="none"))
    decoded = tmp_path / "m" / "hemo-hybrid.keras"
    save_trained(Fitted(keras.Model(hybrid.input, hybrid.output["probabilities"]), {}, hybrid), decoded,
                 TrainConfig(pretrained="none"), 0.5)
    score_parts = load_tool("score_parts")
    with_map = score_parts.main([str(series), "--model", str(decoded)])
    plain = score_parts.main([str(series), "--model", str(small_model_path)])
    assert [line.split(":")[0] for line in with_map] == [f"study 1, slice {k + 1} at {k:.1f} mm" for k in range(3)]
    assert all("bleed peak" in line and "at cell (" in line for line in with_map)
    assert all("bleed peak" not in line and line.split(": ")[1].startswith("paper model 0.") for line in plain)
    assert "Doe" not in "\n".join(with_map + plain)
    [first] = Analyzer.load(small_model_path).analyse((series / "Doe_Jane_9.dcm").read_bytes(), "first")
    assert plain[0].startswith(f"study 1, slice 1 at 0.0 mm: paper model {first.raw:.3f}")  # the first scanned


def test_matched_alarms_counts_a_series_against_the_out_of_fold_normals_of_each_score(tmp_path):
    from conftest import dicom_bytes, head_phantom
    from hemo.bleed import with_decoder
    from hemo.model import build
    from hemo.train import Fitted, TrainConfig, save_trained

    series = tmp_path / "series"
    series.mkdir()
    for z in range(3):
        (series / f"Doe_Jane_{z}.dcm").write_bytes(dicom_bytes((head_phantom(256) + 1024).astype(np.int16),
                                                               position=(0, 0, float(z))))
    hybrid = with_decoder(build(pretrained="none"))
    model = tmp_path / "m" / "hemo-hybrid.keras"
    save_trained(Fitted(keras.Model(hybrid.input, hybrid.output["probabilities"]), {}, hybrid), model,
                 TrainConfig(pretrained="none"), 0.5)
    tool, printed = load_tool("matched_alarms"), {}
    for normal in (1e-6, 1 - 1e-6):  # the untrained model's scores lie above the one and below the other
        run = tmp_path / f"run{normal}"
        labels, patients = np.tile([0, 0, 1, 0], 4), np.repeat(["a", "b", "c", "d"], 4)
        scores = np.where(labels == 1, 0.5, normal)  # bleeds in between: found only above low normals
        for fold, pair in enumerate((["a", "b"], ["c", "d"])):
            here = np.isin(patients, pair)
            (run / f"fold{fold}").mkdir(parents=True)
            np.savez(run / f"fold{fold}" / "oof.npz", scores=scores[here], bleed_peak=scores[here],
                     bleed_top4=scores[here], labels=labels[here], embeddings=np.zeros((8, 2)),
                     patients=patients[here], names=np.array([f"{i}.jpg" for i in range(1, 5)] * 2))
        printed[normal] = tool.main([str(series), str(run), "--model", str(model), "--width", "1"])
    low, high = printed[1e-6], printed[1 - 1e-6]
    assert [line.split(":")[0] for line in low] == [f"{score}, {reading}" for score in
                                                    ("head", "head+bleed", "head+bleed-top4")
                                                    for reading in ("alone", "1 neighbours")]
    assert all(line.count("/3 ") == 4 for line in low + high)
    assert all(line.count(": 3/3 (") == 4 for line in low)
    assert all(line.count("(sensitivity 1.000)") == 4 for line in low[::2])  # alone, the bleeds lie above
    assert all(line.count(": 0/3 (sensitivity 0.000)") == 4 for line in high)
    assert "Doe" not in "\n".join(low + high)


def test_source_probe_reads_the_inner_table_inward_and_scores_each_change_without_file_names(tmp_path,
                                                                                           small_model_path):
    from conftest import dicom_bytes, head_phantom

    probe = load_tool("source_probe")
    image = np.zeros((64, 64), np.float32)
    shoulder = np.array([200, 150, 120, 110, 110, 110], np.float32)
    image[:, 4:9] = 255  # bone, then the shoulder inward, on every row; the same mirrored on the right
    image[:, 9:15] = shoulder
    image[:, 15:49] = 110
    image[:, 49:55] = shoulder[::-1]
    image[:, 55:60] = 255
    image[40, 4:60] = 255  # a bright block, not a skull: skipped from both sides
    found = probe.inner_table(image)
    assert len(found) == 2 * (32 - 1) and all(np.array_equal(p, shoulder) for p in found)
    flat = probe.flatten_inner_table(image, 4)  # the 4 pixels inside the bone take the brain's median grey
    assert np.all(flat[10, 9:13] == 110) and np.all(flat[10, 51:55] == 110)  # were 200, 150, 120, 110
    assert np.array_equal(flat[:, :9], image[:, :9])  # air and bone as they were

    series = tmp_path / "series"
    series.mkdir()
    for z in range(3):
        (series / f"Doe_Jane_{z}.dcm").write_bytes(dicom_bytes((head_phantom(256) + 1024).astype(np.int16),
                                                               position=(0, 0, float(z))))
    lines = probe.main([str(series), "--model", str(small_model_path)])
    assert lines[0] == "3 slices" and len(lines) == 9
    assert [line.split(":")[0] for line in lines[1:8]] == list(probe.variants(np.zeros((1, 8, 8))))
    assert all("head max 0." in line for line in lines[1:8])
    assert lines[8].startswith("series: noise ") and "inner table inward (HU): " in lines[8]
    assert "Doe" not in "\n".join(lines)


def test_shift_check_scores_held_out_slices_again_as_if_from_another_source(tmp_path):
    from hemo.augment import TRAIN_WINDOW, augment
    from hemo.bleed import load_decoder, with_decoder
    from hemo.model import build, load
    from hemo.partial_volume import thicken
    from hemo.train import Fitted, TrainConfig, save_trained

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 256, 256), dtype=np.uint8)
    patients, names = np.repeat(["a", "b"], 4), np.array([f"{i % 4 + 1}.jpg" for i in range(8)])
    np.savez(tmp_path / "cache.npz", images=images, patients=patients, names=names, labels=np.zeros(8, int))
    fold = tmp_path / "run" / "fold0"
    hybrid = with_decoder(build(pretrained="none"))
    save_trained(Fitted(keras.Model(hybrid.input, hybrid.output["probabilities"]), {}, hybrid),
                 fold / "hemo-hybrid.keras", TrainConfig(pretrained="none"), 0.5)
    tool = load_tool("shift_check")
    order = np.arange(8)[::-1]  # the fold's own order, found again by patient and name
    model, info = load(fold / "hemo-hybrid.keras")
    decoder = load_decoder(fold / info.bleed["file"])
    scores = tool.scores_of(model, decoder, images[order])
    assert set(tool.scores_of(model, None, images[order])) == {"head"}  # a model without a decoder: its head alone,
    assert np.allclose(tool.scores_of(model, None, images[order])["head"], scores["head"], atol=1e-5)  # the same
    labels = np.tile([0, 1], 4)
    np.savez(fold / "oof.npz", scores=scores["head"], labels=labels, patients=patients[order], names=names[order])
    cache = {"images": images, "patients": patients, "names": names}
    got_labels, original, shifted = tool.fold_shift(cache, fold, 2, np.random.default_rng(7))
    draw = np.random.default_rng(7)  # the same draws, made here: two robust copies of each slice, in turn
    again = [tool.scores_of(model, decoder, np.stack([augment(x, draw, robust=True)[0] for x in images[order]]))
             for _ in range(2)]
    assert got_labels.tolist() == labels.tolist() and np.allclose(original["head"], scores["head"], atol=1e-5)
    assert set(shifted) == {"head", "peak", "head+bleed", "head+bleed-top4"} and len(shifted["head+bleed"]) == 16
    assert np.allclose(shifted["peak"], np.concatenate([a["peak"] for a in again]), atol=1e-5)
    lines = tool.main([str(tmp_path / "cache.npz"), str(tmp_path / "run"), "--draws", "1"])
    assert lines[0] == "1 folds, 8 held-out slices, 1 shifted copies of each"
    assert [line.split(":")[0] for line in lines[1:]] == ["head", "peak", "head+bleed", "head+bleed-top4"]
    with pytest.raises(SystemExit, match="--neighbours"):  # the partial-volume shift needs each slice's neighbour
        tool.main([str(tmp_path / "cache.npz"), str(tmp_path / "run"), "--thick", "0.5"])
    beside = images[::-1].copy()
    beside[1] = 0  # a slice without a same-label neighbour: left out
    np.savez(tmp_path / "nb.npz", images=images, patients=patients, names=names, labels=np.zeros(8, int),
             neighbours=beside)
    got_labels, original, blended = tool.fold_shift(tool.read_cache(tmp_path / "nb.npz"), fold, 1, draw, (0.5, 700.0))
    has = beside[order].any(axis=(1, 2))
    expected = tool.scores_of(model, decoder, np.stack([thicken(x, n.astype(np.float32), 0.5, 700.0, TRAIN_WINDOW)
                                                        for x, n in zip(images[order][has], beside[order][has])]))
    assert has.sum() == 7 and got_labels.tolist() == labels[has].tolist()
    assert np.allclose(original["head"], scores["head"][has], atol=1e-5)
    assert np.allclose(blended["peak"], expected["peak"], atol=1e-5)
    lines = tool.main([str(tmp_path / "nb.npz"), str(tmp_path / "run"), "--thick", "0.5"])
    assert lines[0] == "1 folds, 7 held-out slices with a same-label neighbour, each blended with it at weight 0.5 " \
        "(bone 700 HU)"
    np.savez(fold / "oof.npz", scores=scores["head"] + 0.05, labels=labels, patients=patients[order],
             names=names[order])  # scores the model does not give: another cache
    with pytest.raises(SystemExit, match="does not reproduce"):
        tool.main([str(tmp_path / "cache.npz"), str(tmp_path / "run")])


def test_band_check_scores_held_out_slices_again_with_the_band_inside_the_skull_flattened(tmp_path):
    import cv2

    from hemo.bleed import load_decoder, with_decoder
    from hemo.model import build, load
    from hemo.train import Fitted, TrainConfig, save_trained

    images = np.zeros((4, 256, 256), np.uint8)
    for i, image in enumerate(images):
        cv2.circle(image, (128, 128), 100, 255, -1)
        cv2.circle(image, (128, 128), 90, 110, -1)
        cv2.ellipse(image, (128, 128), (89, 89), 0, 90 * i, 90 * i + 60, 170, 3)  # a bright rim on one arc
    patients, names = np.array(["049"] * 4), np.array([f"Patients_CT/049/brain/{i + 1}.jpg" for i in range(4)])
    labels = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "cache.npz", images=images, patients=patients, names=names, labels=labels)
    (tmp_path / "diagnosis.csv").write_text(
        "PatientNumber,SliceNumber,Intraventricular,Intraparenchymal,Subarachnoid,Epidural,Subdural,No_Hemorrhage,"
        "Fracture_Yes_No\n49,1,0,0,0,0,0,1,0\n49,2,0,0,0,1,0,0,0\n49,3,0,0,0,0,0,1,0\n49,4,0,1,0,0,0,0,0\n")
    fold = tmp_path / "run" / "fold0"
    keras.utils.set_random_seed(3)
    hybrid = with_decoder(build(pretrained="none"))
    save_trained(Fitted(keras.Model(hybrid.input, hybrid.output["probabilities"]), {}, hybrid),
                 fold / "hemo-hybrid.keras", TrainConfig(pretrained="none"), 0.5)
    tool, probe = load_tool("band_check"), load_tool("source_probe")
    model, info = load(fold / "hemo-hybrid.keras")
    decoder = load_decoder(fold / info.bleed["file"])
    scores = tool.scores_of(model, decoder, images)
    np.savez(fold / "oof.npz", scores=scores["head"], labels=labels, patients=patients, names=names)
    oof, before, after = tool.flattened_scores(tool.read_cache(tmp_path / "cache.npz"), fold, 4)
    flat = np.stack([probe.flatten_inner_table(image.astype(np.float32), 4) for image in images])
    assert np.allclose(before["peak"], scores["peak"], atol=1e-5)
    assert np.allclose(after["peak"], tool.scores_of(model, decoder, flat)["peak"], atol=1e-5)
    assert not np.allclose(flat, images)  # the rim was in the band
    lines = tool.main([str(tmp_path / "run"), str(tmp_path / "cache.npz"), "--diagnosis",
                       str(tmp_path / "diagnosis.csv")])
    assert lines[0].startswith("1 folds, 4 held-out slices (2 with a bleed), 4 pixels inside the skull flattened")
    assert [line.split(":")[0] for line in lines[1:]] == ["head", "peak", "head+bleed", "head+bleed-top4"]
    assert "; Epidural " in lines[2] and "; Intraparenchymal " in lines[2] and "Subdural" not in lines[2]
    assert "brain/" not in "\n".join(lines)
    np.savez(fold / "oof.npz", scores=scores["head"] + 0.05, labels=labels, patients=patients, names=names)
    with pytest.raises(SystemExit, match="does not reproduce"):  # scores the model does not give: another cache
        tool.main([str(tmp_path / "run"), str(tmp_path / "cache.npz")])


def test_error_anatomy_names_the_small_bleed_a_study_verdict_misses(tmp_path, capsys):
    import shutil

    patients, names, labels, masks, folds = [], [], [], [], []
    for fold in range(5):  # per fold a bleed patient and a normal one; fold 0 also a patient with one tiny bleed
        tiny = (("300", (4,)),) if fold == 0 else ()
        for patient, bleed in ((f"1{fold}0", (3, 4, 5, 6)), (f"2{fold}0", ())) + tiny:
            for number in range(1, 9):
                patients.append(patient), names.append(f"Patients_CT/{patient}/brain/{number}.jpg")
                labels.append(int(number in bleed)), folds.append(fold)
                mask = np.zeros((256, 256), np.uint8)
                mask[100:100 + (3 if patient == "300" else 10 * (number - 2)), 100:140] = 255 * labels[-1]
                masks.append(mask)
    patients, names, labels, folds = map(np.array, (patients, names, labels, folds))
    small = patients == "300"  # scored below every normal slice: missed, and its fold's threshold cannot spare it
    scores = np.where(small, 0.05, np.where(labels == 1, 0.8, 0.1))
    np.savez(tmp_path / "cache.npz", images=np.zeros((len(labels), 4, 4), np.uint8), labels=labels,
             patients=patients, names=names, masks=np.array(masks))
    for fold in range(5):
        where = folds == fold
        (tmp_path / "run" / f"fold{fold}").mkdir(parents=True)
        np.savez(tmp_path / "run" / f"fold{fold}" / "oof.npz", scores=scores[where], labels=labels[where],
                 embeddings=np.zeros((where.sum(), 4)), patients=patients[where], names=names[where])
    with open(tmp_path / "diagnosis.csv", "w") as table:
        table.write("PatientNumber,SliceNumber,Intraventricular,Intraparenchymal,Subarachnoid,Epidural,Subdural,"
                    "No_Hemorrhage,Fracture_Yes_No\n")
        for patient, name, label in zip(patients, names, labels):
            number = name.split("/")[-1][:-4]
            fracture = int(patient == "110" and number == "1")
            table.write(f"{int(patient)},{number},0,0,0,{label},0,{1 - label},{fracture}\n")
    assert load_tool("error_anatomy").main([str(tmp_path / "run"), str(tmp_path / "cache.npz"),
                                            "--diagnosis", str(tmp_path / "diagnosis.csv")]) == 0
    printed = capsys.readouterr().out
    assert "up to 1.22 %: 11 slices, sensitivity 0.909 / " in printed  # the smallest third holds the tiny bleed
    assert "Epidural 21: " in printed and "Subdural 0: - / -" in printed
    assert "normal slices with a skull fracture: 1, specificity 1.000" in printed
    # the tiny bleed is missed, and choosing the threshold with it in the other folds flags their normal studies
    assert "5 of 6 with a bleed called, 4 of 5 without one flagged" in printed
    assert "missed: patient 300, 1 bleed slices, bleed areas summing to 0.18 % of one crop (the 1st smallest)" \
        in printed
    for fold in range(1, 5):  # one fold alone has no other folds to choose operating points on: AUCs only
        shutil.rmtree(tmp_path / "run" / f"fold{fold}")
    assert load_tool("error_anatomy").main([str(tmp_path / "run"), str(tmp_path / "cache.npz"), "--context", "1"]) == 0
    printed = capsys.readouterr().out
    assert "read with 1 neighbours, one fold" in printed and "up to 1.22 %: 3 slices, sensitivity - / -" in printed
    assert "studies" not in printed


def test_cv_on_the_command_line_trains_the_decoder_on_the_target_and_map_size_asked_for(monkeypatch, tmp_path, capsys):
    from hemo import cli

    seen = []
    monkeypatch.setattr(cli, "_load_data", lambda path: None)
    monkeypatch.setattr(train, "cross_validate", lambda data, config, *args, **kwargs: seen.append(config) or
                        [{"auc": 0.5}])
    for extra in ([], ["--mask-target", "any", "--map-size", "64", "--shoulder", "--transplant"]):
        assert cli.main(["cv", str(tmp_path), "--mask-weight", "1", *extra]) == 0
    assert [(config.mask_target, config.map_size, config.shoulder, config.transplant) for config in seen] == [
        ("share", 32, False, False), ("any", 64, True, True)]
    with pytest.raises(SystemExit, match="only --mask-weight trains"):  # without a decoder they would do nothing
        cli.main(["cv", str(tmp_path), "--map-size", "64"])


def test_score_weight_finds_the_part_that_ranks_and_chooses_each_folds_weight_on_the_others(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 20)
    for fold in range(2):  # the decoder ranks every slice right, the paper model at random
        (tmp_path / f"fold{fold}").mkdir()
        np.savez(tmp_path / f"fold{fold}" / "oof.npz", scores=rng.uniform(0.01, 0.99, 40), labels=labels,
                 bleed_top4=np.where(labels == 1, 0.55, 0.45),  # faint beside the noise: only w = 1 ranks all
                 embeddings=np.zeros((40, 2)), patients=np.repeat([f"{fold}a", f"{fold}b"], 20),
                 names=np.array([f"{i + 1}.jpg" for i in range(40)]))
    tool = load_tool("score_weight")
    pooled, nested, chosen = tool.by_weight(*tool.load(tmp_path))
    assert pooled[1.0] == 1.0 and pooled[0.0] < 0.8 and chosen == [1.0, 1.0] and nested == 1.0
    tool.main([str(tmp_path)])
    assert "nested 1.000 (weights [1.0, 1.0])" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no fold"):
        tool.load(tmp_path / "nothing")
    for fold in range(2):  # a run without the decoder's reading: a usage message, not a KeyError
        data = dict(np.load(tmp_path / f"fold{fold}" / "oof.npz"))
        del data["bleed_top4"]
        np.savez(tmp_path / f"fold{fold}" / "oof.npz", **data)
    with pytest.raises(SystemExit, match="no bleed_top4"):
        tool.load(tmp_path)


def test_decoder_scale_reads_a_fold_at_a_larger_size_and_at_256_as_the_run_did(tmp_path, monkeypatch, capsys):
    import cv2
    import keras

    from conftest import dicom_bytes, head_phantom
    from hemo import imaging
    from hemo import model as paper
    from hemo.bleed import decoder_peaks, load_decoder, with_decoder
    from hemo.imaging import read_file, window
    from hemo.model import build, load
    from hemo.train import Fitted, TrainConfig, save_trained

    data, fold = tmp_path / "data", tmp_path / "run" / "fold0"
    names = [f"Patients_CT/00{k}/brain/1.png" for k in range(3)]
    for k, name in enumerate(names):  # heads of three sizes in the frame: the crop makes them one size
        (data / name).parent.mkdir(parents=True)
        cv2.imwrite(str(data / name), np.round(window(head_phantom(200 + 100 * k), 40, 120)).astype(np.uint8))
    hybrid = with_decoder(build(pretrained="none"))
    save_trained(Fitted(keras.Model(hybrid.input, hybrid.output["probabilities"]), {}, hybrid),
                 fold / "hemo-hybrid.keras", TrainConfig(pretrained="none"), 0.5)
    np.savez(fold / "oof.npz", names=np.array(names))
    tool = load_tool("decoder_scale")
    images = np.stack([read_file(data / name)[0].pixels for name in names])[..., np.newaxis]
    as_run = decoder_peaks(load(fold / "hemo-hybrid.keras")[0], load_decoder(fold / "hemo-hybrid-bleed.keras"),
                           images, cells=4)
    files = [data / name for name in names]
    assert np.allclose(tool.read_at(256, files, fold / "hemo-hybrid.keras")["top4"], as_run, atol=1e-5)
    shapes = []

    def recorded(*args, **kwargs):
        found = read_file(*args, **kwargs)
        shapes.append(found[0].pixels.shape)
        return found

    monkeypatch.setattr(imaging, "read_file", recorded)
    larger = tool.read_at(384, files, fold / "hemo-hybrid.keras")
    assert sorted(larger) == ["head", "seconds", "top1", "top16", "top4", "top9"]
    assert all(len(larger[key]) == 3 for key in ("head", "top1", "top4")) and larger["seconds"] > 0
    assert shapes == [(384, 384)] * 3  # each slice cropped and resized to the larger size
    assert imaging.SIZE == paper.SIZE == 256  # the app's size is back for whatever runs next
    # --external: another scanner's DICOM series, read through the model's input window; a licence file skipped
    series = tmp_path / "series"
    series.mkdir()
    (series / "LICENSE").write_text("BSD")
    (series / "1.dcm").write_bytes(dicom_bytes(np.round(head_phantom(256) + 1024).astype(np.int16), window=(600, 2000)))
    windows = []

    def windowed(*args, **kwargs):
        windows.append(kwargs.get("model_window"))
        return read_file(*args, **kwargs)

    monkeypatch.setattr(imaging, "read_file", windowed)
    assert tool.main(["--external", str(series), "--model", str(fold / "hemo-hybrid.keras"), "--sizes", "384"]) == 0
    printed = capsys.readouterr().out
    assert "1 slices read alone" in printed and "\n  384 (" in printed and "joined with 256" in printed
    assert set(windows) == {(40.0, 120.0)}  # the model's input window, not the file's bone-like 600 / 2000
    # the best balanced point on the slices themselves: 0.35 splits them 1 of 2 / 1 of 2, no threshold does better
    assert tool.balanced_ceiling(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.5)
    assert tool.balanced_ceiling(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.35, 0.8])) == pytest.approx(1.0)
