"""Lab Streaming Layer (LSL) streams as a source: any LSL EMG/ACC stream into the CrampWatch pipeline.

Why: lab amplifiers (Delsys, BrainProducts, OpenBCI, Shimmer ...) publish on LSL, so a study can run the
live detector on them without a driver of ours. pylsl bundles liblsl; streams are found by name on the
local network.

* Channels are chosen by their LSL meta-data units (``desc/channels/channel/unit``, e.g. ``microvolts``,
  ``g``), with the same rules as for files (:mod:`crampwatch.formats.columns`): EMG from one stream,
  three ACC axes from one stream (the EMG stream itself or ``acc_stream``). A stream without units, with
  an irregular rate (0 Hz) or a string format is refused with the reason.
* Samples are converted to µV and g and sent as float64 frames of ``frame_s`` seconds. Device time is
  sample-count based at the nominal rate (as for our wearables): the first EMG sample's LSL time stamp,
  mapped to the wall clock, plus ``n / rate``; ACC starts at its own first time stamp. LSL's own
  jitter therefore never reaches the detector; a stream that loses samples drifts (LSL cannot tell).
* :meth:`LslSource.finish` sends what is buffered with the end-of-stream flag (on :meth:`LslSource.stop`,
  i.e. Ctrl-C or SIGTERM, or at ``duration_s``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crampwatch.errors import ConfigError, RecordingError
from crampwatch.formats.columns import Column, factor, pick_channels
from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.framing import FrameCutter
from crampwatch.lsl import lsl_module
from crampwatch.units import ACC_UNIT, EMG_UNIT

__all__ = ["LslSource"]

log = logging.getLogger(__name__)

_PER_STREAM = 1 << 16


@dataclass
class _Out:
    """One outgoing stream (EMG or ACC): which inlet columns, their conversion, and its frame cutter."""

    kind: StreamKind
    inlet: int
    columns: list[int]
    factors: npt.NDArray[np.float64]
    channels: tuple[Channel, ...]
    rate_hz: float
    cutter: FrameCutter | None = None  # made at the first samples, whose time stamp starts the stream

    @property
    def samples(self) -> int:
        """Samples received so far (framed or pending)."""
        return 0 if self.cutter is None else self.cutter.samples + self.cutter.pending


class LslSource:
    """Frames from one or two LSL streams (see the module docstring). ``open()`` before polling."""

    def __init__(
        self,
        emg_stream: str,
        acc_stream: str | None = None,
        *,
        frame_s: float = 0.25,
        duration_s: float | None = None,
        resolve_timeout_s: float = 10.0,
        emg: list[str] | None = None,
        acc: list[str] | None = None,
    ) -> None:
        self.names = [emg_stream] + ([acc_stream] if acc_stream and acc_stream != emg_stream else [])
        self.frame_s = frame_s
        self.duration_s = duration_s
        self.resolve_timeout_s = resolve_timeout_s
        self.emg_labels = emg
        self.acc_labels = acc
        self.inlets: list[Any] = []
        self.outs: list[_Out] = []
        self._clock_offset_ns = 0
        self._stop = threading.Event()

    # -- set-up ------------------------------------------------------------------------------------

    def open(self) -> None:
        pylsl = lsl_module()
        infos = [self._resolve(pylsl, name) for name in self.names]
        self.inlets = [pylsl.StreamInlet(info, max_buflen=360, processing_flags=0) for info in infos]
        try:
            full = [inlet.info(timeout=self.resolve_timeout_s) for inlet in self.inlets]
            columns = [c for i, info in enumerate(full) for c in self._columns(i, info)]
            where = "LSL " + " + ".join(repr(n) for n in self.names)
            emg_cols, acc_cols = pick_channels(where, columns, emg=self.emg_labels, acc=self.acc_labels)
        except BaseException:
            self.close()
            raise
        self.outs = [self._out(StreamKind.EMG, emg_cols)]
        if acc_cols:
            self.outs.append(self._out(StreamKind.ACC, acc_cols))
        for inlet in self.inlets:
            inlet.open_stream(timeout=self.resolve_timeout_s)
        # LSL time stamps are local_clock() seconds; device times are ns since the Unix epoch.
        self._clock_offset_ns = time.time_ns() - round(pylsl.local_clock() * 1e9)
        log.info(
            "LSL: EMG %s at %g Hz%s",
            [c.label for c in emg_cols],
            emg_cols[0].rate_hz,
            f", ACC {[c.label for c in acc_cols]} at {acc_cols[0].rate_hz:g} Hz" if acc_cols else ", no ACC",
        )

    def _resolve(self, pylsl: Any, name: str) -> Any:
        found = pylsl.resolve_byprop("name", name, 1, self.resolve_timeout_s)
        if not found:
            seen = sorted({f"{s.name()} ({s.type()})" for s in pylsl.resolve_streams(1.0)})
            raise ConfigError(
                f"no LSL stream named {name!r} found within {self.resolve_timeout_s:g} s; streams on the "
                f"network: {', '.join(seen) or 'none'}. Check --stream and that the source is running"
            )
        return found[0]

    def _columns(self, index: int, info: Any) -> list[Column]:
        name = info.name()
        if info.channel_format() == lsl_module().cf_string:
            raise RecordingError(f"LSL {name!r}", "is a string (marker) stream, not a signal")
        channels = info.desc().child("channels").child("channel")
        out = []
        for j in range(info.channel_count()):
            label = channels.child_value("label") or f"ch{j + 1}"
            unit = channels.child_value("unit")
            out.append(Column(index * _PER_STREAM + j, label, unit, info.nominal_srate(), f"stream {name!r}"))
            channels = channels.next_sibling()
        if not any(c.unit for c in out):
            raise RecordingError(
                f"LSL {name!r}",
                "the stream's meta-data has no channel units (desc/channels/channel/unit), so µV and mV "
                "cannot be told apart; publish units with the stream",
            )
        return out

    def _out(self, kind: StreamKind, cols: list[Column]) -> _Out:
        unit = EMG_UNIT if kind is StreamKind.EMG else ACC_UNIT
        return _Out(
            kind,
            cols[0].index // _PER_STREAM,
            [c.index % _PER_STREAM for c in cols],
            np.array([factor(kind, c.unit) for c in cols]),
            tuple(Channel(c.label, unit) for c in cols),
            cols[0].rate_hz,
        )

    # -- streaming ---------------------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.2) -> list[Frame]:
        """Pull what has arrived and return the complete frames (EMG first)."""
        pulled: dict[int, tuple[npt.NDArray[np.float64], float]] = {}
        for i, inlet in enumerate(self.inlets):
            data, stamps = inlet.pull_chunk(timeout=timeout_s / len(self.inlets), max_samples=100_000)
            if stamps:
                pulled[i] = (np.asarray(data, dtype=np.float64), float(stamps[0]))
        frames: list[Frame] = []
        for out in self.outs:
            if out.inlet not in pulled:
                continue
            data, first_stamp = pulled[out.inlet]
            if out.cutter is None:
                start_ns = round(first_stamp * 1e9) + self._clock_offset_ns
                out.cutter = FrameCutter(out.kind, out.rate_hz, out.channels, frame_s=self.frame_s, start_ns=start_ns)
            frames.extend(out.cutter.push(data[:, out.columns] * out.factors))
        return frames

    def emg_seconds(self) -> float:
        emg = self.outs[0]
        return emg.samples / emg.rate_hz

    def finish(self) -> list[Frame]:
        """The buffered samples as final frames, each stream's last one with the end-of-stream flag."""
        return [f for out in self.outs if out.cutter is not None for f in out.cutter.flush(end_of_stream=True)]

    def close(self) -> None:
        for inlet in self.inlets:
            inlet.close_stream()
        self.inlets = []

    def stop(self) -> None:
        """End the stream now (Ctrl-C, SIGTERM); :meth:`frames` then sends what is buffered. Thread-safe."""
        self._stop.set()

    def frames(self) -> Iterator[Frame]:
        """The :class:`~collector.sources.base.Source` interface: poll until ``duration_s`` of EMG or
        :meth:`stop`, then the buffered samples with the end-of-stream flag."""
        if not self.inlets:
            self.open()
        try:
            while not self._stop.is_set() and (self.duration_s is None or self.emg_seconds() < self.duration_s):
                yield from self.poll()
            if self._stop.is_set():
                log.info("stopping: sending the last %.2f s with end of stream", self._buffered_s())
            yield from self.finish()
        finally:
            self.close()

    def _buffered_s(self) -> float:
        emg = self.outs[0]
        return 0.0 if emg.cutter is None else emg.cutter.pending / emg.rate_hz
