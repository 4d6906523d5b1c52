import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from hemo import plots
from hemo.explain import Explainer, overlay
from hemo.imaging import prepare, window
from hemo.model import build
from hemo.train import _set_backbone_trainable
from conftest import dicom_bytes, head_phantom, load_tool


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list]:
    """Half the slices carry a bright bleed-like blob at a random place inside the head."""
    images, labels, centres = [], [], []
    for i in range(n):
        blob = (int(rng.integers(90, 166)), int(rng.integers(80, 176))) if i % 2 else None
        hu = head_phantom(256, blob)
        hu[hu == 75.0] = 400.0 if blob else hu[hu == 75.0]
        images.append(prepare(window(hu, 40, 80), crop=False))
        labels.append(i % 2)
        centres.append(blob)
    return np.stack(images)[..., np.newaxis], np.array(labels), centres


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y, _ = synthetic(64, rng)
    model = build()
    _set_backbone_trainable(model, False)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    model.fit(x, np.eye(2)[y], batch_size=16, epochs=4, verbose=0)
    return model


def test_gradcam_lands_on_the_blob(trained):
    x, y, centres = synthetic(8, np.random.default_rng(5))
    explainer = Explainer(trained)
    results = explainer.explain(x)
    yy, xx = np.mgrid[:256, :256]
    for explanation, label, centre in zip(results, y, centres):
        assert explanation.cam.shape == (256, 256) and 0 <= explanation.cam.min() and explanation.cam.max() <= 1
        assert explanation.attention.shape == (2, 10, 10)
        if not label:
            continue
        assert explanation.probability > 0.5
        near = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < 40**2
        peak = np.unravel_index(np.argmax(explanation.cam), explanation.cam.shape)
        assert near[peak], f"Grad-CAM peak {peak} is far from the blob at {centre}"
        assert explanation.cam[near].mean() > 2 * explanation.cam[~near].mean()


def test_gradcam_plus_plus_and_batches_agree(trained):
    x, y, centres = synthetic(4, np.random.default_rng(7))
    explainer = Explainer(trained)
    one_by_one = [explainer.explain(x[i : i + 1])[0].probability for i in range(4)]
    together = explainer.explain(x, "gradcam++")
    assert np.allclose(one_by_one, [e.probability for e in together], atol=1e-5)
    yy, xx = np.mgrid[:256, :256]
    for explanation, label, centre in zip(together, y, centres):
        if label:  # the Grad-CAM++ map itself must point at the bleed, not only exist
            near = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < 40**2
            assert near[np.unravel_index(np.argmax(explanation.cam), explanation.cam.shape)]
            assert explanation.cam[near].mean() > 2 * explanation.cam[~near].mean()
    with pytest.raises(ValueError, match="unknown method"):
        explainer.explain(x, "saliency")


def test_overlay_is_rgb():
    picture = overlay(np.full((256, 256), 100, np.float32), np.zeros((256, 256), np.float32), 0.5)
    assert picture.shape == (256, 256, 3) and picture.dtype == np.uint8


def test_gradcam_of_shipped_model_favours_annotated_bleeds(shared_data):
    """On the 22 CT-ICH slices with bleed masks, Grad-CAM is stronger inside the bleed than outside.

    These slices come from the training and validation patients, so this checks the explanation,
    not the model's accuracy (the numbers in BENCHMARKS.md come from the same tool).
    """
    from conftest import ROOT
    from hemo.analysis import Analyzer

    model = ROOT / "models" / "hemo-hybrid.keras"
    if not model.exists():
        pytest.skip("no shipped model")
    found = load_tool("raw_hu_check").check(shared_data / "dicom" / "ct-ich-hu", Analyzer.load(model))
    assert found["slices"] == 22
    assert found["median_ratio"] > 1.3


def test_the_raw_hu_check_runs_nothing_on_import_and_reads_a_folder_of_slices_with_masks(tmp_path, analyzer, capsys,
                                                                                          monkeypatch):
    tool = load_tool("raw_hu_check")
    assert capsys.readouterr().out == ""  # a module, not a script that loads the shipped model when imported
    folder = tmp_path / "dicom" / "ct-ich-hu"
    for part in ("images", "masks"):
        (folder / part).mkdir(parents=True)
    for name, blob in (("049_12.dcm", (60, 70)), ("050_9.dcm", (50, 45))):
        hu = head_phantom(128, blob)
        (folder / "images" / name).write_bytes(dicom_bytes(hu, modality="OT", slope=None))
        (folder / "masks" / name).write_bytes(dicom_bytes((hu == 75.0).astype(float), modality="OT", slope=None))
    monkeypatch.setattr(analyzer.info, "input_window", [40.0, 120.0])  # as the shipped model's metadata has it
    found = tool.check(folder, analyzer)
    assert found["slices"] == 2 and 0 <= found["called"] <= 2 and found["median_ratio"] > 0
    with pytest.raises(SystemExit, match="no .dcm slices"):  # a wrong folder says so instead of printing NaNs
        tool.main([str(tmp_path / "elsewhere")])


def test_attention_is_drawn_on_one_fixed_scale_all_panels_the_same_way_up():

    rng = np.random.default_rng(0)
    figures = []
    for spread in (0.001, 0.05):
        weights = np.abs(0.1 + rng.normal(0, spread, (2, 10, 10)))
        figures.append(plots.attention(weights / weights.sum(-1, keepdims=True)))
    ranges = {(f.layout.coloraxis.cmin, f.layout.coloraxis.cmax) for f in figures}
    assert ranges == {(-plots.ATTENTION_RANGE, plots.ATTENTION_RANGE)}
    for figure in figures:
        axes = [figure.layout[name] for name in figure.layout if name.startswith("yaxis")]
        assert len(axes) == 3 and all(axis.autorange == "reversed" for axis in axes)
    uniform = plots.attention_summary(np.full((2, 10, 10), 0.1))
    assert uniform["distance_from_uniform"] == pytest.approx(0) and uniform["entropy"] == pytest.approx(1)



def test_figures_import_without_keras_and_name_what_the_evaluation_names():
    """A report or dashboard that only draws must not wait seconds for Keras (the constants come from the data)."""
    code = "import sys, hemo.plots; print('keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
    metrics = {"confusion_matrix": [[5, 1], [0, 2]], "threshold": 0.1,
               "per_class": {"normal": {}, "haemorrhage": {}}}
    assert list(plots.confusion(metrics).data[0].x) == ["normal", "haemorrhage"]
    figure = plots.attention(np.full((2, 4, 4), 0.25))
    assert list(figure.data[0].x) == [1, 2, 3, 4] and np.allclose(figure.data[0].z, 0)


def test_close_thresholds_on_the_series_curve_are_named_in_the_legend_not_on_each_other():
    figure = plots.series([0.0, 5.0, 10.0], [0.1, 0.6, 0.2], 0.118, ["a", "b", "c"],
                          refined=[0.2, 0.5, 0.3], refined_threshold=0.109)
    assert not figure.layout.annotations and not figure.layout.shapes  # no labels drawn on the lines
    lines = {trace.name: trace.y for trace in figure.data if trace.name.startswith(("slice threshold", "threshold"))}
    assert lines == {"slice threshold 0.118": (0.118, 0.118), "threshold with neighbours 0.109": (0.109, 0.109)}
    assert figure.layout.showlegend is not False
    curve, line = figure.data[0], figure.data[1]
    assert plots.clicked_slice([{"curve_number": 1, "point_index": 0}, {"curve_number": 0, "point_index": 1,
                                "customdata": curve.customdata[1]}]) == 2  # a click on the line is not slice 1
    assert line.customdata is None and plots.clicked_slice([{"curve_number": 1, "point_index": 1}]) is None

def test_low_score_overlay_shows_little_colour(analyzer):
    from conftest import dicom_bytes

    [result] = analyzer.analyse(dicom_bytes((head_phantom(128) + 1024).astype(np.int16)), "a.dcm")
    result.cam = np.ones((256, 256), np.float16)
    plain = np.repeat(np.clip(result.slice.shown, 0, 255).astype(np.uint8)[..., None], 3, axis=2).astype(int)
    result.probability = 0.02
    faint = np.abs(result.overlay(1.0).astype(int) - plain).mean()
    result.probability = 0.98
    strong = np.abs(result.overlay(1.0).astype(int) - plain).mean()
    assert faint < 0.25 * strong  # the same map at a low score barely colours the slice


def test_overlap_and_faithfulness_on_the_synthetic_blob(trained):
    from hemo.annotation import faithfulness, overlap

    x, y, centres = synthetic(6, np.random.default_rng(11))
    explainer = Explainer(trained)
    cams = np.stack([e.cam for e in explainer.explain(x)])
    yy, xx = np.mgrid[:256, :256]
    for cam, label, centre in zip(cams, y, centres):
        if label:
            mask = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < (256 // 12) ** 2
            found = overlap(cam, mask)
            assert found.energy_inside > 2 * found.mask_fraction  # the 8x8 map is coarse: no peak test here
    salient, random = faithfulness(explainer.predict, x[y == 1], cams[y == 1])
    assert np.median(salient) > np.median(random)  # hiding what the map shows costs more than hiding elsewhere


@pytest.fixture(scope="module")
def hybrid():
    """The paper's model with an untrained bleed decoder whose map varies from cell to cell."""
    from hemo.bleed import with_decoder

    keras.utils.set_random_seed(3)
    return with_decoder(build(pretrained="none"))


def test_the_saved_decoder_draws_the_map_the_trained_hybrid_draws(hybrid):
    """At inference the backbone runs once and the decoder reads its stages: the same map as training's."""
    from hemo.bleed import decoder, stages

    x, _, _ = synthetic(4, np.random.default_rng(1))
    reference = hybrid.predict(x, verbose=0)["bleed"]
    alone = decoder(hybrid)(keras.Model(hybrid.input, stages(hybrid))(x))
    assert reference.shape == (4, 32, 32, 1) and reference.std() > 1e-3
    np.testing.assert_allclose(np.asarray(alone), reference, atol=1e-5)


def test_a_finer_decoder_is_saved_read_back_and_drawn_at_its_own_size(tmp_path):
    """A 64 x 64 decoder reads one more backbone stage; the analyzer feeds it that stage and shows its map."""
    import cv2

    from hemo.analysis import Analyzer
    from hemo.bleed import decoder, map_size, stages, with_decoder
    from hemo.imaging import stack
    from hemo.train import Fitted, TrainConfig, save_trained

    keras.utils.set_random_seed(3)
    fine = with_decoder(build(pretrained="none"), 64)
    x, _, _ = synthetic(2, np.random.default_rng(1))
    alone = decoder(fine)
    assert map_size(fine) == map_size(alone) == 64 and len(alone.inputs) == 4
    with pytest.raises(ValueError, match="no bleed decoder"):
        map_size(keras.Model(fine.input, fine.output["probabilities"]))
    np.testing.assert_allclose(np.asarray(alone(keras.Model(fine.input, stages(fine, 64))(x))),
                               fine.predict(x, verbose=0)["bleed"], atol=1e-5)
    path = tmp_path / "hemo-hybrid.keras"
    save_trained(Fitted(keras.Model(fine.input, fine.output["probabilities"]), {}, fine), path,
                 TrainConfig(pretrained="none", map_size=64), 0.5)
    image = cv2.imencode(".png", window(head_phantom(256, (120, 140)), 40, 80).astype(np.uint8))[1].tobytes()
    result = Analyzer.load(path).analyse(image, "slice.png")[0]
    expected = 1 / (1 + np.exp(-fine.predict(stack([result.slice]), verbose=0)["bleed"][0, ..., 0]))
    assert result.bleed.shape == (64, 64)
    np.testing.assert_allclose(result.bleed.astype(np.float32), expected, atol=2e-3)


def test_an_analyzer_with_a_decoder_shows_its_bleed_map_on_a_fixed_scale(hybrid, tmp_path, analyzer):
    import cv2

    from hemo.analysis import Analyzer
    from hemo.imaging import stack
    from hemo.train import Fitted, TrainConfig, save_trained

    path = tmp_path / "hemo-hybrid.keras"
    save_trained(Fitted(keras.Model(hybrid.input, hybrid.output["probabilities"]), {}, hybrid), path,
                 TrainConfig(pretrained="none"), 0.5)
    image = cv2.imencode(".png", window(head_phantom(256, (120, 140)), 40, 80).astype(np.uint8))[1].tobytes()
    result = Analyzer.load(path).analyse(image, "slice.png")[0]
    expected = 1 / (1 + np.exp(-hybrid.predict(stack([result.slice]), verbose=0)["bleed"][0, ..., 0]))
    np.testing.assert_allclose(result.bleed.astype(np.float32), expected, atol=2e-3)  # read back from disk
    assert result.bleed_overlay().shape == (*result.slice.shown.shape[:2], 3)
    assert result.bleed_map().max() == pytest.approx(float(expected.max()), abs=0.02)  # its own scale, not stretched
    assert result.light().bleed is None
    written = result.write(tmp_path / "explain", "slice")
    assert sorted(p.name for p in written) == ["slice_attention.json", "slice_bleed.png", "slice_gradcam.png"]
    assert analyzer.analyse(image, "slice.png")[0].bleed is None  # a model without a decoder shows no map
