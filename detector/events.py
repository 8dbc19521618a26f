"""The typed messages the detector hands to sinks: events and 1 Hz summaries."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

#: Column order of event CSV files (offline ``detect`` and the file sink).
CSV_FIELDS = (
    "type",
    "onset_s",
    "offset_s",
    "confidence",
    "peak_uv",
    "subtype",
    "precursor_s",
    "patient",
    "device",
    "interrupted_s",
)


@dataclass(frozen=True, slots=True)
class Event:
    """A detected cramp, spasm or periodic limb movement (``plm``).

    ``subtype`` is, for a spasm, one of tonic, clonus, flexor, extensor or myoclonic (``detector/subtype.py``,
    ``docs/subtypes.md``); empty for cramps and PLMs.

    ``precursor_s`` is, for a cramp, how long calf tone was rising before its onset (0: no precursor);
    it is an early-warning signal and not part of the cramp.

    ``interrupted_s`` is how much of the event the window model alone did not call involuntary: for a cramp,
    the wake behaviour and relief dips it went on through (``interrupted_s / duration_s`` is the fraction).

    ``onset_s``/``offset_s`` are seconds from the start of the device's stream; ``start_ns`` is the device
    time (ns since the Unix epoch when the device clock is synchronised) of that stream start, so the
    absolute onset is ``start_ns + onset_s * 1e9``.
    """

    patient: str
    device: str
    type: str
    onset_s: float
    offset_s: float
    confidence: float
    peak_uv: float
    subtype: str = ""
    start_ns: int = 0
    precursor_s: float = 0.0
    interrupted_s: float = 0.0
    #: ``final``: the event as it ended (the only state offline detection and CSV files have). Live,
    #: ``open``: a cramp or spasm going on, sent seconds after its onset from the data so far
    #: (``pipeline.OPEN_AFTER_S``; its offset is "so far"); ``cancelled``: an open event the final decision
    #: did not confirm (nothing there, too short for its type, or another type). All states of one event
    #: share its :attr:`event_id`.
    state: str = "final"
    #: Live, on a final event that confirms an announcement: the onset it was announced with (state
    #: ``open``, from the data so far), which may differ from the final onset. The id stays the one
    #: announced, so the final event replaces the open one for every consumer. Not part of what was found (left out
    #: of comparisons, CSV and JSON): offline events never have it, and their ids are unchanged.
    opened_onset_s: float | None = field(default=None, compare=False)

    @property
    def event_id(self) -> str:
        """The event's identity, shared by its states (open, final) and by the same event detected again
        after a detector restart.

        Type and onset identify it as InfluxDB does (series + time), so a consumer of the MQTT events can
        drop a repeat by id, as InfluxDB overwrites the point. An open event that turns out to be another
        type is cancelled under its id; the final event then has an id of its own.
        """
        return f"{self.patient}/{self.device}/{self.type}/{self.id_onset_ns}"

    @property
    def id_onset_ns(self) -> int:
        """The onset the id and the InfluxDB point of the announcement are at (see ``opened_onset_s``)."""
        onset = self.onset_s if self.opened_onset_s is None else self.opened_onset_s
        return self.start_ns + round(onset * 1e9)

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    @property
    def onset_ns(self) -> int:
        return self.start_ns + round(self.onset_s * 1e9)

    def csv_row(self) -> list[str]:
        return [
            self.type,
            f"{self.onset_s:.3f}",
            f"{self.offset_s:.3f}",
            f"{self.confidence:.3f}",
            f"{self.peak_uv:.1f}",
            self.subtype,
            f"{self.precursor_s:.1f}",
            self.patient,
            self.device,
            f"{self.interrupted_s:.1f}",
        ]

    def to_json(self) -> str:
        body = asdict(self)
        del body["opened_onset_s"]
        body["duration_s"] = round(self.duration_s, 3)
        body["onset_ns"] = self.onset_ns
        body["id"] = self.event_id
        return json.dumps(body, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Summary:
    """About one second of a device's data, for dashboards (signal level and data completeness)."""

    patient: str
    device: str
    time_ns: int
    emg_rms_uv: float
    acc_activity_g: float
    data_received: bool
    fasciculations: int = 0  # isolated MUAP-like twitches at rest in this second


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The detector's word, every few seconds of wall-clock time, on a device that is recording.

    It is written whether or not data came, so "the sensor went silent" is an explicit value
    (``data_received`` 0, ``silent_s`` growing) that an alert rule can test, instead of Grafana's
    unreliable "no data" state. ``lag_s`` is wall time minus the device time of the newest data
    processed; ``rejected_frames`` counts this device's frames refused since the detector started;
    ``queued_points`` is how many events and summaries (all devices) wait for a sink that cannot take them.
    """

    patient: str
    device: str
    time_ns: int
    data_received: bool
    silent_s: float
    lag_s: float
    rejected_frames: int = 0
    queued_points: int = 0
