"""Context features: what happens over seconds to a minute around each window.

A cramp lasts 30 s to 10 min, a periodic limb movement 0.5-10 s and repeats every 5-90 s, a spasm lasts
from a jerk to minutes, and a person wakes and moves after a cramp. One window cannot tell these apart;
its neighbourhood can. Each feature is a statistic of a window-level series over a span given in
windows (0.5 s hops) relative to the window, from ``PAST`` windows before it to ``FUTURE`` after it.

The detector therefore decides about a window ``FUTURE`` hops (15 s) after it ends; that is the live
latency. Every statistic is computed per window from its own neighbourhood only, so the result does not
depend on how the windows were batched (live frames or a whole file).
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

HOP_S = 0.5
PAST = 120  # windows: 60 s
FUTURE = 30  # windows: 15 s

#: Relative EMG level above which a window counts as active: 3x the resting RMS.
ACTIVE_LOG_LEVEL = float(np.log(3.0))

# (name, series, statistic, first, last) with first/last window offsets relative to the window, inclusive.
_SPANS: tuple[tuple[str, str, str, int, int], ...] = (
    ("ctx_hi_mean_1s", "emg_rel_hi", "mean", -2, 2),
    ("ctx_hi_mean_5s", "emg_rel_hi", "mean", -10, 10),
    ("ctx_hi_mean_15s", "emg_rel_hi", "mean", -30, 30),
    ("ctx_hi_mean_past60", "emg_rel_hi", "mean", -PAST, 0),
    ("ctx_hi_mean_next15", "emg_rel_hi", "mean", 0, FUTURE),
    ("ctx_hi_min_5s", "emg_rel_hi", "min", -10, 10),
    ("ctx_hi_std_5s", "emg_rel_hi", "std", -10, 10),
    ("ctx_active_5s", "emg_rel_hi", "active", -10, 10),
    ("ctx_active_15s", "emg_rel_hi", "active", -30, 30),
    ("ctx_active_past60", "emg_rel_hi", "active", -PAST, 0),
    ("ctx_active_next15", "emg_rel_hi", "active", 0, FUTURE),
    ("ctx_active_past15", "emg_rel_hi", "active", -30, 0),
    ("ctx_lo_mean_5s", "emg_rel_lo", "mean", -10, 10),
    ("ctx_slowmod_5s", "emg_mod_slow", "mean", -10, 10),
    ("ctx_clonusmod_5s", "emg_mod_clonus", "mean", -10, 10),
    ("ctx_medfreq_5s", "emg_median_freq", "mean", -10, 10),
    ("ctx_kurt_5s", "emg_log_kurtosis", "mean", -10, 10),
    ("ctx_act_max_past10", "acc_log_activity", "max", -20, 0),
    ("ctx_act_max_next15", "acc_log_activity", "max", 0, FUTURE),
    ("ctx_act_mean_5s", "acc_log_activity", "mean", -10, 10),
    ("ctx_act_min_5s", "acc_log_activity", "min", -10, 10),
    ("ctx_jerk_max_2s", "acc_log_jerk", "max", -4, 4),
    ("ctx_accclonus_5s", "acc_frac_clonus", "mean", -10, 10),
    ("ctx_hi_max_2s", "emg_rel_hi", "max", -4, 4),
    ("ctx_2nd_mean_5s", "emg_rel_2nd", "mean", -10, 10),
    ("ctx_rise_max_2s", "emg_env_rise", "max", -4, 4),
    ("ctx_coact_2s", "emg_env_coact", "mean", -4, 4),
    ("ctx_onsets_past60", "emg_rel_hi", "onsets", -PAST, 0),
)

CONTEXT_NAMES: tuple[str, ...] = (
    *(span[0] for span in _SPANS),
    "ctx_tilt_change_10s",
    "ctx_tilt_change_past60",
    "ctx_rise_vs_past60",
)

#: The context features computed from the accelerometer (NaN without one).
ACC_CONTEXT_NAMES: tuple[str, ...] = (
    *(span[0] for span in _SPANS if span[1].startswith("acc_")),
    "ctx_tilt_change_10s",
    "ctx_tilt_change_past60",
)


def _stat(view: FloatArray, stat: str) -> FloatArray:
    # The ufuncs' own reductions: what ndarray.mean/min/max do, without their Python wrappers, which were
    # most of the cost on the few windows a live frame completes (the same arithmetic, the same bits).
    width = view.shape[1]
    if stat == "mean":
        out = np.add.reduce(view, axis=1) / width
    elif stat == "min":
        out = np.minimum.reduce(view, axis=1)
    elif stat == "max":
        out = np.maximum.reduce(view, axis=1)
    elif stat == "std":
        out = view.std(axis=1)
    elif stat == "active":  # a count over a width: exact, however it is summed
        out = np.count_nonzero(view > ACTIVE_LOG_LEVEL, axis=1) / width
    elif stat == "onsets":  # rest-to-active transitions: periodic limb movements repeat every 5-90 s
        active = view > ACTIVE_LOG_LEVEL
        out = np.count_nonzero(active[:, 1:] & ~active[:, :-1], axis=1)
    else:
        raise ValueError(f"unknown statistic {stat!r}")
    return np.asarray(out, dtype=np.float64)


#: The spans by (series, first, last): each such window view is built once for all its statistics.
_VIEWS: dict[tuple[str, int, int], list[tuple[int, str]]] = {}
for _i, (_name, _series, _stat_name, _first, _last) in enumerate(_SPANS):
    _VIEWS.setdefault((_series, _first, _last), []).append((_i, _stat_name))


@functools.lru_cache(maxsize=256)
def _window_index(n: int, width: int) -> npt.NDArray[np.intp]:
    """Row ``i`` holds ``i .. i + width - 1``: indexing a series with it gives its sliding windows as one
    C-contiguous block, in one call (sliding_window_view and a copy took two, with more overhead)."""
    out = np.arange(n)[:, None] + np.arange(width)[None, :]
    out.flags.writeable = False
    return out


def _angle_deg(a: FloatArray, b: FloatArray) -> FloatArray:
    cos = np.clip(np.sum(a * b, axis=1), -1.0, 1.0)
    out: FloatArray = np.degrees(np.arccos(cos))
    return out


def context_features(
    series: FloatArray, names: tuple[str, ...], gravity: FloatArray, start: int, stop: int
) -> FloatArray:
    """Context features for windows ``start..stop-1`` of ``series``.

    Args:
        series: ``(n, len(names))`` window-level features; rows ``start - PAST`` to ``stop - 1 + FUTURE``
            must exist (the caller pads the edges of a stream by repeating its first and last window).
        names: column names of ``series``.
        gravity: ``(n, 3)`` gravity unit vectors per window (NaN when there is no accelerometer).
        start, stop: the windows to compute, as row indices of ``series``.
    """
    if start - PAST < 0 or stop + FUTURE > series.shape[0]:
        raise ValueError("context needs PAST rows before start and FUTURE rows after stop")
    col = {name: i for i, name in enumerate(names)}
    out: list[FloatArray] = [np.empty(0)] * len(_SPANS)
    for (name, first, last), stats in _VIEWS.items():
        values = series[start + first : stop + last, col[name]]
        # A contiguous copy: reductions over strided views change order with the batch size.
        view = values[_window_index(stop - start, last - first + 1)]
        for i, stat in stats:
            out[i] = _stat(view, stat)
    idx = np.arange(start, stop)
    out.append(_angle_deg(gravity[idx - 10], gravity[idx + 10]))
    out.append(_angle_deg(gravity[idx - PAST], gravity[idx]))
    out.append(out[0] - out[3])  # level now relative to the past minute: the abrupt rise of a cramp
    return np.column_stack(out)


def provisional_context_features(
    series: FloatArray, names: tuple[str, ...], gravity: FloatArray, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """Context features of the windows ``rows`` from their past alone: each window's future is taken to be
    the window itself repeated (as the end of a recording is padded), so the result needs no look-ahead.

    Live, this lets the detector announce an event within seconds of its onset instead of ``FUTURE`` hops
    later. Each row depends on its own window and its ``PAST`` only, so it does not depend on batching.
    ``series`` needs ``PAST`` rows before each of ``rows``. The same numbers as :func:`context_features`
    on a series padded after the window, for all rows at once: every offset past the window reads it.
    """
    if rows.size and int(rows.min()) - PAST < 0:
        raise ValueError("context needs PAST rows before each window")
    col = {name: i for i, name in enumerate(names)}
    out: list[FloatArray] = [np.empty(0)] * len(_SPANS)
    for (name, first, last), stats in _VIEWS.items():
        view = series[rows[:, None] + np.minimum(np.arange(first, last + 1), 0)[None, :], col[name]]
        for i, stat in stats:
            out[i] = _stat(view, stat)
    out.append(_angle_deg(gravity[rows - 10], gravity[rows]))
    out.append(_angle_deg(gravity[rows - PAST], gravity[rows]))
    out.append(out[0] - out[3])
    return np.column_stack(out)
