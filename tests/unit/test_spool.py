"""The on-disk spool on its own: order, persistence across reopen, the disk bound, the process lock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from collector.spool import ROW_OVERHEAD, Spool, SpoolError

TOPIC = "cramp/v1/p1/dev1/emg"


def _fill(spool: Spool, n: int, size: int = 100, topic: str = TOPIC, first_seq: int = 0) -> list[int]:
    return [spool.append(topic, first_seq + i, bytes([i % 256]) * size) for i in range(n)]


def test_rows_come_back_in_append_order_and_are_deleted_by_id(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        ids = _fill(spool, 10)
        assert ids == sorted(ids)
        assert [r.seq for r in spool.after(0, 100)] == list(range(10))
        assert [r.seq for r in spool.after(ids[4], 3)] == [5, 6, 7]
        assert spool.delete([ids[0], ids[2], 999_999]) == 2  # unknown ids are ignored
        assert spool.count == 8
        assert [r.seq for r in spool.get([ids[3], ids[1], ids[2]])] == [1, 3]


def test_frames_and_stream_numbering_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "spool.db"  # parent directories are created
    with Spool(path) as spool:
        ids = _fill(spool, 5, first_seq=40)
        spool.delete(ids[:3])
        bytes_before = spool.bytes
    with Spool(path) as spool:
        assert spool.count == 2
        assert spool.bytes == bytes_before
        assert [r.seq for r in spool.after(0, 10)] == [43, 44]
        assert spool.last_seq(TOPIC) == 44  # remembered even for delivered frames
        assert spool.last_seq("other/topic") is None
        assert spool.last_id == ids[-1]


def test_row_ids_are_never_reused_after_the_spool_drains(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        ids = _fill(spool, 3)
        spool.delete(ids)
        assert spool.count == 0
    with Spool(path) as spool:
        new = spool.append(TOPIC, 3, b"x")
        assert new > ids[-1]


def test_at_the_bound_the_oldest_frames_are_dropped_with_a_loud_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    row = 1000 + len(TOPIC) + ROW_OVERHEAD
    with Spool(tmp_path / "s.db", max_bytes=10 * row) as spool, caplog.at_level(logging.WARNING):
        _fill(spool, 8, size=1000)
        assert "80 % full" in caplog.text
        assert spool.stats.dropped_frames == 0
        _fill(spool, 5, size=1000, first_seq=8)
        assert spool.count == 10
        assert spool.bytes <= 10 * row
        assert spool.stats.dropped_frames == 3
        assert spool.stats.dropped_bytes == 3 * row
        assert [r.seq for r in spool.after(0, 100)] == list(range(3, 13))  # newest kept, oldest gone
        assert "dropping the OLDEST" in caplog.text


def test_a_frame_bigger_than_the_bound_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=500) as spool, pytest.raises(SpoolError, match="--spool-max-mb"):
        spool.append(TOPIC, 0, b"x" * 1000)


def test_two_collectors_cannot_share_a_spool(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path), pytest.raises(SpoolError, match="in use by another collector"):
        Spool(path)
    Spool(path).close()  # released on close


def test_a_file_that_is_not_a_database_is_reported_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SpoolError, match="move it aside"):
        Spool(path)


def test_in_memory_spool_behaves_the_same(tmp_path: Path) -> None:
    with Spool(None) as spool:
        ids = _fill(spool, 3)
        spool.delete(ids[:1])
        assert [r.seq for r in spool.after(0, 10)] == [1, 2]


def test_sync_full_is_accepted_and_bad_modes_are_not(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", sync="full") as spool:
        _fill(spool, 2)
    with pytest.raises(SpoolError, match="normal"):
        Spool(tmp_path / "t.db", sync="fast")  # type: ignore[arg-type]


def test_detector_confirmation_refuses_a_paho_without_the_resend_backlog_it_clears() -> None:
    """Detector confirmation clears paho's resend backlog on every connect (private paho 2.1/2.2 state); a
    paho without it would resend ahead of the probe, so the publisher refuses at once and says the fix."""
    from collector.publisher import FramePublisher
    from crampwatch.errors import CrampWatchError
    from crampwatch.mqtt import make_client

    client = make_client("mqtt://127.0.0.1:1", "offline")
    FramePublisher(client, "cramp/v1", "p1", "leg", confirm="detector").close(timeout_s=0.1)
    del client._out_messages  # as if paho kept its backlog elsewhere
    with pytest.raises(CrampWatchError, match=r"paho-mqtt 2\.1 or 2\.2, or use confirm = 'broker'"):
        FramePublisher(client, "cramp/v1", "p1", "leg", confirm="detector")
