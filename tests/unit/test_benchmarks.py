"""The benchmark command's plumbing (the numbers themselves come only from running it)."""

from __future__ import annotations

import sys

import pytest

from benchmarks.run import BENCHMARKS, Row, main, run_child, table


def test_every_benchmark_of_the_issue_is_registered() -> None:
    assert {"offline", "startup", "pipeline"} <= set(BENCHMARKS)


def test_an_unknown_benchmark_is_refused_by_name() -> None:
    with pytest.raises(SystemExit) as info:
        main(["nosuch"])
    assert info.value.code == 2


def test_a_child_is_measured_on_its_own() -> None:
    child = run_child([sys.executable, "-c", "import sys; x = bytearray(50_000_000); print(len(x))"])
    assert child.stdout.strip() == "50000000"
    assert child.max_rss_mb >= 50  # its own peak, not this process's
    assert child.wall_s > 0 and child.cpu_s >= 0


def test_a_failing_child_stops_the_benchmark_with_its_error() -> None:
    with pytest.raises(SystemExit, match="boom"):
        run_child([sys.executable, "-c", "raise SystemExit('boom')"])


def test_table_lines_up_the_columns() -> None:
    text = table([Row("offline", "detect wall", 4.25, "s"), Row("startup", "x", 1234.0, "MB", "note")])
    lines = text.splitlines()
    assert lines[1].index("4.25") + len("4.25") == lines[2].index("1,234") + len("1,234")


def test_the_benchmarks_own_memory_is_not_counted_as_the_childs() -> None:
    """Linux carries the peak RSS across exec: spawned directly, a child reported the parent's memory."""
    ballast = b"\x01" * 200_000_000  # written pages: this process's RSS is over 200 MB
    child = run_child([sys.executable, "-S", "-c", "pass"])
    assert len(ballast) and child.max_rss_mb < 100


def test_live_capacity_runs_the_service_in_rounds() -> None:
    """``live --capacity`` (the detector's CPU per patient, no broker): every frame of every patient goes
    through the service, in one round per frame slot, without errors or rejected frames."""
    from benchmarks import live

    old = live.FRAME_S
    live.FRAME_S = 1.0
    try:
        result = live.capacity(3, 20.0, live.render(20.0, templates=2))
    finally:
        live.FRAME_S = old
    assert result["messages"] == 3 * 2 * 20
    assert result["internal_errors"] == 0 and result["rejected_frames"] == 0
    assert result["state_kib_per_stream"] > 0
