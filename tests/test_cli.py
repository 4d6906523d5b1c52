import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hemo.cli import main
from hemo.options import version
from conftest import ROOT, dicom_bytes, head_phantom


@pytest.fixture(scope="module")
def class_folders(tmp_path_factory):
    """Eight tiny patients in the paper's folder-per-class layout."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for patient in range(8):
        label = "Hemorrhagic" if patient % 2 else "NORMAL"
        for index in range(2):
            image = np.clip(head_phantom(96) / 4 + 60 + rng.normal(0, 5, (96, 96)), 0, 255).astype(np.uint8)
            path = root / label / f"p{patient}" / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image)
    return root


def test_train_writes_model_history_split_and_metrics(class_folders, small_model_path, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", str(class_folders), "--out", str(out), "--epochs", "1", "--warmup-epochs", "0",
                 "--pretrained", "none", "--batch-size", "8", "--val-fraction", "0.25"])
    assert code == 0
    history = json.loads((out / "history.json").read_text())
    assert {"accuracy", "loss", "val_accuracy", "val_loss", "learning_rate", "val_auc"} <= set(history["history"])
    assert len(history["history"]["loss"]) == 1
    assert {"data", "split", "seed", "backbone", "epochs", "seconds"} <= set(history["run"])
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train"]) & set(split["validation"]) and len(split["validation"]) == 2
    info = json.loads((out / "hemo-hybrid.json").read_text())
    assert 0 <= info["threshold"] <= 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["patients"] == 2
    assert "ROC AUC" in capsys.readouterr().out
    model, result = str(out / "hemo-hybrid.keras"), tmp_path / "evaluated.json"
    assert main(["evaluate", str(class_folders), "--model", model, "--json", str(result)]) == 0
    said = capsys.readouterr().out  # its own training patients are named as such, not taken for new ones
    assert said.startswith("WARNING: 12 of these 16 slices (6 patients) trained this model")
    assert json.loads(result.read_text())["trained_patients"] == 6
    assert main(["evaluate", str(class_folders), "--model", model, "--json", str(result), "--patients",
                 str(out / "split.json"), "--part", "validation"]) == 0
    assert "WARNING" not in capsys.readouterr().out and json.loads(result.read_text())["trained_patients"] == 0
    assert main(["evaluate", str(class_folders), "--model", model, "--json", str(result), "--unseen"]) == 0
    said = capsys.readouterr().out  # the same two patients, found from the model's own record
    assert said.startswith("evaluating the 2 patients none of whose slices trained the model (6 left out)")
    assert "WARNING" not in said and json.loads(result.read_text())["n"] == 4
    assert main(["evaluate", str(class_folders), "--model", str(small_model_path), "--unseen"]) == 2
    assert "does not record what it was trained on" in capsys.readouterr().err  # it cannot tell: it says so


def test_slice_split_warns_that_it_leaks_and_init_continues_a_model(class_folders, small_model_path, tmp_path, capsys):
    main(["train", str(class_folders), "--out", str(tmp_path), "--epochs", "1", "--pretrained", "none",
          "--batch-size", "8", "--split", "slice", "--val-fraction", "0.25", "--init", str(small_model_path)])
    assert "leaks" in capsys.readouterr().out
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["run"]["init"] == str(small_model_path) and history["history"]["stage"] == ["fine-tune"]


def test_evaluate_json_has_stable_keys(class_folders, small_model_path, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(class_folders), "--model", str(small_model_path), "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert {"n", "positives", "accuracy", "auc", "auc_ci", "sensitivity", "specificity", "threshold", "f1",
            "confusion_matrix", "per_class", "patient_auc", "study_auc", "study_sensitivity", "study_specificity",
            "study_threshold", "brier"} <= set(metrics)
    assert metrics["studies"] == 8 and 0 <= metrics["brier"] <= 1
    assert metrics["n"] == 16 and metrics["positives"] == 8


def test_predict_keeps_going_past_bad_files(small_model_path, tmp_path):
    good = tmp_path / "slice.png"
    cv2.imwrite(str(good), np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))
    (tmp_path / "scan.dcm").write_bytes(dicom_bytes((head_phantom(128) + 1024).astype(np.int16)))
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    table, explained = tmp_path / "out.csv", tmp_path / "explained"
    assert main(["predict", str(good), str(tmp_path / "scan.dcm"), str(tmp_path / "broken.png"),
                 "--model", str(small_model_path), "--csv", str(table), "--explain", str(explained),
                 "--method", "gradcam++"]) == 0
    rows = list(csv.DictReader(open(table)))
    assert all(r["file"] == "" for r in rows), "file names are often patient names: only --names writes them"
    assert {r["model"] for r in rows} == {version(small_model_path)}  # a table saved today names what scored it
    assert all(0 <= float(r["probability"]) <= 1 and r["verdict"] != "error" for r in rows[:2])
    assert "not a readable" in rows[2]["error"] and "broken" not in rows[2]["error"] and rows[2]["probability"] == ""
    assert [r["explanation"] for r in rows] == ["00001_f0", "00002_f0", ""]
    assert (explained / "00001_f0_gradcam.png").exists()
    attention = json.loads((explained / "00002_f0_attention.json").read_text())
    assert np.array(attention["attention"]).shape == (2, 10, 10)


def test_predict_shows_a_terminal_aligned_columns_and_a_pipe_the_csv(small_model_path, tmp_path, capsys,
                                                                     monkeypatch):
    for number in range(2):
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    files = [str(tmp_path / name) for name in ("0.png", "1.png", "broken.png")]
    assert main(["predict", *files, "--model", str(small_model_path)]) == 0
    piped = capsys.readouterr().out  # capsys's stdout is no terminal: the CSV, as before
    assert piped.startswith("study,series,slice,file,frame,probability,verdict,threshold")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["predict", *files, "--model", str(small_model_path)]) == 0
    head, first, second, failed, points = capsys.readouterr().out.splitlines()
    assert head.split() == ["study", "slice", "probability", "verdict"]  # no empty or repeated columns
    assert first.split()[:2] == ["1", "1"] and second.split()[:2] == ["1", "2"]
    assert first[head.index("verdict"):].startswith(("likely normal", "indicative of haemorrhage"))  # aligned
    assert failed.split()[:1] == ["error:"] and "not a readable" in failed and "broken" not in failed
    threshold = next(csv.DictReader(piped.splitlines()))["threshold"]
    assert points == f"indicative at or above the slice operating point: {float(threshold):.4f} for a slice alone"


def test_predict_into_a_pipe_closed_early_ends_quietly(small_model_path, tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))
    # `true` leaves before hemo has imported TensorFlow: every write to the table meets a closed pipe
    done = subprocess.run(f"{sys.executable} -m hemo predict {tmp_path / '0.png'} --model {small_model_path} | true",
                          shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr[-2000:]


def test_help_version_and_a_mistyped_path_answer_without_importing_tensorflow():
    """Importing TensorFlow takes seconds: `hemo --help` took 7 s, and a mistyped path 5-9 s to be told so (evaluate's
    way: "no labelled slices found in nosuch/")."""
    code = ("import sys\n"
            "from hemo.cli import main\n"
            "for argv in (['--help'], ['--version'], ['predict', 'nosuch/'], ['predict', '--help'],\n"
            "             ['evaluate', 'nosuch/'], ['train', 'nosuch/', '--out', 'x'],\n"
            "             ['batch', 'nosuch/', '--out', 'x']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('imported:', sorted({'keras', 'tensorflow'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "imported: []" in done.stdout, done.stderr[-2000:]
    assert done.stderr.count("error: no such file or folder: nosuch/") == 4, done.stderr[-2000:]  # not "no labelled..."


def test_predict_stops_at_a_path_that_is_not_there_or_holds_nothing(small_model_path, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "0.png"), np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))
    (tmp_path / "empty").mkdir()
    table = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "0.png"), str(tmp_path / "scna"), "--model", str(small_model_path),
                 "--csv", str(table)]) == 2  # a mistyped folder: not a table with one "error" row and exit 0
    assert f"error: no such file or folder: {tmp_path / 'scna'}" in capsys.readouterr().err and not table.exists()
    assert main(["predict", str(tmp_path / "empty"), "--model", str(small_model_path)]) == 2
    assert f"error: no files to read in {tmp_path / 'empty'}" in capsys.readouterr().err


def test_predict_reads_the_images_of_a_folder_as_one_study_or_with_each_as_cases_of_their_own(small_model_path,
                                                                                               tmp_path):
    folder = tmp_path / "examples"
    folder.mkdir()
    for number in range(3):
        cv2.imwrite(str(folder / f"{number}.png"), np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))
    (folder / "ct.dcm").write_bytes(dicom_bytes((head_phantom(128) + 1024).astype(np.int16)))
    counts = {}
    for each in ([], ["--each"]):
        table = tmp_path / f"studies{len(each)}.csv"
        assert main(["predict", str(folder), "--model", str(small_model_path), "--studies", str(table), *each]) == 0
        counts[bool(each)] = sorted(int(r["slices"]) for r in csv.DictReader(open(table)))
        assert {r["model"] for r in csv.DictReader(open(table))} == {version(small_model_path)}
    assert counts == {False: [1, 3], True: [1, 1, 1, 1]}  # the DICOM keeps its own study either way


def test_predict_says_how_far_a_verdict_reached_slice_by_slice_goes(small_model_path, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(small_model_path.parent, model)
    (model / "evaluation.json").write_text(json.dumps({"n": 1993, "patients": 66, "sensitivity": 0.8167,
                                                       "specificity": 0.8639}))
    for number in range(2):
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.clip(head_phantom(128) / 4 + 60, 0, 255).astype(np.uint8))
    assert main(["predict", str(tmp_path / "0.png"), str(tmp_path / "1.png"),
                 "--model", str(model / small_model_path.name)]) == 0
    err = capsys.readouterr().err
    assert "highest slice: " in err
    assert ("How far to trust a slice's verdict: on 1,993 slices of 66 patients kept out of the training that scored "
            "them, the slice operating point found 82% of the slices with haemorrhage and cleared 86%") in err


@pytest.mark.skipif(not (ROOT / "models" / "hemo-hybrid.keras").exists(), reason="no shipped model")
def test_predict_numbers_slices_in_scan_order_with_their_neighbours_reading_as_the_app_and_reports_do(tmp_path,
                                                                                                      capsys):
    from hemo.model import read_info
    from hemo.study import min_series
    from hemo.trust import study_trust

    model = ROOT / "models" / "hemo-hybrid.keras"
    info, count = read_info(model), min_series(read_info(model))  # a series the model reads with neighbours
    for k in range(count):  # the names run against the scan axis, as exports may name them
        image = (head_phantom(128, (40 + 4 * k, 70)) + 1024).astype(np.int16)
        (tmp_path / f"IM{k:02d}.dcm").write_bytes(dicom_bytes(image, position=(0, 0, 5.0 * (count - k))))
    (tmp_path / "IM99.dcm").write_bytes(b"no header")
    table, verdicts = tmp_path / "out.csv", tmp_path.parent / f"{tmp_path.name}-studies.csv"
    assert main(["predict", str(tmp_path), "--model", str(model), "--csv", str(table), "--names",
                 "--explain", str(tmp_path / "explained"), "--studies", str(verdicts)]) == 0
    rows = list(csv.DictReader(open(table)))
    expected = [(f"IM{k:02d}.dcm", str(count - k), f"{k + 1:05d}_f0") for k in reversed(range(count))]
    assert [(Path(r["file"]).name, r["slice"], r["explanation"]) for r in rows] == [*expected, ("IM99.dcm", "", "")]
    read = [float(r["probability_with_neighbours"]) for r in rows[:-1]]  # slice 1 is the lowest, as in the PDF
    assert all(0 <= p <= 1 for p in read) and read != [float(r["probability"]) for r in rows[:-1]]
    assert {r["threshold_with_neighbours"] for r in rows[:-1]} == {str(round(info.context["threshold"], 4))}
    assert rows[-1]["probability_with_neighbours"] == rows[-1]["threshold_with_neighbours"] == ""
    [study] = list(csv.DictReader(open(verdicts)))  # the verdict, and how it relates to the rows above
    top = max(rows[:-1], key=lambda r: float(r["probability"]))
    assert (study["slices"], study["highest_slice"], study["highest_probability"]) == (
        str(count), top["slice"], top["probability"])
    above = sum(float(r["probability_with_neighbours"]) >= float(r["threshold_with_neighbours"]) for r in rows[:-1])
    assert study["slices_above_with_neighbours"] == str(above) and study["rule"]
    assert study["verdict"] == ("indicative of haemorrhage" if float(study["probability"]) >= float(
        study["threshold"]) else "likely normal")
    said = study_trust(json.loads((ROOT / "models" / "evaluation.json").read_text()), study["rule"])
    assert said and f"  {said}\n" in capsys.readouterr().err  # how far the verdict goes, as the app says it


def test_an_interrupted_predict_keeps_the_rows_of_the_files_it_finished(small_model_path, tmp_path, monkeypatch):
    from hemo.analysis import Analyzer
    from hemo.inputs import AT_ONCE as at_once  # files analysed together
    for k in range(at_once + 4):
        (tmp_path / f"IM{k:02d}.dcm").write_bytes(dicom_bytes((head_phantom(128) + 1024).astype(np.int16),
                                                              position=(0, 0, 5.0 * k)))
    original, calls = Analyzer.analyse_each, []

    def stopped(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second group of files is read
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Analyzer, "analyse_each", stopped)
    table = tmp_path.parent / f"{tmp_path.name}.csv"
    with pytest.raises(KeyboardInterrupt):
        main(["predict", str(tmp_path), "--model", str(small_model_path), "--csv", str(table)])
    rows = list(csv.DictReader(open(table)))
    assert [(r["study"], r["slice"]) for r in rows] == [("1", "")] * at_once  # numbered in scan order at the end
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)


def test_files_are_analysed_together_and_handed_on_in_order(small_model_path, tmp_path, monkeypatch):
    from hemo.analysis import Analyzer
    from hemo.inputs import results_of

    paths = []
    for k in range(5):
        paths.append(tmp_path / f"{k}.dcm")
        paths[-1].write_bytes(dicom_bytes((head_phantom(128) + 1024).astype(np.int16), position=(0, 0, 5.0 * k)))
    (tmp_path / "bad.dcm").write_bytes(b"no header")
    paths.insert(2, tmp_path / "bad.dcm")
    analyzer, batches = Analyzer.load(small_model_path), []
    original = Analyzer._explain_batch
    monkeypatch.setattr(Analyzer, "_explain_batch", lambda self, chunk, *a: batches.append(len(chunk))
                        or original(self, chunk, *a))
    found = list(results_of(paths, analyzer, at_once=3))
    assert [(n, p.name, r.analysed) for n, p, _, r in found] == [
        (n, p.name, p.name != "bad.dcm") for n, p in enumerate(paths, 1)]
    assert batches == [2, 3]  # the readable files of each group of three entries, explained together
    steps = {"reading": [], "progress": []}
    analyzer.analyse_each([(p.name, p.read_bytes(), "") for p in paths], reading=lambda *a: steps["reading"].append(a),
                          progress=lambda *a: steps["progress"].append(a))
    assert steps["reading"] == [(k, 6) for k in range(1, 7)] and steps["progress"][-1] == (5, 5)  # files, then slices
    alone = [r.probability for p in paths if p.name != "bad.dcm" for r in analyzer.analyse(p.read_bytes(), p.name)]
    assert np.allclose([r.probability for *_, r in found if r.analysed], alone, atol=1e-5)  # as file by file


def test_explain_check_measures_grad_cam_against_the_annotations(small_model_path, tmp_path, capsys):
    from conftest import ct_ich_folder, trained_on
    from hemo import datasets

    table, data = tmp_path / "check.csv", ct_ich_folder(tmp_path / "data", patients=2, slices=5)
    assert main(["explain-check", str(data), "--model", str(small_model_path), "--csv", str(table)]) == 0
    with open(table) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3  # the annotated slices of the one patient with a bleed
    assert all(0 <= float(r["energy_inside"]) <= 1 and 0 < float(r["mask_fraction"]) < 1 for r in rows)
    assert "WARNING" not in capsys.readouterr().out
    model = trained_on(small_model_path, tmp_path / "model", datasets.load(data).images)  # had it learnt from them
    assert main(["explain-check", str(data), "--model", str(model), "--csv", str(table)]) == 0
    assert "WARNING: 3 of these 3 annotated slices trained this model" in capsys.readouterr().out


def test_label_smoothing_reaches_the_training_config():
    import argparse

    from hemo.cli import _config, _training_options

    parser = argparse.ArgumentParser()
    _training_options(parser)
    assert _config(parser.parse_args(["data"])).label_smoothing == 0.1  # the shipped recipe's
    assert _config(parser.parse_args(["data", "--label-smoothing", "0"])).label_smoothing == 0.0


def test_focal_flag_makes_the_head_loss_focal():
    import argparse

    import numpy as np

    from hemo.cli import _config, _training_options
    from hemo.train import _classification

    parser = argparse.ArgumentParser()
    _training_options(parser)
    plain = _classification(_config(parser.parse_args(["data"])))
    focal = _classification(_config(parser.parse_args(["data", "--focal", "2", "--label-smoothing", "0"])))
    target = np.array([[0.0, 1.0], [0.0, 1.0]], dtype="float32")
    easy, hard = np.array([[0.05, 0.95]], dtype="float32"), np.array([[0.6, 0.4]], dtype="float32")
    ratio = lambda loss: float(loss(target[:1], hard)) / float(loss(target[:1], easy))  # noqa: E731
    assert ratio(focal) > 3 * ratio(plain)  # the hard slice weighs far more against the easy one
    with pytest.raises(SystemExit, match="label-smoothing 0"):
        _config(parser.parse_args(["data", "--focal", "2"]))
