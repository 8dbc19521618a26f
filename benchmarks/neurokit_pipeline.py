"""The tuned NeuroKit2 pipeline that ``python -m benchmarks.run offline`` times against ``detect``.

    python -m benchmarks.neurokit_pipeline night.edf     # prints "<n> events (<cramps> cramp, <spasms> spasm)"

What a researcher would write with NeuroKit2 for cramps and spasms, tuned to run in reasonable time on a
whole night (needs the ``bench`` extra: ``pip install -e '.[bench]'``):

- read the recording with CrampWatch's own reader (whole: NeuroKit2 works on arrays);
- ``nk.emg_clean`` each EMG channel, keep the most active one (largest standard deviation), as the peer
  detector in :mod:`detector.peers.neurokit` does;
- ``nk.emg_amplitude`` on it;
- activation by a **robust** threshold, median + 3.5 x 1.4826 x MAD of the amplitude (a 0.1 x SD
  threshold, ``emg_activation``'s default, follows the loudest minutes of a night rather than its rest),
  found with ``nk.signal_binarize`` and ``nk.events_find`` (50 ms minimum), which is what
  ``nk.emg_activation`` does inside, without its per-sample pandas formatting (over an hour on an 8-h
  1 kHz night);
- the peers' duration rules (:mod:`detector.peers._rules`: gaps < 2 s merged, runs < 0.5 s dropped,
  >= 30 s a cramp, else a spasm).

It is a speed reference, not scored: ``docs/peers.md`` scores the peer detectors.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter

import numpy as np
import numpy.typing as npt

from crampwatch.formats import read_recording
from detector.events import Event
from detector.peers._rules import DurationRules, events_from_activity

FloatArray = npt.NDArray[np.float64]

#: Robust threshold: this many (MAD-scaled) deviations above the median amplitude.
THRESHOLD_MADS = 3.5
MIN_ACTIVATION_S = 0.05


def detect(path: str) -> list[Event]:
    import neurokit2 as nk  # type: ignore[import-untyped]  # the bench extra; imported here, as a peer is

    rec = read_recording(path)
    fs = rec.emg.rate_hz
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nk.misc.NeuroKitWarning)
        cleaned = [np.asarray(nk.emg_clean(rec.emg.data[:, j], sampling_rate=fs)) for j in range(rec.emg.data.shape[1])]
        best = cleaned[int(np.argmax([np.std(c) for c in cleaned]))]
        del cleaned
        amplitude: FloatArray = np.asarray(nk.emg_amplitude(best), dtype=np.float64)
        median = float(np.median(amplitude))
        threshold = median + THRESHOLD_MADS * 1.4826 * float(np.median(np.abs(amplitude - median)))
        binary = np.asarray(nk.signal_binarize(amplitude, method="threshold", threshold=threshold))
        found = nk.events_find(
            binary, threshold=0.5, threshold_keep="above", duration_min=max(1, int(MIN_ACTIVATION_S * fs))
        )
    active = np.zeros(amplitude.shape[0], dtype=bool)
    for onset, duration in zip(found["onset"], found["duration"], strict=True):
        active[int(onset) : int(onset) + int(duration)] = True
    return events_from_activity(active, fs, np.abs(best), DurationRules(), t0_s=rec.emg.t0_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="recording (EDF/BDF, CSV, ...)")
    args = parser.parse_args(argv)
    events = detect(args.file)
    counts = Counter(e.type for e in events)
    print(f"{len(events)} events ({counts['cramp']} cramp, {counts['spasm']} spasm)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
