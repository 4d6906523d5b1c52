"""DICOM header values read safely: a value that is not what the standard says becomes a :class:`HemoInputError`
naming the field, never a bare ``ValueError``; Enhanced CT's per-frame and shared functional groups looked up alike."""

from __future__ import annotations

import math

import numpy as np
import pydicom

from hemo.errors import HemoInputError


def read_number(value, field: str, name: str) -> float | None:
    """A header value as one finite float; a readable error when it is text, NaN or a list of two."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HemoInputError(f"{name}: the header field {field} is not a number ({str(value)[:20]!r}).") from None
    if not math.isfinite(number):
        raise HemoInputError(f"{name}: the header field {field} is not a finite number ({number}).")
    return number


def read_vector(value, length: int, field: str, name: str) -> np.ndarray | None:
    """A header value as ``length`` finite floats; None when absent or of another length (geometry is optional)."""
    if value is None:
        return None
    try:
        items = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    except TypeError:
        return None
    if len(items) != length:
        return None
    return np.array([read_number(v, field, name) for v in items], dtype=float)


def read_integer(ds: pydicom.Dataset, field: str, name: str, default: int | None = None) -> int:
    """A required whole, non-negative number (Rows, Columns, NumberOfFrames, bits); a readable error otherwise."""
    value = ds.get(field, default)
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        raise HemoInputError(f"{name}: the header field {field} has {len(value)} values where one is expected.")
    number = read_number(value, field, name)
    if number is None or number != int(number) or number < 0:
        raise HemoInputError(f"{name}: the header field {field} is missing or not a whole number.")
    return int(number)


def functional_group(ds: pydicom.Dataset, frame: int, sequence: str) -> pydicom.Dataset | None:
    """An Enhanced-CT functional group for one frame: per-frame first, then shared."""
    for holder, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(holder)
        if groups is not None and len(groups) > index:
            item = groups[index].get(sequence)
            if item is not None and len(item):
                return item[0]
    return None
