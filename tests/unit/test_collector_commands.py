"""The collector commands' grammar: one meaning per flag, only the settings a command uses, one-line errors."""

from __future__ import annotations

import pytest

from collector.cli import build_parser, main

PUBLISHING = ("simulate", "replay", "record", "lsl")


def help_text(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", PUBLISHING)
def test_commands_without_radio_or_spool_do_not_offer_their_settings(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(command, capsys)
    assert "--device DEVICE" in text and "--mqtt-url" in text
    for unused in ("--spool-path", "--spool-sync", "--ble-silence-s", "--status-interval-s", "--profile"):
        assert unused not in text, f"{command} --help offers {unused}"


def test_run_takes_the_sensor_profile_as_profile_and_the_device_id_as_device() -> None:
    args = build_parser().parse_args(["run", "--profile", "ganglion:C0:11:22:33:44:55", "--device", "leg-left"])
    assert args.profile == "ganglion:C0:11:22:33:44:55" and args.device == "leg-left"
    assert build_parser().parse_args(["simulate", "--device", "leg-left"]).device == "leg-left"


def test_run_offers_the_spool_and_radio_settings(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text("run", capsys)
    for flag in ("--profile", "--device ID", "--spool-path", "--ble-scan-timeout-s", "--status-interval-s"):
        assert flag in text


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["simulate", "--duration", "-5"], "--duration: -5 must be above 0"),
        (["simulate", "--frame-s", "0"], "--frame-s: 0 must be above 0"),
        (["lsl", "--stream", "x", "--duration", "0"], "--duration: 0 must be above 0"),
        (["run", "--profile", "ganglion", "--duration", "-1"], "--duration: -1 must be above 0"),
    ],
)
def test_bad_numbers_get_one_line_not_a_traceback(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
