"""``cramp-collector record``: write a device's live MQTT streams to an EDF+/BDF+ file.

    cramp-collector record --out night.bdf --patient p07 --device left

Why: a night recorded through the live system can be looked at in any EDF viewer, shared, re-scored and
re-run offline (``cramp-detector detect``), and the recording is what the detector actually received.

* Subscribes (QoS 1, persistent session ``cramp-recorder-<patient>-<device>``) to the device's ``emg``
  and ``acc`` topics. Start it **before** the device or replay: the broker keeps messages for a
  subscription only once it exists.
* Samples are converted to µV and g as the detector does (:mod:`crampwatch.units`). Duplicated frames
  (same sequence number) are dropped. Lost frames are filled (EMG with zeros, ACC by holding the last
  reading) so the file stays continuous in time, and each gap becomes an EDF+ annotation ``gap`` with
  its duration, so a viewer shows where data is missing.
* The file is written when the streams end (end-of-stream flag on EMG, and on ACC if ACC frames came),
  on ``--duration`` seconds of EMG, or on Ctrl-C (what arrived so far). The start time in the header
  is the first EMG frame's device time (UTC, whole seconds; EDF cannot store the fraction). ACC samples
  from before the first EMG sample are dropped.
* Memory stays small: samples go to temporary files beside ``--out`` (float64, about 58 MB per channel
  per hour at 2 kHz) and are read back memory-mapped when the EDF is written. ``.bdf`` (24 bit) keeps
  far more of the signal's resolution than ``.edf`` (16 bit); both are rounded to the file's digital step.
"""

from __future__ import annotations

import argparse
import logging
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import paho.mqtt.client as mqtt

from crampwatch import settings as settings_mod
from crampwatch import wire
from crampwatch.cli import output_file, positive_float
from crampwatch.errors import BrokerError, ConfigError, FrameError, RecordingError
from crampwatch.formats.edf import write_edf
from crampwatch.frames import Frame, StreamKind
from crampwatch.mqtt import connect, make_client
from crampwatch.recording import Annotation, Recording, Signal
from crampwatch.topics import StreamTopic
from crampwatch.units import UnitError, to_g, to_microvolts

from ..config import MQTT_FIELDS, CollectorSettings

log = logging.getLogger(__name__)

NAME = "record"
HELP = "record a device's live MQTT streams into an EDF+/BDF+ file (until end of stream or Ctrl-C)"

#: A silence longer than this between frames is not filled; the recording is cut there.
MAX_GAP_S = 600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=output_file, required=True, help="output file, .bdf (24 bit) or .edf (16 bit)")
    parser.add_argument(
        "--duration", type=positive_float, default=None, metavar="SECONDS", help="stop after this much EMG"
    )
    parser.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop when no frame arrived for this long after the first one (default: wait for end of stream)",
    )
    settings_mod.add_arguments(parser, CollectorSettings, fields=MQTT_FIELDS)


@dataclass
class _Stream:
    """One stream's samples, appended to a temporary file, plus what is needed to check continuity."""

    kind: StreamKind
    rate_hz: float
    names: tuple[str, ...]
    factors: npt.NDArray[np.float64]
    first_t0_ns: int
    file: IO[bytes]
    next_seq: int
    next_t_ns: int
    n_samples: int = 0
    ended: bool = False
    last: npt.NDArray[np.float64] | None = None
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (start_s, duration_s) from stream start

    def append(self, values: npt.NDArray[np.float64]) -> None:
        self.file.write(np.ascontiguousarray(values, dtype="<f8").tobytes())
        self.n_samples += values.shape[0]
        if values.shape[0]:
            self.last = values[-1]

    def data(self) -> npt.NDArray[np.float64]:
        self.file.flush()
        if self.n_samples == 0:
            return np.zeros((0, len(self.names)))
        return np.memmap(self.file.name, dtype="<f8", mode="r", shape=(self.n_samples, len(self.names)))


class Recorder:
    """Collects one device's frames (any order of EMG/ACC, in sequence per stream) into temp files."""

    def __init__(self, tmp_dir: Path, *, patient: str, device: str) -> None:
        self.tmp_dir = tmp_dir
        self.patient = patient
        self.device = device
        self.streams: dict[StreamKind, _Stream] = {}
        self.duplicates = 0

    def add(self, frame: Frame) -> None:
        stream = self.streams.get(frame.kind) or self._open(frame)
        if frame.rate_hz != stream.rate_hz or len(frame.channels) != len(stream.names):
            raise RecordingError(
                str(self.tmp_dir),
                f"{frame.kind.value.upper()} rate/channels changed mid-stream ({stream.rate_hz} Hz x "
                f"{len(stream.names)} -> {frame.rate_hz} Hz x {len(frame.channels)}); record each setting separately",
            )
        if frame.seq < stream.next_seq:
            self.duplicates += 1
            return
        if frame.seq > stream.next_seq:
            self._fill(stream, frame)
        stream.append(frame.values() * stream.factors)
        stream.next_seq = frame.seq + 1
        stream.next_t_ns = frame.t0_ns + frame.duration_ns
        stream.ended = stream.ended or frame.end_of_stream

    @property
    def done(self) -> bool:
        emg = self.streams.get(StreamKind.EMG)
        acc = self.streams.get(StreamKind.ACC)
        return emg is not None and emg.ended and (acc is None or acc.ended)

    def emg_seconds(self) -> float:
        emg = self.streams.get(StreamKind.EMG)
        return emg.n_samples / emg.rate_hz if emg else 0.0

    def _open(self, frame: Frame) -> _Stream:
        try:
            if frame.kind is StreamKind.EMG:
                factors = np.array([to_microvolts(c.unit) for c in frame.channels])
            else:
                factors = np.array([to_g(c.unit) for c in frame.channels])
        except UnitError as err:
            raise RecordingError(str(self.tmp_dir), f"{frame.kind.value.upper()} frames: {err}") from None
        file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            dir=self.tmp_dir, prefix=f".{self.device}-{frame.kind.value}-", suffix=".f64"
        )
        names = tuple(c.name for c in frame.channels)
        stream = _Stream(frame.kind, frame.rate_hz, names, factors, frame.t0_ns, file, frame.seq, frame.t0_ns)
        self.streams[frame.kind] = stream
        log.info("%s/%s %s: %g Hz x %s", self.patient, self.device, frame.kind.value, frame.rate_hz, names)
        return stream

    def _fill(self, stream: _Stream, frame: Frame) -> None:
        missing = round((frame.t0_ns - stream.next_t_ns) * stream.rate_hz / 1e9)
        start_s = stream.n_samples / stream.rate_hz
        log.warning(
            "%s/%s %s: frames %d..%d lost (%.2f s)",
            self.patient,
            self.device,
            stream.kind.value,
            stream.next_seq,
            frame.seq - 1,
            missing / stream.rate_hz,
        )
        if missing <= 0:
            return
        if missing > MAX_GAP_S * stream.rate_hz:
            raise RecordingError(
                str(self.tmp_dir),
                f"{stream.kind.value.upper()} has a gap of {missing / stream.rate_hz:.0f} s (longer than "
                f"{MAX_GAP_S:.0f} s); record the parts separately",
            )
        if stream.kind is StreamKind.EMG or stream.last is None:
            filler = np.zeros((missing, len(stream.names)))
        else:
            filler = np.repeat(stream.last[None, :], missing, axis=0)
        stream.append(filler)
        stream.gaps.append((start_s, missing / stream.rate_hz))

    def recording(self, where: str) -> Recording:
        emg = self.streams.get(StreamKind.EMG)
        if emg is None or emg.n_samples == 0:
            raise RecordingError(where, "no EMG frames arrived: nothing to write (is the device streaming?)")
        signals = [Signal(StreamKind.EMG, emg.rate_hz, emg.names, emg.data())]
        acc = self.streams.get(StreamKind.ACC)
        if acc is not None and acc.n_samples:
            offset_s = (acc.first_t0_ns - emg.first_t0_ns) / 1e9
            skip = max(0, int(np.ceil(-offset_s * acc.rate_hz - 1e-6)))
            if skip < acc.n_samples:
                t0 = max(0.0, offset_s + skip / acc.rate_hz)
                signals.append(Signal(StreamKind.ACC, acc.rate_hz, acc.names, acc.data()[skip:], t0_s=t0))
        gaps = tuple(Annotation("gap", s, s + d, emg.kind.value) for s, d in emg.gaps)
        start = datetime.fromtimestamp(emg.first_t0_ns // 1_000_000_000, tz=UTC).replace(tzinfo=None)
        meta: dict[str, object] = {"start": start}
        return Recording(signals[0], signals[1] if len(signals) > 1 else None, gaps, source="mqtt", meta=meta)

    def close(self) -> None:
        for s in self.streams.values():
            s.file.close()


def run(args: argparse.Namespace) -> int:
    cfg = settings_mod.load(CollectorSettings, args)
    out: Path = args.out
    if out.suffix.lower() not in (".edf", ".bdf"):
        raise ConfigError(f"--out {out}: name the file .bdf (24 bit, recommended) or .edf (16 bit)")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed = threading.Event()
    topics = {StreamTopic(cfg.patient, cfg.device, kind).render(cfg.topic_prefix): kind for kind in StreamKind}

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if not getattr(reason, "is_failure", False):
            client.subscribe([(t, 1) for t in topics])

    def on_subscribe(client: mqtt.Client, userdata: object, mid: int, reasons: object, props: object) -> None:
        subscribed.set()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        inbox.put((msg.topic, bytes(msg.payload)))  # paho's thread only enqueues

    client = make_client(cfg.mqtt_url, cfg.client_id or f"cramp-recorder-{cfg.patient}-{cfg.device}")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    recorder = Recorder(out.parent, patient=cfg.patient, device=cfg.device)
    try:
        connect(client)
        if not subscribed.wait(10):
            raise BrokerError(f"the broker did not confirm the subscription to {', '.join(topics)} within 10 s")
        log.info("recording %s -> %s; waiting for frames (Ctrl-C writes what has arrived)", ", ".join(topics), out)
        try:
            _receive(inbox, topics, recorder, duration_s=args.duration, idle_s=args.idle_timeout)
        except KeyboardInterrupt:
            log.info("interrupted: writing the %.1f s received so far", recorder.emg_seconds())
        client.loop_stop()
        client.disconnect()
        rec = recorder.recording(str(out))
        write_edf(rec, out)
    finally:
        client.loop_stop()
        recorder.close()
    log.info(
        "wrote %s: %.1f s EMG (%d ch at %g Hz), ACC %s, %d gap(s), %d duplicate frame(s) dropped",
        out,
        rec.emg.duration_s,
        len(rec.emg.channel_names),
        rec.emg.rate_hz,
        f"{rec.acc.rate_hz:g} Hz" if rec.acc else "none",
        len(rec.annotations),
        recorder.duplicates,
    )
    return 0


def _receive(
    inbox: queue.Queue[tuple[str, bytes]],
    topics: dict[str, StreamKind],
    recorder: Recorder,
    *,
    duration_s: float | None,
    idle_s: float | None,
) -> None:
    last_frame = None
    while not recorder.done:
        if duration_s is not None and recorder.emg_seconds() >= duration_s:
            return
        try:
            topic, payload = inbox.get(timeout=0.5)
        except queue.Empty:
            if idle_s is not None and last_frame is not None and time.monotonic() - last_frame > idle_s:
                log.warning("no frame for %.0f s: writing what has arrived", idle_s)
                return
            continue
        last_frame = time.monotonic()
        try:
            frame = wire.decode(payload)
        except FrameError as err:
            log.warning("rejected frame on %s: %s", topic, err.reason)
            continue
        if frame.kind is not topics.get(topic):
            log.warning("rejected frame on %s: it says %s", topic, frame.kind.value)
            continue
        recorder.add(frame)
