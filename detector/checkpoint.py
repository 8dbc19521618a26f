"""A device's stream state as bytes and back, without the model, for the detector's checkpoints.

What is saved is the whole :class:`~detector.stream.DeviceStreams` object (continuity per stream, the
pipeline with its windowers, carried filter states, resting baseline, segmenter and PLM scorer), pickled.
The model is left out: every reference to it becomes a placeholder (pickle's ``persistent_id``) that is
bound again to the model the restarted detector loaded. So a checkpoint is small (about the resting
baseline history: 3600 windows x channels) and the model is never written anywhere.

A checkpoint is only valid for the code and the model that wrote it (a pickle holds the objects' private
fields). :func:`fingerprint` names both; the service discards a checkpoint whose fingerprint differs, and
says so, instead of resuming from state the running code may read differently.

pickle runs code named in the data when it loads, so the state directory must be writable by the detector
only (the service creates it 0700). It is never read from anywhere else.
"""

from __future__ import annotations

import io
import pickle
from importlib import metadata

from .model import Model
from .stream import DeviceStreams

_MODEL = "model"


def fingerprint(model: Model | None) -> str:
    """What a checkpoint depends on: this package's version and the model file's sha256 (or no model)."""
    try:
        version = metadata.version("crampwatch")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        version = "unknown"
    if model is None:  # a service run without a model (tests of the transport): its streams hold no decisions
        return f"crampwatch {version}, no model"
    return f"crampwatch {version}, model {model.card.get('sha256', model.path.name)}"


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, model: Model | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._model = model

    def persistent_id(self, obj: object) -> str | None:
        return _MODEL if obj is not None and obj is self._model else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, model: Model | None) -> None:
        super().__init__(file)
        self._model = model

    def persistent_load(self, pid: object) -> object:
        if pid != _MODEL:
            raise pickle.UnpicklingError(f"unknown reference {pid!r} in a checkpoint")
        return self._model


def dump(device: DeviceStreams) -> bytes:
    """``device`` as bytes; its model is referred to, not copied."""
    buf = io.BytesIO()
    _Pickler(buf, device.model).dump(device)
    return buf.getvalue()


def load(blob: bytes, model: Model | None) -> DeviceStreams:
    """A device saved by :func:`dump`, bound to ``model``."""
    device = _Unpickler(io.BytesIO(blob), model).load()
    if not isinstance(device, DeviceStreams):
        raise pickle.UnpicklingError(f"a checkpoint holds a {type(device).__name__}, not DeviceStreams")
    return device
