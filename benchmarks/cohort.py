"""Cohort benchmark (issue 16, item 4): ``cramp-detector batch`` over N nights with 1 and 2 Dask workers.

``python -m benchmarks.run cohort --nights 100 --minutes 10 --workers 1,2 [--json cohort.json]``

It simulates ``--nights`` short nights (2 EMG channels at 1 kHz, a 3-axis accelerometer at 50 Hz, each
its own seed) and writes them as EDF into a temp folder, then runs ``cramp-detector batch`` on that
folder once per worker count, each in a fresh process. Reported per worker count: wall time, CPU time
(user + system of ``batch`` and of the Dask worker processes it started and reaped, from ``os.wait4``),
the speed-up in wall time against the first worker count, and the load average of the machine before
and after, because on a shared machine the wall time says as much about the neighbours as about Dask.
Every run must find the same events (the summary tables are compared); the program fails otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from benchmarks.run import Run, machine, program, run_child


def write_cohort(folder: Path, nights: int, minutes: float, seed: int) -> float:
    """``nights`` simulated nights as EDF in ``folder``; returns the seconds it took."""
    from crampwatch.formats.edf import write_edf
    from crampwatch.simulate import Night, SimParams

    started = time.perf_counter()
    params = SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0)
    for i in range(nights):
        write_edf(Night(minutes * 60, seed + i, params=params).recording(), folder / f"night-{i:03d}.edf")
    return time.perf_counter() - started


def run(nights: int, minutes: float, workers: Sequence[int], seed: int, workdir: Path) -> dict[str, Any]:
    cohort = workdir / "cohort"
    cohort.mkdir()
    written_s = write_cohort(cohort, nights, minutes, seed)
    result: dict[str, Any] = {
        "nights": nights,
        "minutes_per_night": minutes,
        "write_s": written_s,
        "machine_before": machine(),
        "runs": [],
    }
    tables: list[str] = []
    for n in workers:
        out = workdir / f"out-{n}"
        load_before = os.getloadavg()[0]
        argv = [*program("cramp-detector", "detector"), "batch", str(cohort), "--out", str(out)]
        done: Run = run_child([*argv, "--workers", str(n), "--no-progress"])
        tables.append((out / "summary.csv").read_text())
        result["runs"].append(
            {
                "workers": n,
                "wall_s": done.wall_s,
                "cpu_s": done.cpu_s,
                "peak_rss_mb": done.max_rss_mb,
                "load_before": load_before,
                "load_after": os.getloadavg()[0],
                "night_hours_per_wall_s": nights * minutes / 60 / done.wall_s,
            }
        )
    if any(t != tables[0] for t in tables):
        raise SystemExit("benchmarks.cohort: the runs found different events (summary.csv differs)")
    first = result["runs"][0]["wall_s"]
    for r in result["runs"]:
        r["speedup"] = first / r["wall_s"]
    result["machine_after"] = machine()
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['nights']} nights x {result['minutes_per_night']:g} min "
        f"(written in {result['write_s']:.0f} s), same summary in every run",
        f"{'workers':>7}  {'wall s':>7}  {'CPU s':>7}  {'speed-up':>8}  {'load before/after':>17}",
    ]
    for r in result["runs"]:
        load = f"{r['load_before']:.1f} / {r['load_after']:.1f}"
        lines.append(f"{r['workers']:>7}  {r['wall_s']:>7.1f}  {r['cpu_s']:>7.1f}  {r['speedup']:>8.2f}  {load:>17}")
    m = result["machine_after"]
    lines.append(f"{m['cpus']} CPUs, {m['platform']}, Python {m['python']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run cohort",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nights", type=int, default=100, help="simulated nights (default 100)")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes per night (default 10)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, like 1,2 (default)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first night (default 1000)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers {args.workers!r}: give worker counts like 1,2")
    if args.nights < 1 or not args.minutes > 0 or not workers or min(workers) < 1:
        parser.error("--nights and every worker count must be at least 1, --minutes positive")
    with TemporaryDirectory(prefix="cramp-cohort-") as tmp:
        result = run(args.nights, args.minutes, workers, args.seed, Path(tmp))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
