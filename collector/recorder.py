"""The recorder behind ``cramp-collector record`` (see :mod:`collector.commands.record` for what it does).

Kept apart from the command module so that ``cramp-collector --help`` does not import numpy, paho and the
EDF writer (issue 16).
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
from crampwatch.continuity import MAX_RECORD_GAP_S, Step, StreamContinuity
from crampwatch.errors import BrokerError, ConfigError, FrameError, RecordingError, StreamError
from crampwatch.formats.edf import write_edf
from crampwatch.frames import Frame, StreamKind
from crampwatch.mqtt import connect, make_client
from crampwatch.recording import Annotation, Recording, Signal
from crampwatch.topics import StreamTopic

from .config import CollectorSettings

log = logging.getLogger(__name__)


@dataclass
class _Stream:
    """One stream's samples, appended to a temporary file, and its continuity."""

    continuity: StreamContinuity
    file: IO[bytes]
    n_samples: int = 0
    ended: bool = False
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (start_s, duration_s) from stream start

    @property
    def kind(self) -> StreamKind:
        return self.continuity.kind

    @property
    def rate_hz(self) -> float:
        return self.continuity.rate_hz

    @property
    def names(self) -> tuple[str, ...]:
        return self.continuity.names

    def append(self, values: npt.NDArray[np.float64]) -> None:
        self.file.write(np.ascontiguousarray(values, dtype="<f8").tobytes())
        self.n_samples += values.shape[0]

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
        self.stopped: str | None = None  # why the recording stopped before the streams ended

    def add(self, frame: Frame) -> None:
        if self.stopped:
            return
        stream = self.streams.get(frame.kind) or self._open(frame)
        try:
            step, gap = stream.continuity.check(frame)
        except StreamError as err:
            raise RecordingError(str(self.tmp_dir), f"{err}; record each setting separately") from None
        if step is Step.DUPLICATE:
            self.duplicates += 1
            return
        if gap is not None:
            log.warning(
                "%s/%s %s: frames %d..%d lost (%.2f s)",
                self.patient,
                self.device,
                stream.kind.value,
                gap.first_seq,
                gap.last_seq,
                gap.duration_s,
            )
            if gap.duration_s > MAX_RECORD_GAP_S:
                self.stopped = (
                    f"{stream.kind.value.upper()} device time jumped by {gap.duration_s:.0f} s (more than "
                    f"{MAX_RECORD_GAP_S / 3600:.0f} h: the device clock was reset, this is no dropout); "
                    "the file ends before the jump, start record again for the rest"
                )
                log.error("%s/%s: %s", self.patient, self.device, self.stopped)
                return
            if gap.missing > 0:
                # A long gap (a break) is filled too: the file is one continuous time axis, and the
                # blocks go straight to disk, so memory stays small whatever the gap's length.
                stream.gaps.append((stream.n_samples / stream.rate_hz, gap.duration_s))
                for block in stream.continuity.filler(gap):
                    stream.append(block)
        stream.append(stream.continuity.accept(frame))
        stream.ended = stream.ended or frame.end_of_stream

    @property
    def done(self) -> bool:
        if self.stopped:
            return True
        emg = self.streams.get(StreamKind.EMG)
        acc = self.streams.get(StreamKind.ACC)
        return emg is not None and emg.ended and (acc is None or acc.ended)

    def emg_seconds(self) -> float:
        emg = self.streams.get(StreamKind.EMG)
        return emg.n_samples / emg.rate_hz if emg else 0.0

    def _open(self, frame: Frame) -> _Stream:
        try:
            continuity = StreamContinuity(frame)
        except StreamError as err:
            raise RecordingError(str(self.tmp_dir), f"{frame.kind.value.upper()} frames: {err}") from None
        file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            dir=self.tmp_dir, prefix=f".{self.device}-{frame.kind.value}-", suffix=".f64"
        )
        stream = _Stream(continuity, file)
        self.streams[frame.kind] = stream
        log.info("%s/%s %s: %g Hz x %s", self.patient, self.device, frame.kind.value, frame.rate_hz, stream.names)
        return stream

    def recording(self, where: str) -> Recording:
        emg = self.streams.get(StreamKind.EMG)
        if emg is None or emg.n_samples == 0:
            raise RecordingError(where, "no EMG frames arrived: nothing to write (is the device streaming?)")
        first_ns = emg.continuity.first_t0_ns
        signals = [Signal(StreamKind.EMG, emg.rate_hz, emg.names, emg.data())]
        gaps = [Annotation("gap", s, s + d, emg.kind.value) for s, d in emg.gaps]
        acc = self.streams.get(StreamKind.ACC)
        if acc is not None and acc.n_samples:
            offset_s = (acc.continuity.first_t0_ns - first_ns) / 1e9
            skip = max(0, int(np.ceil(-offset_s * acc.rate_hz - 1e-6)))
            if skip < acc.n_samples:
                t0 = max(0.0, offset_s + skip / acc.rate_hz)
                signals.append(Signal(StreamKind.ACC, acc.rate_hz, acc.names, acc.data()[skip:], t0_s=t0))
            # ACC gaps on the recording's (EMG's) time axis; parts before the first EMG sample are cut.
            gaps += [
                Annotation("gap", max(0.0, offset_s + s), offset_s + s + d, acc.kind.value)
                for s, d in acc.gaps
                if offset_s + s + d > 0
            ]
        start = datetime.fromtimestamp(first_ns // 1_000_000_000, tz=UTC).replace(tzinfo=None)
        meta: dict[str, object] = {"start": start}
        return Recording(signals[0], signals[1] if len(signals) > 1 else None, tuple(gaps), source="mqtt", meta=meta)

    def close(self) -> None:
        for s in self.streams.values():
            s.file.close()


def record(args: argparse.Namespace) -> int:
    cfg = settings_mod.load(CollectorSettings, args)
    out: Path = args.out
    if out.suffix.lower() not in (".edf", ".bdf"):
        raise ConfigError(f"--out {out}: name the file .bdf (24 bit, recommended) or .edf (16 bit)")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed = threading.Event()
    topics = {StreamTopic(cfg.patient, cfg.device, kind).render(cfg.device_prefix): kind for kind in StreamKind}

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if not getattr(reason, "is_failure", False):
            client.subscribe([(t, 1) for t in topics])

    def on_subscribe(client: mqtt.Client, userdata: object, mid: int, reasons: object, props: object) -> None:
        subscribed.set()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        inbox.put((msg.topic, bytes(msg.payload)))  # paho's thread only enqueues

    client = make_client(
        cfg.mqtt_url, cfg.client_id or f"cramp-recorder-{cfg.patient}-{cfg.device}", access=cfg.mqtt_access
    )
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
        if recorder.stopped:
            log.warning("the recording stopped early: %s", recorder.stopped)
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
