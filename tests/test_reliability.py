"""Every real-world file, every user at once: the hostile corpus, twins, threads, privacy, code-read fixes."""

from __future__ import annotations

import csv
import json
import threading

import keras
import numpy as np
import pytest

import corpus
from conftest import dicom_bytes
from hemo.analysis import NOT_ANALYSED, Analyzer, SliceResult
from hemo.cli import main


@pytest.fixture(scope="module")
def hostile():
    return corpus.hostile()


def _outcome(results: list[SliceResult]) -> str:
    if any(r.error for r in results):
        return "error"
    return "warn" if any(r.warnings for r in results) else "ok"


def test_corpus_is_big_enough(hostile):
    assert len(hostile) >= 30


def test_hostile_corpus_through_the_library(analyzer, hostile):
    alone = {name: analyzer.analyse(data, name)[0].probability for name, data in corpus.good()}
    files = [(name, data) for name, data, _ in hostile] + corpus.good()
    results = analyzer.analyse_files(files)
    by_name: dict[str, list[SliceResult]] = {}
    for result in results:
        by_name.setdefault(result.source, []).append(result)
    for name, _, expected in hostile:
        got = _outcome(by_name[name])
        assert got == expected or (expected == "ok" and got == "warn"), f"{name}: expected {expected}, got {got}"
        for result in by_name[name]:
            if result.error:
                assert result.error.startswith(name) and "Traceback" not in result.error
            else:
                assert np.isfinite(result.probability)
    for name, probability in alone.items():
        assert by_name[name][0].probability == pytest.approx(probability, abs=1e-6)


def test_hostile_corpus_through_the_cli(small_model_path, hostile, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, (name, data, _) in enumerate(hostile):
        (folder / f"{index:02d}-{name}").write_bytes(data)
    for name, data in corpus.good():
        (folder / name).write_bytes(data)
    (folder / "IM000001").write_bytes(corpus.good()[0][1])  # a PACS export without an extension
    out = tmp_path / "results.csv"
    assert main(["predict", str(folder), "--model", str(small_model_path), "--csv", str(out), "--names"]) == 0
    rows = list(csv.DictReader(out.open()))
    files = {r["file"].rsplit("/", 1)[-1] for r in rows}
    assert len(files) == len(hostile) + 3
    scored = {r["file"].rsplit("/", 1)[-1]: r for r in rows if r["probability"]}
    assert {"good.dcm", "good.png", "IM000001"} <= set(scored)
    assert scored["IM000001"]["probability"] == scored["good.dcm"]["probability"]
    errors = [r for r in rows if r["verdict"] == "error"]
    assert len(errors) >= sum(1 for *_, e in hostile if e == "error")
    assert all(r["error"] and "Traceback" not in r["error"] for r in errors)
    assert all(r["error"].startswith(r["file"].rsplit("/", 1)[-1]) for r in errors), "--names: errors name their file"


@pytest.mark.parametrize("twin", ["rle", "jpeg-ls", "jpeg2000", "jpeg-lossless", "deflate", "enhanced", "png16"])
def test_twins_score_like_the_plain_file(analyzer, twin):
    twins = corpus.twins()
    [plain] = analyzer.analyse(twins["plain"], "plain.dcm")
    name = "twin.png" if twin == "png16" else "twin.dcm"
    [other] = analyzer.analyse(twins[twin], name)
    assert other.error is None, other.error
    assert other.probability == pytest.approx(plain.probability, abs=1e-3)
    assert np.abs(other.slice.pixels - plain.slice.pixels).max() < 1.0


def test_enhanced_ct_reads_rescale_and_position_per_frame(analyzer):
    frames = [corpus.stored_head(128, blob) for blob in ((50, 70), (60, 60), (70, 50))]
    enhanced = analyzer.analyse(corpus.enhanced_ct(frames, [10.0, 0.0, 5.0]), "enhanced.dcm")
    singles = [analyzer.analyse(dicom_bytes(f, position=(0, 0, z)), f"{z}.dcm")[0]
               for f, z in zip(frames, [10.0, 0.0, 5.0])]
    assert [r.position for r in enhanced] == [10.0, 0.0, 5.0]
    for frame, single in zip(enhanced, singles):
        assert frame.probability == pytest.approx(single.probability, abs=1e-3)


def _run_threads(analyzer: Analyzer, files: list[tuple[str, bytes]]) -> list[float]:
    results: dict[int, float] = {}
    errors: list[BaseException] = []

    def work(index: int, name: str, data: bytes) -> None:
        try:
            [result] = analyzer.analyse(data, name)
            assert result.error is None, result.error
            results[index] = result.probability
        except BaseException as error:  # noqa: BLE001 - collected and re-raised below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i, n, d)) for i, (n, d) in enumerate(files)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return [results[i] for i in range(len(files))]


def test_four_threads_on_a_freshly_loaded_analyzer_twice(small_model_path):
    files = [(f"{i}.dcm", dicom_bytes(corpus.stored_head(128, (40 + 10 * i, 70)))) for i in range(4)]
    sequential = [Analyzer.load(small_model_path).analyse(d, n)[0].probability for n, d in files]
    for _ in range(2):
        concurrent = _run_threads(Analyzer.load(small_model_path), files)
        assert np.allclose(concurrent, sequential, atol=1e-6)


def test_a_failed_batch_never_breaks_the_analyzer(analyzer, monkeypatch):
    data = corpus.good()[0][1]
    expected = analyzer.analyse(data, "a.dcm")[0].probability
    original, calls = analyzer.explainer.explain, []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated failure inside TensorFlow")
        return original(*args, **kwargs)

    monkeypatch.setattr(analyzer.explainer, "explain", failing_once)
    [retried] = analyzer.analyse(data, "a.dcm")  # the batch fails, the one-by-one retry succeeds
    assert retried.probability == pytest.approx(expected, abs=1e-6)
    monkeypatch.setattr(analyzer.explainer, "explain", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    [failed] = analyzer.analyse(data, "a.dcm")
    assert failed.error and "could not be analysed" in failed.error
    monkeypatch.setattr(analyzer.explainer, "explain", original)
    assert analyzer.analyse(data, "a.dcm")[0].probability == pytest.approx(expected, abs=1e-6)


def test_no_nan_anywhere(analyzer, tmp_path):
    [result] = analyzer.analyse(corpus.good()[0][1], "good.dcm")
    written = result.write(tmp_path, "x")
    json.loads(written[1].read_text())  # allow_nan=False would have raised
    never = SliceResult("never.dcm")
    assert never.verdict == NOT_ANALYSED


def test_explanations_are_unique_never_overwritten_and_csv_is_inert(small_model_path, tmp_path):
    png = corpus.good()[1][1]
    for patient in ("049", "050"):
        (tmp_path / patient / "brain").mkdir(parents=True)
        (tmp_path / patient / "brain" / "1.png").write_bytes(png)
    (tmp_path / "050" / "brain" / "=HYPERLINK(evil).png").write_bytes(png)
    out, explain = tmp_path / "r.csv", tmp_path / "explain"
    assert main(["predict", str(tmp_path / "049"), str(tmp_path / "050"), "--model", str(small_model_path),
                 "--csv", str(out), "--explain", str(explain), "--names"]) == 0
    rows = list(csv.DictReader(out.open()))
    stems = [r["explanation"] for r in rows]
    assert len(set(stems)) == 3 and len(list(explain.glob("*_gradcam.png"))) == 3
    assert any("HYPERLINK" in r["file"] for r in rows) and not any(r["file"].startswith("=") for r in rows)
    assert main(["predict", str(tmp_path / "049"), "--model", str(small_model_path), "--explain", str(explain)]) == 2
    assert len(list(explain.glob("*_gradcam.png"))) == 3


def test_a_file_named_like_a_formula_stays_text_in_the_table():
    from hemo.table import row

    name = "=HYPERLINK(evil).png"
    broken = SliceResult(name, error=f"{name}: cannot be opened (Permission denied).")
    shown, hidden = row(broken, None, None, None, name), row(broken, None, None, None, "")
    assert shown["file"] == "'" + name and shown["error"].startswith("'=")
    assert hidden["file"] == "" and "HYPERLINK" not in hidden["error"]


def test_cli_prints_one_verdict_per_study(small_model_path, tmp_path, capsys):
    for study in range(2):
        for z in range(3):
            (tmp_path / f"s{study}_{z}").write_bytes(dicom_bytes(corpus.stored_head(128), position=(0, 0, z),
                                                                 study=f"1.2.3.{study}"))
    assert main(["predict", str(tmp_path), "--model", str(small_model_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("3 slices") == 2 and "study 1:" in err and "study 2:" in err


def test_cli_numbers_the_series_of_one_study_within_it(small_model_path, tmp_path, capsys):
    for name, study, series in (("a", "1.2.3.0", "1.2.3.0.1"), ("b", "1.2.3.0", "1.2.3.0.2"), ("c", "1.2.3.9", None)):
        for z in range(3):  # a thick and a thin series of one patient, then another patient
            (tmp_path / f"{name}_{z}").write_bytes(dicom_bytes(corpus.stored_head(128), position=(0, 0, z),
                                                               study=study, series=series))
    table = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path), "--model", str(small_model_path), "--csv", str(table)]) == 0
    err = capsys.readouterr().err
    assert "study 1 · series 1: 3 slices" in err and "study 1 · series 2: 3 slices" in err
    assert "study 2: 3 slices" in err  # a study of one series is not numbered by series
    with open(table) as f:
        rows = [(r["study"], r["series"], r["slice"]) for r in csv.DictReader(f)]
    assert rows == [(s, r, str(k)) for s, r in (("1", "1"), ("1", "2"), ("2", "1")) for k in (1, 2, 3)]


def test_missing_metadata_is_refused(small_model_path, tmp_path):
    from hemo.model import load

    (tmp_path / "m.keras").write_bytes(small_model_path.read_bytes())
    with pytest.raises(FileNotFoundError, match="m.json is missing"):
        load(tmp_path / "m.keras")


def test_save_keeps_a_backbone_that_differs_from_a_fresh_build(monkeypatch, tmp_path):
    """B0 with ImageNet weights carries an extra input rescaling that a rebuild without weights lacks."""
    from hemo import backbones
    from hemo.model import ModelInfo, build, load, predict, save

    def b0(input_tensor, include_top=False, imagenet=False):
        x = keras.layers.Rescaling(0.5, name="imagenet_rescaling")(input_tensor) if imagenet else input_tensor
        return keras.applications.EfficientNetB0(include_top=include_top, weights=None, input_tensor=x)

    monkeypatch.setattr(backbones, "efficientnet_b0", b0)
    model = build("efficientnet_b0", "imagenet")
    x = np.random.default_rng(0).uniform(0, 255, (2, 256, 256, 1)).astype(np.float32)
    loaded, _ = load(save(model, tmp_path / "b0.keras", ModelInfo("efficientnet_b0", "imagenet")))
    assert np.allclose(predict(loaded, x), predict(model, x), atol=1e-6)


def test_patient_bootstrap_accepts_a_python_list():
    from hemo.evaluate import bootstrap_auc

    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 20)
    scores = labels + rng.normal(0, 0.8, 40)
    patients = [f"p{i // 4}" for i in range(40)]
    low, high = bootstrap_auc(labels, scores, patients, n=200)
    assert np.isfinite(low) and np.isfinite(high) and low < high
    assert (low, high) == bootstrap_auc(labels, scores, np.array(patients), n=200)


def test_streamlit_clear_session_is_skipped_but_others_still_clear():
    from hemo.app.resources import keep_tensorflow_kernels

    original = keras.backend.clear_session
    calls = []
    keras.backend.clear_session = lambda *a, **k: calls.append("cleared")
    try:
        keep_tensorflow_kernels()
        exec("import keras\nkeras.backend.clear_session()", {"__name__": "streamlit.runtime.scriptrunner"})
        assert calls == []
        keras.backend.clear_session()
        assert calls == ["cleared"]
    finally:
        keras.backend.clear_session = original
