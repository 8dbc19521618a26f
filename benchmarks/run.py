"""Speed and memory benchmarks: ``python -m benchmarks.run [NAME ...] [--json PATH]``.

Prints a table and, with ``--json``, writes every number. Asserts nothing: timed tests are flaky, numbers
in a log are useful. Each benchmark is a function in ``BENCHMARKS`` (name -> function of the parsed
arguments returning rows); to add one, write the function and add it there. Run some by name
(``python -m benchmarks.run startup offline``); without names all of them run.

- ``offline``: an 8-h night (``--hours``; two EMG channels at 1 kHz, a 3-axis accelerometer at 50 Hz) is
  simulated and written to an EDF in a temporary folder, then ``cramp-detector detect`` runs on it in a
  fresh process: wall time, x real time, CPU time and peak RSS of that process (``os.wait4``). On the same
  file, in the same run, the tuned NeuroKit2 pipeline (:mod:`benchmarks.neurokit_pipeline`, needs the
  ``bench`` extra), and the ratio of the two.
- ``startup``: ``cramp-detector --help`` and ``cramp-collector --help``, and loading the model, each in a
  fresh process.
- ``live``, ``broker``, ``soak`` (``python -m benchmarks.run NAME --help``): real mosquitto (and influxd),
  see :data:`PROGRAMS`; ``cohort``: ``cramp-detector batch`` over 100 short nights with 1 and 2 Dask workers.
- ``pipeline``: the pipeline fed 0.25 s frames in this process, as the service is fed from MQTT, and wire
  encode + decode of those frames.

Wall times are the best of ``--repeat`` runs (the machine is shared: the best run is the one least
disturbed); CPU times (user + system of the measured process) are shown beside them, since they move
less with the load. ``--hours 1`` gives a quick run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One measured number."""

    benchmark: str
    measure: str
    value: float
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Run:
    """One finished child process."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stdout: str
    stderr: str


#: Runs a program and writes its wall time and rusage as JSON. A small interpreter stands between this
#: process and the measured one: Linux carries a process's peak RSS across exec, and a child spawned
#: straight from a benchmark that had just simulated an 8-h night reported that night's memory as its own.
_LAUNCHER = """
import json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as fh:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
               "code": os.waitstatus_to_exitcode(status)}, fh)
"""


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` to its end; wall time, CPU time and peak RSS of exactly that process (``os.wait4``).

    The peak RSS includes the few MB of the small launcher interpreter it was spawned from.
    """
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "usage.json"
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(report), *argv]
            subprocess.run(launcher, stdout=fo, stderr=fe, env=env, check=False)
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        if not report.exists():
            raise SystemExit(f"benchmarks.run: could not start {' '.join(argv)}:\n{stderr[-2000:]}")
        usage = json.loads(report.read_text())
    if usage["code"] != 0:
        raise SystemExit(f"benchmarks.run: {' '.join(argv)} failed ({usage['code']}):\n{stderr[-2000:]}")
    return Run(usage["wall"], usage["cpu"], usage["maxrss_kb"] / 1024, stdout, stderr)


def best_of(n: int, argv: Sequence[str]) -> tuple[Run, float]:
    """The run with the least wall time of ``n``, and the largest peak RSS among them."""
    runs = [run_child(argv) for _ in range(n)]
    return min(runs, key=lambda r: r.wall_s), max(r.max_rss_mb for r in runs)


def program(name: str, module: str) -> list[str]:
    """The installed console script beside this interpreter, else ``python -m module``."""
    script = shutil.which(name, path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", module]


# ------------------------------------------------------------------------------------------- offline


def write_night(path: Path, hours: float, seed: int) -> float:
    """Simulate a night (2 x EMG 1 kHz, ACC 50 Hz) and write it as EDF+; returns seconds spent simulating."""
    from crampwatch.formats.edf import write_edf
    from crampwatch.simulate import Night, SimParams

    started = time.perf_counter()
    rec = Night(hours * 3600, seed, params=SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0)).recording()
    simulated = time.perf_counter() - started
    write_edf(rec, path)
    return simulated


def offline(args: argparse.Namespace) -> list[Row]:
    seconds = args.hours * 3600
    rows = []
    with tempfile.TemporaryDirectory(prefix="cramp-bench-") as tmp:
        edf = Path(tmp) / "night.edf"
        # In a child, so that this process stays small (see _LAUNCHER).
        made = run_child(
            [sys.executable, "-m", "benchmarks.run", "--write-night", str(edf), "--hours", str(args.hours)]
        )
        sim_s, write_s = (float(x) for x in made.stdout.split())
        note = f"{args.hours:g} h, EMG 1 kHz x 2 + ACC 50 Hz x 3, {edf.stat().st_size / 1e6:.0f} MB"
        rows.append(Row("offline", "simulate night", seconds / sim_s, "x real time", note))
        rows.append(Row("offline", "write EDF", write_s, "s", note))

        detect = [*program("cramp-detector", "detector"), "detect", str(edf), "--out", str(Path(tmp) / "ev.csv")]
        best, rss = best_of(args.repeat, detect)
        found = re.search(r"(\d+) event\(s\).* in ([0-9.]+) s", best.stderr)
        events = f"{found[1]} events" if found else "?"
        rows += [
            Row("offline", "detect wall", best.wall_s, "s", f"fresh process, best of {args.repeat}; {events}"),
            Row("offline", "detect x real time", seconds / best.wall_s, "x real time", "whole command"),
            Row("offline", "detect CPU", best.cpu_s, "s", "user + system of the detect process"),
            Row("offline", "detect peak RSS", rss, "MB", "largest of the runs"),
        ]
        if found:
            rows.append(Row("offline", "detect pipeline", float(found[2]), "s", "detect's own timer: after load"))

        if args.no_neurokit:
            return rows
        nk_argv = [sys.executable, "-m", "benchmarks.neurokit_pipeline", str(edf)]
        nk, nk_rss = best_of(args.repeat, nk_argv)
        rows += [
            Row("offline", "neurokit2 wall", nk.wall_s, "s", f"tuned pipeline, same file; {nk.stdout.strip()}"),
            Row("offline", "neurokit2 CPU", nk.cpu_s, "s", "user + system"),
            Row("offline", "neurokit2 peak RSS", nk_rss, "MB", ""),
            Row("offline", "detect vs neurokit2", nk.wall_s / best.wall_s, "x faster", "wall time ratio"),
        ]
    return rows


# ------------------------------------------------------------------------------------------- startup

_LOAD_MODEL = """
import json, time
t0 = time.perf_counter()
from detector.model import load_model
t1 = time.perf_counter()
load_model()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1}))
"""


def startup(args: argparse.Namespace) -> list[Row]:
    rows = []
    n = max(5, args.repeat)
    for name, module in (("cramp-detector", "detector"), ("cramp-collector", "collector")):
        best, rss = best_of(n, [*program(name, module), "--help"])
        rows.append(Row("startup", f"{name} --help", best.wall_s, "s", f"best of {n}; CPU {best.cpu_s:.3f} s"))
        rows.append(Row("startup", f"{name} --help peak RSS", rss, "MB", ""))
    m = max(3, args.repeat)
    runs = [run_child([sys.executable, "-c", _LOAD_MODEL]) for _ in range(m)]
    timings = [json.loads(r.stdout) for r in runs]
    best = min(runs, key=lambda r: r.wall_s)
    rows += [
        Row(
            "startup",
            "model load",
            min(t["load"] for t in timings),
            "s",
            f"load_model() after its imports, best of {m}",
        ),
        Row("startup", "model import + load", min(t["import"] + t["load"] for t in timings), "s", "fresh process"),
        Row("startup", "model load process", best.wall_s, "s", f"whole process; CPU {best.cpu_s:.2f} s"),
        Row("startup", "model load peak RSS", max(r.max_rss_mb for r in runs), "MB", ""),
    ]
    return rows


# ------------------------------------------------------------------------------------------ pipeline


def pipeline(args: argparse.Namespace) -> list[Row]:
    import numpy as np

    from crampwatch import wire
    from crampwatch.simulate import Night, SimParams
    from detector.model import load_model
    from detector.stream import DeviceStreams

    seconds = args.live_minutes * 60
    rec = Night(seconds, args.seed, params=SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0)).recording()
    frames = list(rec.frames(0.25))
    model = load_model()
    streams = DeviceStreams(model, "bench", "dev", expect_acc=True)
    started = time.perf_counter()
    for f in frames:
        streams.on_frame(f)
    streams.finish()
    dt = time.perf_counter() - started
    note = f"{len(frames)} frames of 0.25 s, one device, in this process"
    rows = [
        Row("pipeline", "pipeline", seconds / dt, "x real time", note),
        Row("pipeline", "pipeline frames", len(frames) / dt, "frames/s", note),
    ]
    sample = frames[:2000]
    payloads = [wire.encode(f) for f in sample]
    started = time.perf_counter()
    for f in sample:
        wire.encode(f)
    for p in payloads:
        wire.decode(p)
    dt = time.perf_counter() - started
    size = float(np.mean([len(p) for p in payloads]))
    rows.append(Row("pipeline", "wire encode + decode", len(payloads) / dt, "frames/s", f"{size:.0f} B each"))
    return rows


#: Every benchmark, by name: a function of the parsed arguments that returns its rows. Add yours here.
BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "startup": startup,
    "offline": offline,
    "pipeline": pipeline,
}

#: Benchmarks that start their own servers and take their own flags: ``python -m benchmarks.run NAME
#: --help``. live: patients one detector process sustains through a real broker (latency, memory per
#: stream, frames lost); broker: durable frames/s through the broker and loss at a broker SIGKILL; soak:
#: N real-time patients for M minutes against real mosquitto and influxd; cohort: ``batch`` over N short
#: nights with 1 and 2 Dask workers (wall, CPU, speed-up); failover: N patients through 1 and 2 detector
#: processes, one of them SIGKILLed, against offline detection.
PROGRAMS = {
    "live": "benchmarks.live",
    "broker": "benchmarks.broker",
    "soak": "benchmarks.soak",
    "cohort": "benchmarks.cohort",
    "failover": "benchmarks.failover",
}


# ---------------------------------------------------------------------------------------------- main


def table(rows: Sequence[Row]) -> str:
    def number(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"

    cells = [("benchmark", "measure", "value", "unit", "note")]
    cells += [(r.benchmark, r.measure, number(r.value), r.unit, r.note) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    return "\n".join(
        f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:>{widths[2]}}  {c[3]:<{widths[3]}}  {c[4]}".rstrip()
        for c in cells
    )


def machine() -> dict[str, Any]:
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PROGRAMS:
        import importlib

        return int(importlib.import_module(PROGRAMS[argv[0]]).main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (all); or one of {', '.join(PROGRAMS)} with its own flags",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--hours", type=float, default=8.0, help="offline: night length in hours (default 8)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best wall time kept (3)")
    parser.add_argument("--no-neurokit", action="store_true", help="offline: skip the NeuroKit2 pipeline")
    parser.add_argument("--live-minutes", type=float, default=5.0, help="pipeline: minutes fed as frames (default 5)")
    parser.add_argument("--write-night", type=Path, metavar="EDF", help=argparse.SUPPRESS)  # offline's helper
    args = parser.parse_args(argv)
    if args.write_night:
        started = time.perf_counter()
        simulated = write_night(args.write_night, args.hours, args.seed)
        print(simulated, time.perf_counter() - started - simulated)
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    rows: list[Row] = []
    for name in args.names or list(BENCHMARKS):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        new = BENCHMARKS[name](args)
        print(table(new), flush=True)
        rows += new
    info = machine()
    print(f"\n{info['cpus']} CPUs, load average {info['load_average'][0]:.1f} at the end", flush=True)
    if args.json:
        result = {
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "parent_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "results": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
