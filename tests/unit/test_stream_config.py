"""Stream state (duplicates, gaps, units) and settings validation, without servers or a model."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from crampwatch import settings as settings_mod
from crampwatch.errors import ConfigError, StreamError
from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.recording import Recording, Signal
from detector.config import DetectorSettings
from detector.offline import run_recording
from detector.stream import DeviceStreams


def _recording(seconds: float = 60.0, rate: float = 500.0) -> Recording:
    rng = np.random.default_rng(3)
    n = int(seconds * rate)
    emg = rng.normal(0, 3, (n, 2))
    emg[int(20 * rate) : int(40 * rate), 0] += rng.normal(0, 150, int(20 * rate))
    acc = np.tile([0.0, 0.0, 1.0], (int(seconds * 50), 1)) + rng.normal(0, 0.002, (int(seconds * 50), 3))
    return Recording(Signal(StreamKind.EMG, rate, ("a", "b"), emg), Signal(StreamKind.ACC, 50.0, ("x", "y", "z"), acc))


def _features(streams: DeviceStreams, frames: list[Frame]) -> np.ndarray:
    rows = []
    for f in frames:
        out = streams.on_frame(f)
        if out.features is not None:
            rows.append(out.features)
    out = streams.finish()
    if out.features is not None:
        rows.append(out.features)
    return np.vstack(rows)


def test_duplicates_are_dropped_and_change_nothing() -> None:
    rec = _recording()
    frames = list(rec.frames(0.2))
    clean = _features(DeviceStreams(None, "p", "d", expect_acc=True, keep_features=True), frames)
    doubled = [g for f in frames for g in (f, f)]
    streams = DeviceStreams(None, "p", "d", expect_acc=True, keep_features=True)
    again = _features(streams, doubled)
    assert np.array_equal(clean, again, equal_nan=True)
    n_emg = len([f for f in frames if f.kind is StreamKind.EMG])
    assert streams.streams[StreamKind.EMG].stats.duplicates == n_emg


def test_gap_is_counted_and_timing_kept() -> None:
    rec = _recording()
    frames = list(rec.frames(0.2))
    emg_frames = [f for f in frames if f.kind is StreamKind.EMG]
    lost = {emg_frames[50].seq, emg_frames[51].seq}
    kept = [f for f in frames if not (f.kind is StreamKind.EMG and f.seq in lost)]
    streams = DeviceStreams(None, "p", "d", expect_acc=True, keep_features=True)
    with_gap = _features(streams, kept)
    clean = _features(DeviceStreams(None, "p", "d", expect_acc=True, keep_features=True), frames)
    stats = streams.streams[StreamKind.EMG].stats
    assert stats.gaps == 1 and stats.lost_samples == 2 * emg_frames[50].n_samples
    assert with_gap.shape == clean.shape  # the same windows at the same device times


def test_unknown_unit_is_a_stream_error() -> None:
    frame = Frame(StreamKind.EMG, 0, 0, 1000.0, (Channel("calf", "furlongs"),), np.zeros((10, 1), np.float32))
    with pytest.raises(StreamError, match="unknown EMG unit 'furlongs'"):
        DeviceStreams(None, "p", "d").on_frame(frame)


def test_chunking_does_not_change_features() -> None:
    rec = _recording(90.0, 200.0)
    whole = run_recording(rec, None, chunk_s=90.0, keep_features=True).features
    small = run_recording(rec, None, chunk_s=0.13, keep_features=True).features
    assert whole is not None and small is not None
    assert np.array_equal(whole, small, equal_nan=True)


def _load(argv: list[str], env: dict[str, str]) -> DetectorSettings:
    parser = argparse.ArgumentParser()
    settings_mod.add_arguments(parser, DetectorSettings)
    return settings_mod.load(DetectorSettings, parser.parse_args(argv), env=env)


def test_settings_precedence_flag_over_env_over_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "d.toml"
    conf.write_text('topic_prefix = "file/v1"\ninflux_bucket = "from-file"\n')
    cfg = _load(["--config", str(conf), "--influx-bucket", "from-flag"], {"CRAMP_TOPIC_PREFIX": "env/v1"})
    assert (cfg.topic_prefix, cfg.influx_bucket) == ("env/v1", "from-flag")


def test_bad_setting_names_flag_env_and_fix() -> None:
    with pytest.raises(ConfigError) as err:
        _load([], {"CRAMP_MQTT_URL": "http://broker:1883"})
    assert "--mqtt-url / CRAMP_MQTT_URL" in str(err.value)
    assert "mqtt://" in str(err.value)


def test_unknown_key_in_file_is_rejected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "d.toml"
    conf.write_text('mqtt_uri = "mqtt://x"\n')
    with pytest.raises(ConfigError, match=r"unknown setting.*mqtt_uri"):
        _load(["--config", str(conf)], {})
