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
from numpy.lib.stride_tricks import sliding_window_view

from .features import StreamFilter, acc_filter, emg_filter

FloatArray = npt.NDArray[np.float64]

SEG_S = 0.05
SEGS_PER_HOP = 10
HOPS_PER_WINDOW = 2
ENV_SEGMENTS = 80
ACC_WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class EmgWindows:
    """Windows completed by one push: ``first`` is the index of the first of them."""

    first: int
    win: FloatArray  # (n, window samples, channels)
    env: FloatArray  # (n, ENV_SEGMENTS, channels)
    seg_rms: FloatArray  # (n, SEGS_PER_HOP, channels): RMS of each 50 ms segment of each window's new hop
    seg_peak: FloatArray  # (n, SEGS_PER_HOP, channels): largest |sample| of those segments

    @property
    def count(self) -> int:
        return int(self.win.shape[0])


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
        self._history = np.zeros((self.lookback, n_channels))
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
        self._pending = np.concatenate([self._pending, self._filter(samples)])
        n_hops = self._pending.shape[0] // self.hop_len
        first = self.windows_done
        if n_hops == 0:
            no_segs = np.zeros((0, SEGS_PER_HOP, self.n_channels))
            empty_env = np.zeros((0, ENV_SEGMENTS, self.n_channels))
            return EmgWindows(first, np.zeros((0, self.win_len, self.n_channels)), empty_env, no_segs, no_segs)
        used = n_hops * self.hop_len
        block = np.concatenate([self._history, self._pending[:used]])
        self._pending = self._pending[used:]
        self._history = block[-self.lookback :]
        ends = self.lookback + self.hop_len * np.arange(1, n_hops + 1)
        # sliding_window_view puts the window axis last: (starts, channels, length) -> (n, length, channels)
        win = sliding_window_view(block, self.win_len, axis=0)[ends - self.win_len].transpose(0, 2, 1)
        segments = block.reshape(-1, self.seg_len, self.n_channels)
        seg = np.sqrt(np.mean(segments**2, axis=1))
        seg_ends = ends // self.seg_len
        env = sliding_window_view(seg, ENV_SEGMENTS, axis=0)[seg_ends - ENV_SEGMENTS].transpose(0, 2, 1)
        new = ENV_SEGMENTS  # the hops' own segments follow the lookback
        shape = (n_hops, SEGS_PER_HOP, self.n_channels)
        seg_rms = seg[new:].reshape(shape)
        seg_peak = np.max(np.abs(segments[new:]), axis=1).reshape(shape)
        self.windows_done += n_hops
        return EmgWindows(first, np.ascontiguousarray(win), np.ascontiguousarray(env), seg_rms, seg_peak)


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
