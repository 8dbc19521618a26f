"""Cut filtered streams into analysis windows as samples arrive.

The EMG stream sets the clock: every 10 segments of ~50 ms (one *hop*, ~0.5 s) completes a window. A
window is the last 2 hops of band-limited EMG (~1 s) plus the 50 ms envelope over the last ~4 s. The
accelerometer is windowed at the same end times (last 2 s), so EMG and ACC line up by device time.

Samples before a stream's first sample are treated as silence (EMG) or as the first reading (ACC), the
same whether the stream arrives frame by frame or as a whole file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .features import StreamFilter, acc_filter, emg_filter

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

SEG_S = 0.05
SEGS_PER_HOP = 10
HOPS_PER_WINDOW = 2
ENV_SEGMENTS = 80
ACC_WINDOW_S = 2.0
# A window's RMS and peak are combined from whole hops, and the lookback is whole hops.
assert ENV_SEGMENTS % SEGS_PER_HOP == 0 and ENV_SEGMENTS >= HOPS_PER_WINDOW * SEGS_PER_HOP


@dataclass(frozen=True, slots=True)
class EmgWindows:
    """Windows completed by one push: ``first`` is the index of the first of them.

    The samples stay in one channel-major block (the lookback plus the new hops), so every reduction runs
    along contiguous rows; a window's samples or envelope are gathered only for the channel a feature needs.
    """

    first: int
    block: FloatArray  # (channels, samples): band-limited EMG, the lookback then the new hops
    seg: FloatArray  # (channels, segments): RMS of each 50 ms segment of the block
    rms: FloatArray  # (n, channels): RMS of each window
    peak: FloatArray  # (n, channels): largest |sample| of each window
    seg_rms: FloatArray  # (n, SEGS_PER_HOP, channels): RMS of each 50 ms segment of each window's new hop
    seg_peak: FloatArray  # (n, SEGS_PER_HOP, channels): largest |sample| of those segments
    win_len: int
    seg_len: int

    @property
    def count(self) -> int:
        return int(self.rms.shape[0])

    def windows(self, channel: IntArray) -> FloatArray:
        """``(n, win_len)``: the samples of window ``i`` on channel ``channel[i]``."""
        hop = self.win_len // HOPS_PER_WINDOW
        starts = self.block.shape[1] - self.count * hop - self.win_len + hop * (1 + np.arange(self.count))
        # One gather (a C-contiguous copy, as indexing a sliding_window_view gave, with less overhead).
        out: FloatArray = self.block[channel[:, None], starts[:, None] + np.arange(self.win_len)]
        return out

    def envelope(self, channel: IntArray) -> FloatArray:
        """``(n, ENV_SEGMENTS)``: the 50 ms RMS envelope of the ~4 s up to window ``i``'s end, on ``channel[i]``."""
        ends = self.seg.shape[1] - self.count * SEGS_PER_HOP + SEGS_PER_HOP * (1 + np.arange(self.count))
        out: FloatArray = self.seg[channel[:, None], (ends - ENV_SEGMENTS)[:, None] + np.arange(ENV_SEGMENTS)]
        return out


def _empty_windows(first: int, n_channels: int, win_len: int, seg_len: int) -> EmgWindows:
    no_segs = np.zeros((0, SEGS_PER_HOP, n_channels))
    none = np.zeros((0, n_channels))
    return EmgWindows(
        first, np.zeros((n_channels, 0)), np.zeros((n_channels, 0)), none, none, no_segs, no_segs, win_len, seg_len
    )


class EmgWindower:
    """Band-limits EMG and yields complete windows as hops fill up."""

    def __init__(self, rate_hz: float, n_channels: int) -> None:
        self.rate_hz = rate_hz
        self.n_channels = n_channels
        self.seg_len = max(1, round(SEG_S * rate_hz))
        self.hop_len = SEGS_PER_HOP * self.seg_len
        self.win_len = HOPS_PER_WINDOW * self.hop_len
        self.lookback = ENV_SEGMENTS * self.seg_len
        self._filter = StreamFilter(emg_filter(rate_hz), n_channels)
        self._history = np.zeros((n_channels, self.lookback))  # channel-major, like the blocks
        self._pending = np.zeros((0, n_channels))
        self.windows_done = 0

    @property
    def hop_s(self) -> float:
        """Exact hop duration (segments are a whole number of samples)."""
        return self.hop_len / self.rate_hz

    @property
    def seg_s(self) -> float:
        return self.seg_len / self.rate_hz

    def window_end_s(self, index: int) -> float:
        """Time of the end of window ``index``, seconds from the stream start."""
        return (index + 1) * self.hop_len / self.rate_hz

    def window_ends_s(self, first: int, stop: int) -> FloatArray:
        """End times of windows ``first..stop-1``."""
        out: FloatArray = (np.arange(first, stop) + 1) * self.hop_len / self.rate_hz
        return out

    def push(self, samples: FloatArray) -> EmgWindows:
        """Add ``(n, channels)`` samples in µV; return the windows they complete (maybe none)."""
        filtered = self._filter(samples)
        self._pending = np.concatenate([self._pending, filtered]) if self._pending.shape[0] else filtered
        n_hops = self._pending.shape[0] // self.hop_len
        first = self.windows_done
        if n_hops == 0:
            return _empty_windows(first, self.n_channels, self.win_len, self.seg_len)
        used = n_hops * self.hop_len
        c = self.n_channels
        block = np.concatenate([self._history, self._pending[:used].T], axis=1)
        self._pending = self._pending[used:]
        self._history = block[:, -self.lookback :]
        segments = block.reshape(c, -1, self.seg_len)
        seg_sq = np.square(segments).sum(axis=2)  # (channels, segments)
        seg = np.sqrt(seg_sq / self.seg_len)
        seg_peak = np.abs(segments).max(axis=2)
        # A window is its hop and the one before: sums and peaks per hop, then per pair of hops.
        lead = ENV_SEGMENTS // SEGS_PER_HOP - 1  # hops of the lookback before each window's first hop
        hop_sq = seg_sq.reshape(c, -1, SEGS_PER_HOP).sum(axis=2)[:, lead:]
        hop_peak = seg_peak.reshape(c, -1, SEGS_PER_HOP).max(axis=2)[:, lead:]
        rms = np.sqrt((hop_sq[:, :-1] + hop_sq[:, 1:]) / self.win_len).T
        peak = np.maximum(hop_peak[:, :-1], hop_peak[:, 1:]).T
        new = ENV_SEGMENTS  # the hops' own segments follow the lookback
        seg_rms = seg[:, new:].reshape(c, n_hops, SEGS_PER_HOP).transpose(1, 2, 0)
        new_peak = seg_peak[:, new:].reshape(c, n_hops, SEGS_PER_HOP).transpose(1, 2, 0)
        self.windows_done += n_hops
        return EmgWindows(
            first,
            block,
            seg,
            np.ascontiguousarray(rms),
            np.ascontiguousarray(peak),
            np.ascontiguousarray(seg_rms),
            np.ascontiguousarray(new_peak),
            self.win_len,
            self.seg_len,
        )


class AccWindower:
    """Low-passes the accelerometer and cuts the 2 s before any requested time."""

    def __init__(self, rate_hz: float, start_s: float) -> None:
        self.rate_hz = rate_hz
        self.start_s = start_s  # time of the first sample relative to the EMG stream start
        self.win_len = max(4, round(ACC_WINDOW_S * rate_hz))
        self._filter: StreamFilter | None = None
        self._buf = np.zeros((0, 3))
        self._buf_first = 0  # absolute sample index of _buf[0]
        self.received = 0

    def covered_until_s(self) -> float:
        return self.start_s + self.received / self.rate_hz

    def push(self, samples: FloatArray) -> None:
        if samples.shape[0] == 0:
            return
        if self._filter is None:
            self._filter = StreamFilter(acc_filter(self.rate_hz), 3, initial=samples[0])
            # Before its first sample the sensor is taken to have read what it first read.
            self._buf = np.repeat(samples[:1], self.win_len, axis=0)
            self._buf_first = -self.win_len
        self._buf = np.concatenate([self._buf, self._filter(samples)])
        self.received += samples.shape[0]

    def windows(self, end_s: FloatArray) -> FloatArray:
        """``(n, win_len, 3)`` windows ending at each time in ``end_s``; NaN beyond the received data."""
        ends = np.round((end_s - self.start_s) * self.rate_hz).astype(np.int64)
        out = np.full((end_s.shape[0], self.win_len, 3), np.nan)
        if self._filter is None:
            return out
        idx = ends[:, None] - self.win_len + np.arange(self.win_len)[None, :] - self._buf_first
        idx = np.maximum(idx, 0)  # before the stream start: repeat the first reading
        ok = ends <= self.received
        out[ok] = self._buf[idx[ok]]
        return out

    def forget_before_s(self, t_s: float) -> None:
        """Drop samples no window ending after ``t_s`` can need (bounded memory overnight)."""
        keep_from = round((t_s - self.start_s) * self.rate_hz) - self.win_len - self._buf_first
        if keep_from > self.win_len:
            self._buf = self._buf[keep_from:]
            self._buf_first += keep_from
