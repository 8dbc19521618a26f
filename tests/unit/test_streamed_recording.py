"""``detect`` streams EDF/BDF from the file: the same frames, features and checks as reading it whole.

Why: an 8-hour 1 kHz night held whole took 820 MB (issue 16); :func:`crampwatch.formats.open_recording`
reads it a block at a time. These tests prove nothing changes but the memory: every frame is equal to the
frame cut from the whole recording, and the file's checks still run.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from crampwatch.errors import RecordingError
from crampwatch.formats import open_recording, read_recording
from crampwatch.formats.edf import write_edf
from crampwatch.formats.registry import _checked
from crampwatch.frames import StreamKind
from crampwatch.recording import STREAM_BLOCK_S, Annotation, Recording, Signal, StreamedRecording
from crampwatch.simulate import SimParams, simulate
from detector.offline import run_recording


@pytest.fixture(scope="module")
def night_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Longer than two read blocks, with a recorder gap, so frames span blocks and holes are cut.
    rec = simulate(2 * STREAM_BLOCK_S + 37.0, 5, params=SimParams(emg_rate_hz=500.0), event_density=4)
    gapped = Recording(rec.emg, rec.acc, (*rec.annotations, Annotation("gap", 30.0, 41.0, "emg")))
    path = tmp_path_factory.mktemp("streamed") / "night.bdf"
    write_edf(gapped, path)
    return path


def test_an_edf_is_streamed_and_closed(night_file: Path) -> None:
    n_samples = read_recording(night_file).emg.n_samples
    rec = open_recording(night_file)
    assert isinstance(rec, StreamedRecording)
    with rec:
        assert rec.emg.n_samples == n_samples
        # pyedflib refuses to open a file that is open: the file is held while streaming ...
        with pytest.raises(RecordingError, match="already been opened"):
            read_recording(night_file)
    # ... and closed after it.
    assert read_recording(night_file).emg.n_samples == n_samples


@pytest.mark.parametrize("frame_s", [30.0, 0.25])
def test_streamed_frames_equal_the_frames_of_the_whole_recording(night_file: Path, frame_s: float) -> None:
    whole = list(read_recording(night_file).frames(frame_s))
    with open_recording(night_file) as streamed:
        assert isinstance(streamed, StreamedRecording)
        frames = list(streamed.frames(frame_s))
    assert len(frames) == len(whole)
    for got, want in zip(frames, whole, strict=True):
        assert (got.kind, got.seq, got.t0_ns, got.flags, got.channels) == (
            want.kind,
            want.seq,
            want.t0_ns,
            want.flags,
            want.channels,
        )
        np.testing.assert_array_equal(got.data, want.data)


def test_detection_on_the_streamed_file_is_the_same(night_file: Path) -> None:
    whole = run_recording(read_recording(night_file), None, keep_features=True)
    with open_recording(night_file) as streamed:
        assert isinstance(streamed, StreamedRecording)
        out = run_recording(streamed, None, keep_features=True)
    assert out.features is not None and whole.features is not None
    np.testing.assert_array_equal(out.features, whole.features)
    assert out.summaries == whole.summaries


def test_a_flat_channel_is_still_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = simulate(20.0, 6, params=SimParams(emg_rate_hz=500.0))
    data = rec.emg.data.copy()
    data[:, 1] = 0.0
    path = tmp_path / "flat.edf"
    write_edf(Recording(Signal(StreamKind.EMG, 500.0, rec.emg.channel_names, data)), path)
    with caplog.at_level(logging.WARNING, logger="crampwatch.formats"), open_recording(path) as streamed:
        assert isinstance(streamed, StreamedRecording)
        list(streamed.frames(30.0))
    assert f"{rec.emg.channel_names[1]!r} is flat" in caplog.text and "lead-off" in caplog.text


def test_non_finite_samples_in_a_block_are_refused(night_file: Path) -> None:
    with open_recording(night_file) as streamed:
        assert isinstance(streamed, StreamedRecording)
        read_block = streamed.emg.read

        # pyedflib cannot produce NaN from a valid file; a reader that did is refused all the same.
        def read(start: int, count: int) -> npt.NDArray[np.float64]:
            block = read_block(start, count)
            block[3, 0] = np.nan
            return block

        signal = _checked(str(night_file), dataclasses.replace(streamed.emg, read=read))
        with pytest.raises(RecordingError, match="NaN or infinite, the first at sample 1003"):
            signal.read(1000, 50)


def test_formats_that_cannot_stream_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "night.csv"
    rec = simulate(5.0, 7, params=SimParams(emg_rate_hz=500.0))
    t = np.arange(rec.emg.n_samples) / rec.emg.rate_hz
    header = "time_s," + ",".join(f"{n} [uV]" for n in rec.emg.channel_names)
    np.savetxt(path, np.column_stack([t, rec.emg.data]), delimiter=",", header=header, comments="")
    assert isinstance(open_recording(path), Recording)


@pytest.mark.parametrize("suffix", [".edf", ".bdf"])
def test_records_are_decoded_with_numpy_to_pyedflibs_values(tmp_path: Path, suffix: str) -> None:
    """The fast path is really taken (not a silent fallback), and gives pyedflib's values bit for bit."""
    from crampwatch.formats.edf import _describe, _open, _read_block, _RecordReader

    rec = simulate(7.5, 9, params=SimParams(emg_rate_hz=512.0, n_emg_channels=3))
    path = tmp_path / f"night{suffix}"
    write_edf(rec, path)
    with _open(path) as f:
        emg, acc, _, _ = _describe(str(path), f, emg=None, acc=None)
        for kind, channels in ((StreamKind.EMG, emg), (StreamKind.ACC, acc)):
            reader = _RecordReader.open(str(path), f, kind, channels)
            assert reader is not None
            n = min(f.samples_in_file(c.index) for c in channels)
            for start, count in ((0, n), (reader.per_record - 3, 7), (n - 100, 100)):
                ours, theirs = np.empty((count, len(channels))), np.empty((count, len(channels)))
                reader.read(start, count, out=ours)
                _read_block(str(path), f, kind, channels, start, count, out=theirs)
                np.testing.assert_array_equal(ours, theirs)


def test_a_file_numpy_would_decode_differently_is_read_through_pyedflib(
    night_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crampwatch.formats.edf import _RecordReader

    real = _RecordReader.read

    def off_by_one_count(self: _RecordReader, start: int, count: int, *, out: npt.NDArray[np.float64]) -> None:
        real(self, start, count, out=out)
        out += self.bitvalue  # what a layout or arithmetic we got wrong would look like

    monkeypatch.setattr(_RecordReader, "read", off_by_one_count)
    whole = read_recording(night_file)
    with open_recording(night_file) as streamed:
        assert isinstance(streamed, StreamedRecording)
        np.testing.assert_array_equal(streamed.emg.read(0, 5000), whole.emg.data[:5000])
