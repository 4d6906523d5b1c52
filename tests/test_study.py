"""Whole studies: bleed masks in training, out-of-fold CV, calibration, operating points, the study model."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from conftest import ROOT, ct_ich_folder, dicom_bytes, head_phantom
from hemo import calibrate, datasets
from hemo.analysis import Analyzer
from hemo.cli import main
from hemo.model import read_info
from hemo.study import MIN_SERIES, min_series, studies


def test_masks_are_read_and_cropped_like_their_slices(tmp_path):
    data = datasets.load(ct_ich_folder(tmp_path, patients=2, slices=5))
    assert data.masks is not None and data.masks.shape == data.images.shape
    positive = data.labels == 1
    assert (data.masks[positive] > 127).any(axis=(1, 2)).all() and not data.masks[~positive].any()
    for image, mask in zip(data.images[positive], data.masks[positive]):
        assert image[mask > 127].mean() > image[(mask == 0) & (image > 60)].mean() + 10  # the mask sits on the blob
    assert not any(datasets.is_annotation(r.path) for r in datasets.discover(tmp_path))


def test_cv_writes_out_of_fold_scores_and_resumes(cv_run, capsys):
    root, out, args = cv_run
    parts = sorted(out.glob("fold*/oof.npz"))
    assert len(parts) == 2
    with np.load(parts[0]) as fold:
        assert fold["embeddings"].shape == (len(fold["scores"]), 256)
        held_out = len(fold["scores"])
    traced = [json.loads(line) for line in (parts[0].parent / "heldout.jsonl").read_text().splitlines()]
    assert {"auc", "bleed_dice", "bleed_peak_auc"} <= traced[-1].keys()  # the decoder's map on held-out patients
    with np.load(parts[0]) as fold:  # the decoder's own slice scores beside the head's, and the decoder itself
        assert fold["bleed_peak"].shape == (held_out,) and ((fold["bleed_peak"] >= 0) & (fold["bleed_peak"] <= 1)).all()
        assert (fold["bleed_top4"] <= fold["bleed_peak"] + 1e-9).all() and (fold["bleed_top4"] > 0).all()
    assert read_info(parts[0].parent / "hemo-hybrid.keras").bleed["file"] == "hemo-hybrid-bleed.keras"  # fold model
    assert read_info(parts[0].parent / "hemo-hybrid.keras").trained_on["slices"]  # what trained it (evaluate --unseen)
    stamp = [p.stat().st_mtime for p in parts]
    capsys.readouterr()
    assert main(args) == 0  # finished folds are read back, not retrained
    assert [p.stat().st_mtime for p in parts] == stamp
    assert "[fine-tune]" not in capsys.readouterr().out


def test_calibrate_stores_operating_points_and_study_model(cv_run, small_model_path, tmp_path):
    root, out, _ = cv_run
    model = tmp_path / "hemo-hybrid.keras"
    model.write_bytes(small_model_path.read_bytes())
    model.with_suffix(".json").write_text(small_model_path.with_suffix(".json").read_text())
    report = calibrate.run(out, model, epochs=5, rule="study_model", score="head")  # this model has no decoder
    for key in ("slice_raw", "slice_calibrated", "study_highest_slice", "study_top_k_mean", "study_model", "patients"):
        assert key in report
    assert len(report["patients"]) == 6 and report["slices"] == 60
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["calibration"] and info["study"]["file"] == "hemo-hybrid-study.weights.h5"
    assert info["study"]["score"] == "study_model"
    assert "out-of-fold" in info["provenance"]["chosen_on"]
    analyzer = Analyzer.load(model)
    assert analyzer.study_model is not None
    series = [(f"{z}.dcm", dicom_bytes((head_phantom(128) + 1024).astype(np.int16), position=(0, 0, z)))
              for z in range(MIN_SERIES)]
    [long] = studies(analyzer.analyse_files(series), analyzer)
    [short] = studies(analyzer.analyse_files(series[:3]), analyzer)
    assert long.method == "study model" and long.threshold == info["study"]["threshold"]
    assert short.method == "highest slice" and short.threshold == info["threshold"]
    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(root), "--model", str(model), "--json", str(evaluated)]) == 0
    metrics = json.loads(evaluated.read_text())
    assert metrics["study_method"] == "study model" and metrics["study_threshold"] == info["study"]["threshold"]


def test_calibrate_can_store_the_top_k_mean_and_every_layer_uses_it(cv_run, small_model_path, tmp_path):
    import pandas as pd

    from hemo import batch
    from hemo.model import platt
    from hemo.study import top_k_mean

    root, out, _ = cv_run
    model = tmp_path / "hemo-hybrid.keras"
    model.write_bytes(small_model_path.read_bytes())
    model.with_suffix(".json").write_text(small_model_path.with_suffix(".json").read_text())
    auto = calibrate.run(out, epochs=5, score="head")
    higher = "top_k_mean" if auto["study_top_k_mean"]["auc"] >= auto["study_model"]["auc"] else "study_model"
    assert auto["study_rule"] == higher  # auto: the higher out-of-fold study AUC
    report = calibrate.run(out, model, epochs=5, rule="top_k_mean", score="head", context="0")  # each slice alone
    rule = json.loads(model.with_suffix(".json").read_text())["study"]
    assert rule["score"] == "top_k_mean" and rule["k"] in calibrate.TOP_K and "file" not in rule
    assert rule["threshold"] == report["study_top_k_mean"]["threshold"]

    analyzer = Analyzer.load(model)
    assert analyzer.study_model is None
    k = rule["k"]
    assert min_series(analyzer.info) == max(MIN_SERIES, k)
    series = [(f"{z}.dcm", dicom_bytes((head_phantom(128, (60, 70) if 3 <= z < 6 else None) + 1024).astype(np.int16),
                                       position=(0, 0, z))) for z in range(max(MIN_SERIES, k) + 2)]
    [long] = studies(analyzer.analyse_files(series), analyzer)
    [short] = studies(analyzer.analyse_files(series[:3]), analyzer)
    assert long.method == f"mean of the top {k} slices" and long.threshold == rule["threshold"]
    expected = platt(top_k_mean(np.array([r.probability for r in long.slices]), k), rule["calibration"])
    assert long.probability == pytest.approx(float(expected))
    assert f"mean of the top {k} slices of the series" in long.how
    assert short.method == "highest slice" and short.probability == max(r.probability for r in short.slices)

    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(root), "--model", str(model), "--json", str(evaluated)]) == 0
    metrics = json.loads(evaluated.read_text())
    assert metrics["study_method"] == long.method and metrics["study_threshold"] == rule["threshold"]

    table = tmp_path / "archive"  # what 'hemo batch' leaves: one row per slice
    table.mkdir()
    probabilities = [r.probability for r in long.slices] + [r.probability for r in short.slices]
    pd.DataFrame({"file": [f"{i}.dcm" for i in range(len(probabilities))], "probability": probabilities,
                  "score": [r.score for r in long.slices + short.slices],
                  "study_uid": ["long"] * len(long.slices) + ["short"] * len(short.slices), "series_uid": "1"}
                 ).to_parquet(table / "part.parquet")
    rows = batch.studies(table, analyzer.info).set_index("study_uid")
    assert rows.loc["long", "method"] == long.method
    assert rows.loc["long", "probability"] == pytest.approx(long.probability)
    assert rows.loc["short", "method"] == "highest slice"


def _never(*args, **kwargs):
    raise AssertionError("reached")


@pytest.mark.parametrize("score, cells, weight", [("head+bleed", 1, "0.5"), ("head+bleed-top4", 4, "0.25")])
def test_calibrate_can_score_slices_with_the_decoder_and_the_app_scores_them_so(cv_run, small_model_path, tmp_path,
                                                                                monkeypatch, score, cells, weight):
    import shutil

    from hemo.bleed import combined
    from hemo.model import platt

    root, out, _ = cv_run
    auto = calibrate.slice_score(calibrate.read_oof(out))[2]  # what 'auto' weighs: each score's out-of-fold AUC
    assert set(auto["auc"]) == {"head", "head+bleed", "head+bleed-top4"} and len(auto["difference_ci"]) == 2
    assert auto["chosen"] == max(auto["auc"], key=auto["auc"].get) and len(auto["top4_difference_ci"]) == 2
    plain = tmp_path / "plain" / "hemo-hybrid.keras"  # a model without a decoder cannot take that score
    plain.parent.mkdir()
    shutil.copy(small_model_path, plain)
    shutil.copy(small_model_path.with_suffix(".json"), plain.with_suffix(".json"))
    with monkeypatch.context() as patched, pytest.raises(ValueError, match="no decoder"):
        patched.setattr(calibrate, "nested_study_scores", _never)  # refused before the study model is trained
        calibrate.run(out, plain, epochs=5, score=score)
    model = tmp_path / "hemo-hybrid.keras"  # fold 0's model, which kept its decoder
    for name in ("hemo-hybrid.keras", "hemo-hybrid.json", "hemo-hybrid-bleed.keras"):
        shutil.copy(out / "fold0" / name, tmp_path / name)
    report = calibrate.run(out, model, epochs=5, rule="top_k_mean", score=score, weight=weight)
    info = read_info(model)
    assert info.slice_score == score and "bleed decoder" in info.provenance["slice_score"]
    assert info.decoder_weight == float(weight)
    assert ("weighed 0.25" in info.provenance["slice_score"]) == (weight != "0.5")
    at_weight = calibrate.slice_score(calibrate.read_oof(out), score, weight)[2]["auc"][score]
    assert report["slice_raw"]["auc"] == pytest.approx(at_weight)
    analyzer = Analyzer.load(model)
    image = cv2.imencode(".png", np.clip(head_phantom(256, (100, 120)) / 4 + 60, 0, 255).astype(np.uint8))[1]
    [result] = analyzer.analyse(image.tobytes(), "slice.png")
    read = np.sort(result.bleed.astype(float).ravel())[::-1][:cells].mean()  # the map's peak, or its top-4 mean
    assert result.score == pytest.approx(float(combined(result.raw, read, info.decoder_weight)), abs=2e-3)
    if weight != "0.5":  # the stored weight is what the app reads with, not the plain mean
        assert abs(result.score - float(combined(result.raw, read))) > 2e-3
    assert result.probability == pytest.approx(float(platt(result.score, info.calibration)))
    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(root), "--model", str(model), "--json", str(evaluated)]) == 0
    assert json.loads(evaluated.read_text())["auc"] is not None


def test_the_decoder_weight_moves_the_joined_score_from_the_head_to_the_decoder():
    from hemo.bleed import combined
    from hemo.model import mean_logit

    head, decoder = np.array([0.2, 0.9]), np.array([0.7, 0.4])
    assert combined(head, decoder) == pytest.approx(mean_logit(head, decoder))
    assert combined(head, decoder, 0.0) == pytest.approx(head)
    assert combined(head, decoder, 1.0) == pytest.approx(decoder)
    assert combined(head, decoder, 0.25)[0] < combined(head, decoder)[0] < combined(head, decoder, 0.75)[0]
    with pytest.raises(ValueError, match="0..1"):
        combined(head, decoder, 1.5)


def test_the_decoder_weight_is_chosen_out_of_fold_and_reported_nested():
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 200)
    folds = np.repeat(np.arange(5), 80)
    head = 1 / (1 + np.exp(-(labels + rng.normal(0, 2.0, 400))))  # a weak head
    decoder = 1 / (1 + np.exp(-(labels + rng.normal(0, 0.7, 400))))  # a decoder that ranks better
    found = calibrate.decoder_weight(labels, head, decoder, folds, "auto")
    assert found["weight"] == 0.75 and max(found["auc"], key=found["auc"].get) == "0.75"
    assert found["weight_per_fold"] == [0.75] * 5 and found["auc_nested"] == pytest.approx(found["auc"]["0.75"])
    assert calibrate.decoder_weight(labels, head, decoder, folds, "0.5")["weight"] == 0.5
    with pytest.raises(ValueError, match="auto or a number"):
        calibrate.decoder_weight(labels, head, decoder, folds, "heavy")


def test_a_run_that_recorded_only_the_peak_offers_only_the_peak(cv_run, tmp_path):
    import shutil

    _, out, _ = cv_run
    older = tmp_path / "older"
    for part in sorted(out.glob("fold*/oof.npz")):  # as runs before the top-4 mean was recorded left them
        (older / part.parent.name).mkdir(parents=True)
        with np.load(part) as data:
            np.savez(older / part.parent.name / "oof.npz", **{k: data[k] for k in data.files if k != "bleed_top4"})
    shutil.rmtree(older / "fold1")
    shutil.copytree(out / "fold1", older / "fold1")  # one fold with both readings, one with the peak only
    assert set(calibrate.slice_score(calibrate.read_oof(older))[2]["auc"]) == {"head", "head+bleed"}
    with pytest.raises(ValueError, match="bleed_top4"):
        calibrate.run(older, epochs=5, score="head+bleed-top4")


def test_calibrate_can_read_a_series_slices_with_their_neighbours_and_every_layer_does(cv_run, small_model_path,
                                                                                         tmp_path):
    import pandas as pd

    from hemo import batch
    from hemo.context import neighbour_mean
    from hemo.model import platt
    from hemo.study import top_k_mean

    root, out, _ = cv_run
    model = tmp_path / "hemo-hybrid.keras"
    model.write_bytes(small_model_path.read_bytes())
    model.with_suffix(".json").write_text(small_model_path.with_suffix(".json").read_text())
    report = calibrate.run(out, model, epochs=5, rule="top_k_mean", score="head", context="2")
    assert set(report["context"]["auc"]) == {"0", "1", "2", "3", "4"} and len(report["context"]["width_per_fold"]) == 2
    info = read_info(model)
    assert info.context == {"width": 2, "calibration": report["context"]["calibration"],
                            "threshold": report["context"]["threshold"]}
    assert info.calibration == report["slice_calibrated"]["calibration"]  # a lone slice keeps its own
    assert "2 slices on either side" in info.provenance["context"]
    assert f"at least {min_series(info)} slices" in info.provenance["context"]
    assert report["evaluation"]["context_width"] == 2
    assert report["evaluation"]["context_sensitivity"] == report["context"]["nested"]["sensitivity"]

    analyzer = Analyzer.load(model)
    k = info.study["k"]
    series = [(f"{z}.dcm", dicom_bytes((head_phantom(128, (60, 70) if 3 <= z < 6 else None) + 1024).astype(np.int16),
                                       position=(0, 0, z))) for z in range(max(MIN_SERIES, k) + 2)]
    [long] = studies(analyzer.analyse_files(series[::-1]), analyzer)  # uploaded in reverse: read in scan order
    [short] = studies(analyzer.analyse_files(series[:3]), analyzer)
    scores = np.array([r.score for r in long.slices])
    expected = platt(neighbour_mean(scores, 2), info.context["calibration"])
    assert long.refined == pytest.approx(expected.tolist()) and long.refined_threshold == info.context["threshold"]
    assert long.probability == pytest.approx(float(platt(top_k_mean(expected, k), info.study["calibration"])))
    assert [r.probability for r in long.slices] == pytest.approx(platt(scores, info.calibration).tolist())
    assert short.refined is None and short.refined_threshold is None  # too short to be read as a series

    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(root), "--model", str(model), "--json", str(evaluated)]) == 0
    metrics = json.loads(evaluated.read_text())
    assert metrics["context_width"] == 2 and metrics["context_threshold"] == info.context["threshold"]
    assert metrics["context_slices"] == metrics["n"] and metrics["context_auc"] is not None
    context = {k for k in report["evaluation"] if k.startswith("context")}
    assert {k for k in metrics if k.startswith("context")} == context

    table = tmp_path / "archive"  # 'hemo batch' rows arrive in any order: the study is read in scan order
    table.mkdir()
    shuffled = np.random.default_rng(0).permutation(len(long.slices))
    pd.DataFrame({"file": [f"{i}.dcm" for i in shuffled], "frame": 0, "study_uid": "long", "series_uid": "1",
                  "position": [long.slices[i].position for i in shuffled],
                  "score": scores[shuffled], "probability": [long.slices[i].probability for i in shuffled]}
                 ).to_parquet(table / "part.parquet")
    assert batch.studies(table, analyzer.info).set_index("study_uid").loc["long", "probability"] == \
        pytest.approx(long.probability)


def test_a_lone_high_slice_is_read_down_by_its_neighbours_and_a_run_of_them_is_not():
    from hemo.context import neighbour_mean

    scores = np.array([0.05, 0.05, 0.95, 0.05, 0.05, 0.05, 0.8, 0.8, 0.8, 0.8, 0.05])
    read = neighbour_mean(scores, 1)
    assert read[2] < 0.5 and (read[7:9] > 0.7).all()
    assert neighbour_mean(scores, 0) == pytest.approx(scores)
    assert len(neighbour_mean(scores[:1], 3)) == 1 and neighbour_mean(scores[:1], 3)[0] == pytest.approx(0.05)


def test_the_context_width_is_chosen_out_of_fold_and_reported_nested():
    rng = np.random.default_rng(0)
    scores, labels, folds, series = [], [], [], []
    for i in range(30):  # bleeds span slices 10-17; each slice's own score is noisy
        truth = np.zeros(30, int)
        if i % 2:
            truth[10:18] = 1
        logits = 2.0 * truth - 1.0 + rng.normal(0, 1.5, 30)
        series.append(np.arange(30) + 30 * i)
        scores.append(1 / (1 + np.exp(-logits)))
        labels.append(truth)
        folds.append(np.full(30, i % 5))
    scores, labels, folds = map(np.concatenate, (scores, labels, folds))
    width, report = calibrate.choose_context(labels, scores, folds, series)
    assert width > 0 and report["auc"][str(width)] > report["auc"]["0"] + 0.05
    assert len(report["width_per_fold"]) == 5 and report["auc_nested"]["auc"] > report["auc"]["0"]
    assert calibrate.choose_context(labels, scores, folds, series, "0")[0] == 0
    with pytest.raises(ValueError, match="unknown context"):
        calibrate.choose_context(labels, scores, folds, series, "wide")


def test_calibrate_writes_the_out_of_fold_numbers_a_final_model_is_shown_with(cv_run, tmp_path):
    from hemo.evaluate import format_report

    _, out, _ = cv_run
    path, full = tmp_path / "evaluation.json", tmp_path / "calibrate.json"
    assert main(["calibrate", str(out), "--epochs", "5", "--study-score", "top_k_mean", "--evaluation", str(path),
                 "--json", str(full)]) == 0
    report = json.loads(full.read_text())
    metrics, top = json.loads(path.read_text()), report["study_top_k_mean"]
    assert metrics.keys() == report["evaluation"].keys()
    assert metrics["title"].startswith("Out-of-fold") and metrics["n"] == 60 and metrics["studies"] == 6
    # nested, as a new patient meets them: not the rates at the operating point chosen on these very predictions
    assert metrics["sensitivity"] == report["slice_calibrated"]["nested"]["sensitivity"]
    assert metrics["specificity"] == report["slice_calibrated"]["nested"]["specificity"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 60
    assert metrics["study_sensitivity"] == top["nested"]["sensitivity"]
    assert metrics["study_specificity"] == top["nested"]["specificity"]
    assert metrics["study_method"] == f"mean of the top {top['k']} slices"
    assert metrics["study_threshold"] == top["threshold"]
    assert metrics["threshold"] == report["slice_calibrated"]["threshold"]
    assert metrics["brier"] == report["slice_calibrated"]["brier_nested"]
    assert "study level (mean of the top" in format_report(metrics)

    # another run of the recipe kept beside it (here the same run twice): what the app and the PDF say it moved by
    from conftest import load_tool

    load_tool("replicates").main([str(path), str(full), str(full), "--write"])
    kept = json.loads(path.read_text())
    assert {k: v for k, v in kept.items() if k != "replicates"} == metrics and len(kept["replicates"]) == 2
    first = kept["replicates"][0]
    assert first["study_specificity"] == metrics["study_specificity"] and first["run"] == str(out)
    assert first["context_auc"] == metrics.get("context_auc")


def test_platt_scaling_makes_scores_behave_like_probabilities():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, 4000)
    labels = (rng.uniform(0, 1, 4000) < truth).astype(int)
    overconfident = 1 / (1 + np.exp(-4 * np.log(truth / (1 - truth))))  # the same ranking, far too sure
    calibration = calibrate.fit_platt(overconfident, labels)
    from sklearn.metrics import brier_score_loss

    from hemo.model import platt

    assert brier_score_loss(labels, platt(overconfident, calibration)) < brier_score_loss(labels, overconfident) - 0.01
    assert calibration["a"] == pytest.approx(0.25, abs=0.05)


def test_study_threshold_keeps_the_promised_sensitivity():
    labels = np.array([1] * 20 + [0] * 20)
    scores = np.concatenate([np.linspace(0.3, 1, 20), np.linspace(0, 0.6, 20)])
    threshold = calibrate.at_sensitivity(labels, scores, 0.95)
    assert calibrate.rates(labels, scores, threshold)["sensitivity"] >= 0.95
    assert calibrate.rates(labels, scores, threshold + 1e-9)["sensitivity"] < 0.95  # the highest such threshold


def test_top_k_mean_is_chosen_on_other_folds_and_ignores_one_outlying_slice():
    rng = np.random.default_rng(1)
    scores, studies_, slice_labels = [], [], []
    for i in range(40):  # bleeds: several moderately high slices; normals: one very high (skull-rim) slice
        bleed = i % 2 == 1
        study = rng.uniform(0.0, 0.2, 30)
        if bleed:
            study[10:16] = rng.uniform(0.5, 0.7, 6)
        else:
            study[rng.integers(30)] = rng.uniform(0.7, 0.95)
        studies_.append({"index": np.arange(30) + 30 * i, "label": int(bleed), "fold": i % 5})
        scores.append(study)
        slice_labels.append(np.isin(np.arange(30), np.arange(10, 16)) & bleed)
    scores, slice_labels = np.concatenate(scores), np.concatenate(slice_labels).astype(int)
    folds = np.repeat(np.arange(40) % 5, 30)
    labels = np.array([s["label"] for s in studies_])
    highest = np.array([scores[s["index"]].max() for s in studies_])
    top, chosen = calibrate.nested_top_k(slice_labels, scores, folds, studies_)
    assert roc_auc_score(labels, highest) < 0.5 and roc_auc_score(labels, top) == 1.0
    assert len(chosen) == 5 and all(k > 1 for k in chosen)
    # nothing of a fold's own patients scores them: its slices' labels (which the calibration is fitted on)
    # changed, its study scores stay; another fold's move (they are calibrated on these labels)
    changed = np.where(folds == 0, 1 - slice_labels, slice_labels)
    again, _ = calibrate.nested_top_k(changed, scores, folds, studies_, [1] * 5)
    before, _ = calibrate.nested_top_k(slice_labels, scores, folds, studies_, [1] * 5)
    in_fold = np.array([s["fold"] for s in studies_]) == 0
    assert np.allclose(again[in_fold], before[in_fold]) and not np.allclose(again[~in_fold], before[~in_fold])


def test_non_dicom_files_group_by_folder(analyzer):
    png = cv2.imencode(".png", np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))[1].tobytes()
    results = [r for folder in ("patient-a", "patient-b") for n in ("2.png", "10.png", "1.png")
               for r in analyzer.analyse(png, n, folder=folder)]
    found = studies(results, analyzer)
    assert len(found) == 2
    assert [r.source for r in found[0].slices] == ["1.png", "2.png", "10.png"]  # natural order of file names


def test_a_slice_given_twice_counts_once_and_its_copy_says_why(analyzer, small_model_path, tmp_path):
    from hemo.study import TWICE, once

    series = [dicom_bytes((head_phantom(128, blob=(50, 40 + 8 * z)) + 1024).astype(np.int16), position=(0, 0, 5.0 * z))
              for z in range(3)]
    results = [r for n, data in enumerate([*series, series[1]]) for r in analyzer.analyse(data, f"{n}.dcm")]
    kept = once(results)
    assert [r.error for r in kept] == [None, None, None, TWICE] and kept[:3] == results[:3]
    assert [len(study.slices) for study in studies(kept, analyzer)] == [3]  # not 4, the middle slice twice
    twin = replace_position(series[1], 7.5)  # the same pixels at another place is another slice
    assert all(r.error is None for r in once(results[:3] + analyzer.analyse(twin, "twin.dcm")))
    for n, data in enumerate(series):  # a folder and a file in it, on the command line
        (tmp_path / "scan" / f"{n}.dcm").parent.mkdir(exist_ok=True)
        (tmp_path / "scan" / f"{n}.dcm").write_bytes(data)
    table = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "scan"), str(tmp_path / "scan" / "1.dcm"), "--model",
                 str(small_model_path), "--csv", str(table)]) == 0
    rows = list(csv.DictReader(open(table)))
    assert [r["slice"] for r in rows] == ["1", "2", "3", ""] and rows[3]["error"] == TWICE


def replace_position(data: bytes, z: float) -> bytes:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    ds.ImagePositionPatient = [0, 0, z]
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_a_series_shorter_than_k_keeps_the_highest_slice():
    from hemo.model import ModelInfo
    from hemo.study import HIGHEST, series_score

    info = ModelInfo(threshold=0.2, study={"score": "top_k_mean", "k": 12, "threshold": 0.3})
    assert min_series(info) == 12 and min_series(ModelInfo()) == MIN_SERIES
    scores = np.linspace(0.05, 0.6, 12)
    assert series_score(scores[:11], scores[:11], None, info)[1:3] == (0.2, HIGHEST)  # 11 slices: no mean of 12
    probability, threshold, method, _ = series_score(scores, scores, None, info)
    assert method == "mean of the top 12 slices" and threshold == 0.3 and probability == pytest.approx(scores.mean())


def test_series_are_numbered_within_their_study_in_order_of_first_appearance():
    from hemo.study import Numbers

    numbered = Numbers()
    keys = [("A", "thick"), ("B", "only"), ("A", "thin"), ("A", "thick"), ("A", "bone")]
    assert [numbered(key) for key in keys] == [(1, 1), (2, 1), (1, 2), (1, 1), (1, 3)]
    assert numbered.several("A") and not numbered.several("B") and not numbered.several("C")


@pytest.mark.skipif(not (ROOT / "models" / "hemo-hybrid.keras").exists(), reason="no shipped model")
def test_the_readme_library_example_runs_on_a_series(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    example = text.split("## The library in a few lines", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "series").mkdir()
    for z in range(3):
        (tmp_path / "series" / f"{z}.dcm").write_bytes(dicom_bytes((head_phantom(256) + 1024).astype(np.int16),
                                                                   position=(0, 0, 5.0 * z)))
    monkeypatch.chdir(tmp_path)  # the example reads "series/"; the shipped model by its default path
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and all(line.startswith(("likely normal", "indicative")) for line in printed[:3])
    assert printed[3].startswith("Study 1 ")  # three slices, then their study's verdict
