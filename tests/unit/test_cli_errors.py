"""Every command of both programs, given bad input, ends with ONE ``error:`` line and exit code 2.

Bad input here means what people really type: a missing file, a file of the wrong kind, a bad number, an
output nobody can write, a malformed URL, an unknown key in ``--config``, an unknown command or option.
Each case runs in-process through ``main([...])``; none may start long work first, and none may show a
traceback. Also here: the settings every model-loading command honours (``--model``, ``CRAMP_MODEL``,
``--config``), ``check-config``'s TOML round trip with secrets masked, and the ``--help`` command list.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import collector.cli
import detector.cli
from collector.commands import COMMANDS as COLLECTOR_COMMANDS
from collector.config import CollectorSettings
from crampwatch import settings as settings_mod
from crampwatch.formats.edf import write_edf
from crampwatch.simulate import SimParams, simulate
from detector.commands import COMMANDS as DETECTOR_COMMANDS
from detector.config import DetectorSettings

PROGRAMS: dict[str, Callable[[list[str] | None], int]] = {
    "cramp-detector": detector.cli.main,
    "cramp-collector": collector.cli.main,
}


@dataclass(frozen=True)
class Files:
    """Files the cases point at (``{name}`` in an argv is replaced by the path)."""

    root: Path

    def path(self, name: str) -> str:
        return str(self.root / name)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("cli")
    night = simulate(60, 3, params=SimParams(emg_rate_hz=500.0), event_density=3)
    write_edf(night, root / "night.edf")
    (root / "garbage.edf").write_text("this is not an EDF file\n")
    (root / "a_file.txt").write_text("a file where a folder belongs\n")
    (root / "folder").mkdir()
    (root / "unknown-key.toml").write_text('mqtt_url = "mqtt://127.0.0.1:1883"\nno_such_setting = 1\n')
    (root / "not-toml.toml").write_text("this = is = not toml\n")
    (root / "model-nope.toml").write_text(f'model = "{root / "nope.skops"}"\n')
    return Files(root)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No CRAMP_* variable of the machine running the tests may change what a case sees."""
    import os

    for name in [n for n in os.environ if n.startswith("CRAMP_")]:
        monkeypatch.delenv(name)
    yield


# (program, argv, environment, a fragment the one error line must contain: what is wrong, or the fix)
Case = tuple[str, list[str], dict[str, str], str]
D, C = "cramp-detector", "cramp-collector"
NOPE_MODEL = {"CRAMP_MODEL": "{nope.skops}"}
UNKNOWN_KEY = ["--config", "{unknown-key.toml}"]
PASSWD = ["--passwd-file", "{passwd}"]

CASES: list[Case] = [
    # the programs themselves
    (D, ["nosuch"], {}, "invalid choice"),
    (D, [], {}, "COMMAND"),
    (C, ["nosuch"], {}, "invalid choice"),
    (D, ["detect", "{night.edf}", "--bogus"], {}, "--bogus"),
    # demo: fails before it starts a broker and a simulator
    (D, ["demo", "--duration", "-5"], {}, "above 0"),
    (D, ["demo", "--speed", "fast"], {}, "speed"),
    (D, ["demo", "--density", "lots"], {}, "not a number"),
    (D, ["demo"], NOPE_MODEL, "CRAMP_MODEL"),
    (D, ["demo", "--mqtt-url", "http://host:1883"], {}, "mqtt://"),
    (D, ["demo", *UNKNOWN_KEY], {}, "no_such_setting"),
    # serve: fails before it connects
    (D, ["serve", "--mqtt-url", "http://user:pw@host:1883"], {}, "mqtt://"),
    (D, ["serve", "--mqtt-url", "mqtt://host:99999"], {}, "port"),
    (D, ["serve", "--influx-url", "ftp://host"], {}, "http"),
    (D, ["serve", "--session-expiry-s", "-1"], {}, "--session-expiry-s"),
    (D, ["serve", "--log-level", "LOUD"], {}, "DEBUG"),
    (D, ["serve", "--checkpoint-s", "0"], {}, "--checkpoint-s"),
    (D, ["serve", "--sink-retry-s", "never"], {}, "--sink-retry-s"),
    (D, ["serve", "--state-dir", "{a_file.txt}"], {}, "--state-dir"),
    (D, ["serve", "--shards", "4", "--own-shards", "2-9"], {}, "outside 0-3"),
    (D, ["serve", "--own-shards", "1"], {}, "set shards"),
    (D, ["serve", *UNKNOWN_KEY], {}, "no_such_setting"),
    (D, ["serve", "--config", "{missing.toml}"], {}, "cannot read"),
    (D, ["serve", "--config", "{not-toml.toml}"], {}, "TOML"),
    (D, ["serve"], NOPE_MODEL, "CRAMP_MODEL"),
    # detect
    (D, ["detect", "{missing.edf}"], {}, "no such file"),
    (D, ["detect", "{garbage.edf}"], {}, "not an EDF"),
    (D, ["detect", "{folder}"], {}, "folder"),
    (D, ["detect", "{night.edf}", "--out", "{no-dir/x.csv}"], {}, "does not exist"),
    (D, ["detect", "{night.edf}", "--out", "{a_file.txt/x.csv}"], {}, "does not exist"),
    (D, ["detect", "{night.edf}", "--out", "{folder}"], {}, "folder"),
    (D, ["detect", "{night.edf}", "--out", "{night.edf}"], {}, "recording itself"),
    (D, ["detect", "{night.edf}", "--model", "{nope.skops}"], {}, "--model"),
    (D, ["detect", "{night.edf}"], NOPE_MODEL, "CRAMP_MODEL"),
    (D, ["detect", "{night.edf}", "--config", "{model-nope.toml}"], {}, "--config"),
    (D, ["detect", "{night.edf}", *UNKNOWN_KEY], {}, "no_such_setting"),
    (D, ["detect", "{night.edf}", "--patient", "not an id"], {}, "--patient"),
    (D, ["detect", "{night.edf}", "--emg", "NoSuchChannel"], {}, "NoSuchChannel"),
    # batch: a bad model or argument fails once, before any worker starts
    (D, ["batch", "{missing}", "--out", "{results}"], {}, "no such folder"),
    (D, ["batch", "{a_file.txt}", "--out", "{results}"], {}, "not a folder"),
    (D, ["batch", "{folder}", "--out", "{a_file.txt}"], {}, "is a file"),
    (D, ["batch", "{folder}", "--out", "{no-dir/deeper/results}"], {}, "does not exist"),
    (D, ["batch", "{folder}", "--out", "{results}", "--workers", "0"], {}, "1 or more"),
    (D, ["batch", "{folder}", "--out", "{results}", "--workers", "two"], {}, "whole number"),
    (D, ["batch", "{folder}", "--out", "{results}", "--scheduler", "10.0.0.5"], {}, "tcp://"),
    (D, ["batch", "{folder}", "--out", "{results}"], NOPE_MODEL, "CRAMP_MODEL"),
    (D, ["batch", "{folder}", "--out", "{results}", *UNKNOWN_KEY], {}, "no_such_setting"),
    (D, ["batch", "{folder}", "--out", "{results}"], {}, "no recordings"),
    # annotate
    (D, ["annotate", "{missing.edf}", "--out", "{x.edf}"], {}, "no such file"),
    (D, ["annotate", "{night.edf}", "{night.edf}", "--out", "{x.edf}"], {}, "not a CSV"),
    (D, ["annotate", "{night.edf}", "--out", "{x.txt}"], {}, ".edf"),
    (D, ["annotate", "{night.edf}", "--out", "{no-dir/x.edf}"], {}, "does not exist"),
    (D, ["annotate", "{night.edf}", "--out", "{night.edf}"], {}, "input file"),
    (D, ["annotate", "{night.edf}", "--out", "{x.edf}"], NOPE_MODEL, "CRAMP_MODEL"),
    (D, ["annotate", "{night.edf}", "--out", "{x.edf}", *UNKNOWN_KEY], {}, "no_such_setting"),
    # evaluate
    (D, ["evaluate"], {}, "nothing to evaluate"),
    (D, ["evaluate", "{missing.edf}"], {}, "no such file"),
    (D, ["evaluate", "--simulated", "0"], {}, "1 or more"),
    (D, ["evaluate", "--simulated", "1", "--night-s", "-60"], {}, "above 0"),
    (D, ["evaluate", "--simulated", "1", "--json", "{no-dir/s.json}"], {}, "does not exist"),
    (D, ["evaluate", "--simulated", "1", "--detector", "magic"], {}, "invalid choice"),
    (D, ["evaluate", "--simulated", "1"], NOPE_MODEL, "nope.skops"),
    (D, ["evaluate", "--simulated", "1", *UNKNOWN_KEY], {}, "no_such_setting"),
    (D, ["report"], {}, "say which night"),
    (D, ["report", "--events", "{missing.edf}", "--recording", "{night.edf}"], {}, "no such file"),
    (D, ["report", "--events", "{night.edf}"], {}, "need both --events CSV and --recording"),
    (D, ["report", "--patient", "p1", "--night", "2026-01-01"], {}, "needs --influx-url"),
    (D, ["report", "--patient", "p1", "--night", "2026-01-01", "--influx-url", "ftp://x"], {}, "http"),
    (D, ["report", "--out", "{no-dir/r.html}", "--patient", "p1", "--night", "2026-01-01"], {}, "does not exist"),
    (D, ["report", "--patient", "p1", "--night", "2026-01-01", *UNKNOWN_KEY], {}, "no_such_setting"),
    # train: an unwritable model path fails before hours of training
    (D, ["train", "--nights", "0"], {}, "1 or more"),
    (D, ["train", "--night-s", "long"], {}, "not a number"),
    (D, ["train", "--out", "{no-dir/m.skops}"], {}, "does not exist"),
    (D, ["train"], {"CRAMP_MODEL": "{no-dir/m.skops}"}, "CRAMP_MODEL"),
    (D, ["train", "--labeled", "{missing}"], {}, "no such file"),
    (D, ["train", *UNKNOWN_KEY], {}, "no_such_setting"),
    # check-config (detector): the whole set-up
    (D, ["check-config"], NOPE_MODEL, "CRAMP_MODEL"),
    (D, ["check-config", "--mqtt-url", "mqtt//host"], {}, "mqtt://"),
    (D, ["check-config", "--influx-url", "host:8086"], {}, "http"),
    (D, ["check-config", "--events-file", "{no-dir/e.jsonl}"], {}, "events file"),
    (D, ["check-config", "--publish-events", "maybe"], {}, "--publish-events"),
    (D, ["check-config", *UNKNOWN_KEY], {}, "no_such_setting"),
    # the collector's commands (their bodies live elsewhere; arguments and settings are checked up front)
    (C, ["simulate", "--duration", "-5"], {}, "above 0"),
    (C, ["simulate", "--frame-s", "0"], {}, "above 0"),
    (C, ["simulate", "--speed", "fast"], {}, "speed"),
    (C, ["simulate", "--shards", "-1"], {}, "--shards"),
    (C, ["simulate", "--truth", "{no-dir/truth.csv}"], {}, "does not exist"),
    (C, ["simulate", "--mqtt-url", "tcp://host:1883"], {}, "mqtt://"),
    (C, ["simulate", *UNKNOWN_KEY], {}, "no_such_setting"),
    (C, ["replay", "{missing.edf}"], {}, "no such file"),
    (C, ["replay", "{garbage.edf}", "--speed", "max"], {}, "not an EDF"),
    (C, ["replay", "{night.edf}", "--frame-s", "-1"], {}, "above 0"),
    (C, ["replay", "{night.edf}", "--mqtt-url", "mqtt://"], {}, "host"),
    (C, ["record", "--out", "{no-dir/night.bdf}"], {}, "does not exist"),
    (C, ["record", "--out", "{night.bdf}", "--duration", "soon"], {}, "not a number"),
    (C, ["record", "--out", "{night.bdf}", *UNKNOWN_KEY], {}, "no_such_setting"),
    (C, ["lsl", "--stream", "EMG", "--frame-s", "0"], {}, "above 0"),
    (C, ["lsl", "--stream", "EMG", "--mqtt-url", "bad"], {}, "mqtt://"),
    (C, ["run", "--duration", "-1"], {}, "above 0"),
    (C, ["run", "--frame-s", "none"], {}, "not a number"),
    (C, ["scan", "--timeout", "-1"], {}, "above 0"),
    (C, ["profiles", "--bogus"], {}, "--bogus"),
    (C, ["check-config", "--mqtt-url", "mqtt://host:port"], {}, "port"),
    (C, ["check-config", "--spool-max-mb", "-1"], {}, "--spool-max-mb"),
    (C, ["check-config", "--spool-path", "{a_file.txt/spool.db}"], {}, "is a file"),
    (C, ["check-config", "--patient", "Jane Doe"], {}, "--patient"),
    (C, ["check-config", *UNKNOWN_KEY], {}, "no_such_setting"),
    (C, ["check-config"], {"CRAMP_MQTT_ULR": "mqtt://h:1883"}, "did you mean CRAMP_MQTT_URL?"),
    (C, ["check-config", "--mqtt-url", "mqtt://h:1883", "--mqtt-ca-file", "{a_file.txt}"], {}, "mqtts://"),
    (C, ["check-config", "--mqtt-url", "mqtts://u@h:8883", "--mqtt-password-file", "{missing}"], {}, "does not exist"),
    # provision: checked before any account or secret is written
    (C, ["provision", *PASSWD], {}, "--device"),
    (C, ["provision", *PASSWD, "--device", "d 1"], {}, "--device"),
    (C, ["provision", *PASSWD, "--device", "d1", "--mosquitto-passwd", "{missing}"], {}, "mosquitto_passwd"),
    (C, ["provision", *PASSWD, "--device", "d1", "--mqtt-url", "mqtt://u:p@h"], {}, "without a user"),
    (C, ["provision", "--device", "d1"], {}, "--passwd-file"),
    # the TLS and password files of the detector's broker connection
    (D, ["serve", "--mqtt-url", "mqtts://h:8883", "--mqtt-ca-file", "{missing.pem}"], {}, "does not exist"),
    (D, ["serve", "--mqtt-url", "mqtts://h:8883", "--mqtt-cert-file", "{a_file.txt}"], {}, "--mqtt-key-file"),
    (D, ["serve"], {"CRAMP_MODLE": "{nope.skops}"}, "did you mean CRAMP_MODEL?"),
]


def _expand(text: str, files: Files) -> str:
    # "{name}" is a file of the fixture folder (it need not exist: "missing" ones are the point).
    if text.startswith("{") and text.endswith("}"):
        return files.path(text[1:-1])
    return text


def _case_id(case: Case) -> str:
    program, argv, env, _ = case
    return " ".join([program.removeprefix("cramp-"), *(f"{k}=" for k in env), *argv])


def test_every_command_has_a_bad_input_case() -> None:
    covered = {(program, argv[0]) for program, argv, _, _ in CASES if argv}
    for program, commands in ((D, DETECTOR_COMMANDS), (C, COLLECTOR_COMMANDS)):
        for command in commands:
            assert (program, command.NAME) in covered, f"no bad-input case for {program} {command.NAME}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_is_one_error_line_and_exit_2(
    case: Case, files: Files, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    program, argv, env, fragment = case
    for name, value in env.items():
        monkeypatch.setenv(name, _expand(value, files))
    code = PROGRAMS[program]([_expand(a, files) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert code == 2, f"exit code {code}; stderr: {err}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith(f"{program}") and ": error: " in lines[0], lines[0]
    assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def test_help_lists_every_command_in_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    for program, commands in ((D, DETECTOR_COMMANDS), (C, COLLECTOR_COMMANDS)):
        with pytest.raises(SystemExit) as done:
            PROGRAMS[program](["--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        epilog = text.split("\ncommands:\n", 1)[1]
        for command in commands:
            assert f"\n  {command.NAME} " in f"\n{epilog}", f"{program} --help does not list {command.NAME}"
        assert "``" not in text  # no RST markup in a terminal
        assert max(len(line) for line in epilog.splitlines()) <= 110


# ------------------------------------------------------------------------------------------ check-config


def test_detector_check_config_round_trips_and_masks_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [
        "check-config",
        "--mqtt-url",
        "mqtts://det:broker-pw@broker.example:8883",
        "--influx-url",
        "http://influx.example:8086",
        "--influx-token",
        "influx-secret",
        "--topic-prefix",
        "ward/7",
        "--session-expiry-s",
        "600",
        "--events-file",
        str(tmp_path / "events.jsonl"),
        "--publish-events",
        "false",
    ]
    assert detector.cli.main(argv) == 0
    printed = capsys.readouterr()
    assert "broker-pw" not in printed.out + printed.err and "influx-secret" not in printed.out + printed.err
    assert "mqtts://det:***@broker.example:8883" in printed.out  # masked, but still shows where it goes
    toml_file = tmp_path / "detector.toml"
    toml_file.write_text(printed.out)
    assert "mqtt_url" not in tomllib.loads(printed.out)  # a masked setting is a comment: it loads back unset

    # Loading it back with the secrets from the environment gives the same settings and the same TOML.
    monkeypatch.setenv("CRAMP_MQTT_URL", "mqtts://det:broker-pw@broker.example:8883")
    monkeypatch.setenv("CRAMP_INFLUX_TOKEN", "influx-secret")
    assert detector.cli.main(["check-config", "--config", str(toml_file)]) == 0
    assert capsys.readouterr().out == printed.out
    args = detector.cli.build_parser().parse_args(argv)
    original = settings_mod.load(DetectorSettings, args)
    reloaded = settings_mod.load(
        DetectorSettings, detector.cli.build_parser().parse_args(["serve", "--config", str(toml_file)])
    )
    assert reloaded == original


def test_collector_check_config_round_trips_and_masks_the_mqtt_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRAMP_MQTT_URL", "mqtt://bedside:s3cret-pw@10.0.0.2:1883")
    argv = ["check-config", "--patient", "p-017", "--spool-path", str(tmp_path / "spool.db"), "--spool-sync", "full"]
    assert collector.cli.main(argv) == 0
    printed = capsys.readouterr()
    assert "s3cret-pw" not in printed.out + printed.err
    assert "bedside:***@10.0.0.2" in printed.out
    toml_file = tmp_path / "collector.toml"
    toml_file.write_text(printed.out)
    assert collector.cli.main(["check-config", "--config", str(toml_file)]) == 0
    assert capsys.readouterr().out == printed.out
    original = settings_mod.load(CollectorSettings, collector.cli.build_parser().parse_args(argv))
    reloaded = settings_mod.load(
        CollectorSettings, collector.cli.build_parser().parse_args(["check-config", "--config", str(toml_file)])
    )
    assert reloaded == original
    assert reloaded.spool_path == tmp_path / "spool.db" and reloaded.spool_sync == "full"


def test_help_never_shows_a_secret_default(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DetectorSettings.model_fields["influx_token"], "default", "default-secret")
    with pytest.raises(SystemExit):
        detector.cli.main(["serve", "--help"])
    assert "default-secret" not in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- detect


def test_detect_rows_name_the_file_and_the_summary_counts_every_type(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "events.csv"
    assert detector.cli.main(["detect", files.path("night.edf"), "--out", str(out)]) == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert " cramp, " in summary and " spasm, " in summary and " plm)" in summary
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert rows, "the simulated night has events"
    assert {(r["patient"], r["device"]) for r in rows} == {("", "night")}

    assert detector.cli.main(["detect", files.path("night.edf"), "--out", str(out), "--patient", "p-017"]) == 0
    assert {(r["patient"], r["device"]) for r in csv.DictReader(out.read_text().splitlines())} == {("p-017", "night")}


def test_annotate_without_events_detects_them(files: Files, tmp_path: Path) -> None:
    from crampwatch.formats import read_recording

    out = tmp_path / "scored.edf"
    assert detector.cli.main(["annotate", files.path("night.edf"), "--out", str(out)]) == 0
    before = read_recording(files.path("night.edf")).annotations
    assert len(read_recording(out).annotations) > len(before)


def test_evaluate_lists_a_recording_with_a_bad_truth_file_and_exits_1(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad truth file fails that recording, not the run: it is listed, as `batch` lists a bad file."""
    night = _expand("{night.edf}", files)
    code = PROGRAMS[D](["evaluate", night, "--truth", night, "--detector", "rms", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("FAILED")] == [
        f"FAILED {night}: RecordingError: {night}: not a CSV text file; give a CSV with columns "
        "type,onset_s,offset_s[,subtype] (as detect writes)"
    ]
