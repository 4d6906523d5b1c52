"""Training on several devices of one host with ``tf.distribute`` (``hemo train --distribute mirrored``).

Synchronous data parallelism: every replica holds the whole model, each step splits the global
batch (``--batch-size``) across replicas, and the gradients are summed across replicas of a loss
that Keras already divides by the number of replicas, so one step is the same update as one step
on one device with the same global batch. When adding devices, raise ``--batch-size`` to keep each
replica busy and scale ``--lr`` with it (linear scaling); nothing is rescaled behind your back.

- ``mirrored``: all GPUs of this host (``tf.distribute.MirroredStrategy``), or its CPU when it has
  none; ``split_cpu`` (``--cpu-devices``) splits the CPU into N logical devices to try the same path on a laptop.

Several hosts are not offered: Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy`` (it
hands a per-replica value to a tensor conversion; keras-team/keras#20585, tried here with two workers
on one host). Only the TensorFlow backend distributes this way; the training code stays plain Keras.
"""

from __future__ import annotations

import contextlib
from typing import Any

CHOICES = ("mirrored",)


def split_cpu(count: int) -> None:
    """Present the host CPU as ``count`` logical devices (must run before TensorFlow starts computing)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:  # TensorFlow already started: its devices are fixed for this process
        raise RuntimeError(f"cannot split the CPU into {count} devices after TensorFlow has started") from error


def strategy(name: str | None) -> Any:
    """The ``tf.distribute`` strategy for ``name``; None for plain single-device training."""
    if name is None:
        return None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"--distribute needs the TensorFlow backend (KERAS_BACKEND is '{keras.backend.backend()}')")
    import tensorflow as tf

    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"unknown --distribute '{name}': use one of {', '.join(CHOICES)}")


def scope(chosen: Any) -> contextlib.AbstractContextManager:
    """Enter ``chosen``'s scope (variables, optimizer and compile must be created inside it)."""
    return chosen.scope() if chosen is not None else contextlib.nullcontext()


def replicas(chosen: Any) -> int:
    return 1 if chosen is None else int(chosen.num_replicas_in_sync)
