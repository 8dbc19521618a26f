"""Window features: pure, vectorised functions of band-limited samples, one concern per module.

- :mod:`.filters`  causal filters with carried state (chunking never changes a result)
- :mod:`.emg`      per-window sEMG features: amplitude, shape, spectrum, envelope modulation
- :mod:`.acc`      per-window accelerometer features: activity, jerk, periodicity, gravity direction
- :mod:`.context`  features over seconds to a minute around each window, from the window series

Every feature is defined in physical units (Hz, seconds) or as a ratio, so it means the same at EMG rates
from 200 to 2000 Hz and under any amplifier gain; see ``NAMES`` for the model's input order.
"""

from .acc import ACC_NAMES, acc_window_features
from .context import ACC_CONTEXT_NAMES, CONTEXT_NAMES, context_features
from .emg import EMG_NAMES, emg_window_features
from .filters import StreamFilter, acc_filter, emg_filter

#: Model input columns, in order: per-window EMG, per-window ACC, then context.
NAMES: tuple[str, ...] = EMG_NAMES + ACC_NAMES + CONTEXT_NAMES

#: The columns that need an accelerometer, and the rest: the input of the model for windows without one.
ACC_DERIVED_NAMES: tuple[str, ...] = ACC_NAMES + ACC_CONTEXT_NAMES
EMG_ONLY_NAMES: tuple[str, ...] = tuple(n for n in NAMES if n not in ACC_DERIVED_NAMES)
#: Where ``EMG_ONLY_NAMES`` sit in a row of ``NAMES``.
EMG_ONLY_COLUMNS: tuple[int, ...] = tuple(NAMES.index(n) for n in EMG_ONLY_NAMES)

__all__ = [
    "ACC_DERIVED_NAMES",
    "ACC_NAMES",
    "CONTEXT_NAMES",
    "EMG_NAMES",
    "EMG_ONLY_COLUMNS",
    "EMG_ONLY_NAMES",
    "NAMES",
    "StreamFilter",
    "acc_filter",
    "acc_window_features",
    "context_features",
    "emg_filter",
    "emg_window_features",
]
