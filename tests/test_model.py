import cv2
import keras
import numpy as np
import pytest

from hemo.backbones import FEATURE_LAYER, efficientnet_lite0, load_lite0_imagenet
from hemo.model import ModelInfo, build, load, predict, save, split


@pytest.fixture(scope="module")
def model():
    return build(pretrained="none")


def test_layer_graph_follows_the_paper(model):
    assert model.input.shape == (None, 256, 256, 1)
    assert model.output.shape == (None, 2)
    assert model.get_layer("gray_to_rgb").output.shape == (None, 256, 256, 3)
    assert model.get_layer(FEATURE_LAYER).output.shape == (None, 8, 8, 1280)
    assert model.get_layer("gap").output.shape == (None, 1280)
    assert model.get_layer("pseudo_time_steps").output.shape == (None, 10, 128)
    bilstm = model.get_layer("bilstm")
    assert bilstm.forward_layer.units == 64 and bilstm.forward_layer.return_sequences
    assert bilstm.output.shape == (None, 10, 128)
    mha = model.get_layer("mha")
    assert mha.num_heads == 2
    assert model.get_layer("dense").units == 256 and model.get_layer("dense").activation.__name__ == "relu"
    assert model.get_layer("dropout").rate == 0.4
    assert model.get_layer("probabilities").activation.__name__ == "softmax"
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]) > 30  # backbone is flat


def test_split_matches_whole_model(model):
    x = np.random.default_rng(1).uniform(0, 255, (2, 256, 256, 1)).astype(np.float32)
    backbone, head = split(model)
    probabilities, attention, embedding = head(backbone(x))
    assert embedding.shape == (2, 256)
    assert np.allclose(np.asarray(probabilities), model(x), atol=1e-5)
    assert attention.shape == (2, 2, 10, 10)
    assert np.allclose(np.asarray(attention).sum(-1), 1.0, atol=1e-4)


def test_keras_round_trip_keeps_probabilities_and_attention(model, tmp_path):
    x = np.random.default_rng(2).uniform(0, 255, (3, 256, 256, 1)).astype(np.float32)
    path = save(model, tmp_path / "m.keras", ModelInfo(threshold=0.3, pretrained="none"))
    loaded, info = load(path)
    assert info.threshold == 0.3
    assert np.array_equal(predict(loaded, x), predict(model, x))
    assert np.array_equal(np.asarray(split(loaded)[1](split(loaded)[0](x))[1]),
                          np.asarray(split(model)[1](split(model)[0](x))[1]))
    assert path.stat().st_size < 25 * 2**20  # no optimizer state


def test_a_trained_model_is_saved_without_its_optimizer_state(tmp_path):
    import zipfile

    import h5py

    trained = build(pretrained="none")
    trained.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
    trained.optimizer.build(trained.trainable_variables)  # as after fit: Adam's moments exist
    path = save(trained, tmp_path / "m.keras", ModelInfo(pretrained="none"))
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as weights:
        assert "optimizer" not in h5py.File(weights, "r")
    assert path.stat().st_size < 25 * 2**20


def test_missing_model_file_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m hemo train"):
        load(tmp_path / "none.keras")


def test_lite0_imagenet_conversion_recognises_a_cat():
    data = pytest.importorskip("skimage.data")
    classifier = efficientnet_lite0(keras.Input((224, 224, 3)), include_top=True)
    load_lite0_imagenet(classifier)
    cat = cv2.resize(data.chelsea(), (224, 224)).astype(np.float32)[np.newaxis]
    top5 = np.argsort(classifier.predict(cat, verbose=0)[0])[::-1][:5]
    assert top5[0] in (281, 282, 285)  # tabby, tiger cat, Egyptian cat
    coffee = cv2.resize(data.coffee(), (224, 224)).astype(np.float32)[np.newaxis]
    assert np.argmax(classifier.predict(coffee, verbose=0)[0]) == 967  # espresso
