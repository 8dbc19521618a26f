"""The BLE commands (profiles, scan, run) and the status/coverage arithmetic, without a radio."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collector.ble.runner import LinkState, RunnerStats
from collector.cli import main
from collector.commands.run import parse_profile
from collector.publisher import FramePublisher
from collector.telemetry import Coverage, StatusReporter
from crampwatch.errors import ConfigError
from crampwatch.frames import StreamKind
from crampwatch.mqtt import make_client

NO_DBUS = not Path("/run/dbus/system_bus_socket").exists() and "DBUS_SYSTEM_BUS_ADDRESS" not in os.environ


def test_profile_spec_is_profile_and_optional_address() -> None:
    assert parse_profile("Ganglion") == ("ganglion", None)
    assert parse_profile("crampwatch:c4:de:e2:11:22:33") == ("crampwatch", "C4:DE:E2:11:22:33")
    with pytest.raises(ConfigError, match="C0:11:22:33:44:55"):
        parse_profile("myo:12:34")


def test_profiles_lists_every_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--verbose"]) == 0
    out = capsys.readouterr().out
    for name in ("bitalino", "crampwatch", "ganglion", "myo", "polar"):
        assert f"\n{name} " in f"\n{out}"
    assert "ARBITRARY units" in out  # the Myo caveat is shown, not hidden
    assert "start: write 6e to 2d30c083" in out  # Ganglion 'n'


@pytest.mark.parametrize("command", ["run", "scan", "profiles", "check-config"])
def test_help_renders(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "usage: cramp-collector" in capsys.readouterr().out


@pytest.mark.skipif(not NO_DBUS, reason="this machine has a system D-Bus; the no-adapter path cannot be shown")
def test_scan_without_bluetooth_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "no usable Bluetooth adapter" in err and "systemctl status bluetooth" in err


def test_run_with_an_unknown_profile_names_the_known_ones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--profile", "fitbit", "--patient", "p1", "--spool-path", str(tmp_path / "s.db")]) == 2
    assert "known profiles: bitalino, crampwatch, ganglion, myo, polar" in capsys.readouterr().err


def test_coverage_is_received_over_promised_per_hour() -> None:
    hour = 1_800_000_000 // 3600 * 3600
    coverage = Coverage(200.0, start=hour + 1800)  # started half-way through an hour
    coverage.update(0, now=hour + 1800)
    coverage.update(200 * 1800 - 3600, now=hour + 3599.9)  # 18 s missing in the first half hour
    coverage.update(200 * 1800 - 3600 + 200 * 60, now=hour + 3660)  # next hour: complete so far
    by_hour = coverage.by_hour(now=hour + 3660)
    assert list(by_hour.values()) == [99.0, 100.0]
    assert coverage.expected(now=hour + 3660) == 200 * 1860


def test_status_message_tells_a_non_expert_what_to_do() -> None:
    publisher = FramePublisher(make_client("mqtt://127.0.0.1:1", "offline"), "cramp/v1", "p1", "leg")
    try:
        stats = RunnerStats()
        status = StatusReporter(publisher, "ganglion", stats, {StreamKind.EMG: 200.0, StreamKind.ACC: 10.0})
        assert status.message() == "looking for the sensor"
        stats.state = LinkState.BACKOFF
        stats.disconnected_since = time.time() - 180
        assert status.message().startswith("sensor out of range or off for 3 min")
        stats.state = LinkState.STREAMING
        stats.last_data = time.time()
        assert status.message() == "streaming"
        snap = status.publish()  # not connected: built, not sent
        assert snap["collector"] == "online" and snap["link"] == "streaming"
        assert snap["spool_frames"] == 0 and set(snap["samples"]) == {"emg", "acc"}
        assert status.topic == "cramp/v1/p1/leg/status"
    finally:
        publisher.close()
