"""Cramp episodes: one cramp is one event, through wake behaviour and relief dips.

The window model judges each 0.5 s window on its own neighbourhood. During a long cramp the sleeper wakes,
sits up, bends the knee and rubs the calf (physiology.md §1: the wake behaviour mostly happens *while the
cramp goes on*); those windows look like voluntary movement and motion artefact, the model's cramp
probability drops, and the segmenter alone would end or split the cramp. ``reference/events.md`` says the
cramp goes on through that behaviour until the involuntary discharge falls back, and that a cramp which
waxes and wanes or briefly dips is one cramp.

So once the segmenter holds a cramp *episode* (the window model has called at least the minimum cramp
duration of it a cramp), a window the model does not call involuntary still belongs to the episode while
the **discharge floor** stays up:

- discharge floor: per channel, the second-lowest RMS of the window's ten 50 ms envelope segments, as a log
  ratio to that channel's resting baseline (the one the pipeline already keeps), on the episode's own
  channel: the one with the highest mean floor over the windows the model called involuntary (a cramp is
  localised, physiology.md §2; walking alternates calf and tibialis bursts, which the largest over channels
  would join into one continuous floor). A cramp is a continuous motor-unit discharge (6-25 pps,
  physiology.md §2), so its 50 ms envelope never falls to rest; its 1.3-1.5 Hz waxing and waning (depth
  20-50 %) lowers the floor by at most about half. Rubbing, sitting up and walking are bursts (and rubbing
  artefact is mostly below the 20 Hz EMG band): between bursts the floor falls back to rest, so they alone
  cannot hold an episode. Motion artefact only adds energy, so it never lowers the floor of a discharge that
  goes on under it.
- it "stays up" while it is at least ``rel_fraction`` of the episode's own level (the mean floor over the
  windows the model called involuntary) and at least ``floor_min_ratio`` x rest (``EpisodeRules``).
- "rest" is the resting baseline as it was when the episode began, not the running one: the pipeline's
  baseline is the 20th percentile of the last 30 minutes, so once a cramp fills more than 80 % of that
  history (a 6-minute cramp after 1.5 minutes of rest at the start of a recording, or any cramp longer than
  6 minutes in a night: cramps last 30 s-10 min, self-reported mean 8-9 min, physiology.md §1-2) the
  baseline *becomes* the cramp. The discharge then looks like rest relative to it although it has not
  changed. The cramp is not rest, so the episode keeps the rest it started from (per channel, the lowest
  baseline seen since the episode began, so a baseline that falls is followed).

The floor holds the episode only without a break longer than ``hold_gap_s`` (0.5 s), unless it stays above
``floor_min_ratio`` x rest through the break (a partial relief, bridged up to ``max_dip_s``): the
discharge is continuous, the behaviour around it is not. The episode ends where neither the model nor
the floor has held it for longer than the segmenter's ``merge_s`` (unchanged) and the floor has fallen
back near rest: an abrupt fall after a stretch (0.2-1 s) or the end of a 5-15 s fade through the
threshold. Low residual tone after the offset (~2x the floor, physiology.md §2) lies under both
thresholds, so it is not included. The rule is per window and sequential, so it is causal and gives the
same events however the windows are batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Which envelope segment (in ascending order) is the floor: the second lowest, so one 50 ms segment that
#: happens to fall between motor-unit potentials does not decide it.
FLOOR_RANK = 1
EPS_UV = 1e-3


def discharge_floor(seg_rms: FloatArray, baseline: FloatArray) -> FloatArray:
    """Per window and channel, log(floor / rest), ``(n, channels)``.

    Args:
        seg_rms: ``(n, segments, channels)`` RMS of the 50 ms segments of each window's new hop, in µV.
        baseline: ``(n, channels)`` resting RMS of each channel, in µV.
    """
    rank = min(FLOOR_RANK, seg_rms.shape[1] - 1)
    floor = np.partition(seg_rms, rank, axis=1)[:, rank, :]
    out: FloatArray = np.log((floor + EPS_UV) / (baseline + EPS_UV))
    return out


@dataclass(frozen=True, slots=True)
class EpisodeRules:
    # The floor must stay above this fraction of the cramp's own level (linear RMS). The waxing and waning
    # (depth 20-50 %, physiology.md §2) and a partial relief keep it above a quarter of its level; a fade
    # crosses it in its last quarter; residual tone (~2x rest) after a cramp of >= 50 µV on a 1-5 µV floor
    # (physiology.md §1) lies far below it.
    rel_fraction: float = 0.25
    # ...and above this multiple of rest: above the residual tone after a cramp (~2x baseline, Chaney &
    # Sherman, physiology.md §2), and the level the context features already call "active" (3x rest), so
    # residual activity never holds an episode open, whatever the cramp's own level.
    floor_min_ratio: float = 3.0
    # A window held by the floor alone must follow the episode's last window within this time, unless the
    # floor has stayed above ``floor_min_ratio`` x rest in between (a partial relief: the discharge goes on
    # at a lower level). Wake behaviour *after* the offset (rubbing, standing, walking: bursts and strides
    # at 1-3 Hz and 1-2 Hz, physiology.md §1) raises the floor only in bursts, and it falls back to rest
    # between them; without this, such bursts would chain through the segmenter's merge gap. Half a second
    # (one hop) tolerates one window in the trough of the 1.3-1.5 Hz waxing and waning (period ~0.7 s)
    # and finds an abrupt stretch offset (0.2-1 s fall, physiology.md §1) within half a second.
    hold_gap_s: float = 0.5
    # The longest partial relief bridged: "briefly dips (partial relief of a few seconds)" (events.md);
    # issue 14 states 2-6 s.
    max_dip_s: float = 6.0


class CrampEpisode:
    """The level of one open cramp episode, and whether a window's discharge floor still holds it."""

    def __init__(self, rules: EpisodeRules | None = None) -> None:
        self.rules = rules or EpisodeRules()
        self._min_log = math.log(self.rules.floor_min_ratio)
        self._rel_log = math.log(self.rules.rel_fraction)
        self.reset()

    def reset(self) -> None:
        self._sum: FloatArray | None = None  # per channel, over the windows the model called involuntary
        self._n = 0
        self._channel = 0
        self._dip_min = math.inf  # lowest floor since the episode's last window
        self._rest: FloatArray | None = None  # per channel, log of the lowest resting baseline in the episode

    def _from_rest(self, floor: FloatArray, rest: FloatArray | None) -> FloatArray:
        """``floor`` (log ratio to the running baseline ``rest``, in log µV) as a log ratio to the episode's
        rest: the baseline when it began, or lower if it has fallen since."""
        if rest is None or rest.shape != floor.shape or not np.all(np.isfinite(rest)):
            return floor
        self._rest = rest.copy() if self._rest is None else np.minimum(self._rest, rest)
        out: FloatArray = floor + (rest - self._rest)
        return out

    def observe(self, floor: FloatArray, rest: FloatArray | None = None) -> None:
        """A window the model called involuntary (``floor`` per channel): part of the cramp's own level.

        ``rest``: the log of the running resting baseline per channel (µV) that ``floor`` is relative to.
        """
        self._dip_min = math.inf
        floor = self._from_rest(floor, rest)
        if np.all(np.isfinite(floor)):
            self._sum = floor.copy() if self._sum is None else self._sum + floor
            self._n += 1
            self._channel = int(np.argmax(self._sum))

    @property
    def level(self) -> float:
        """Mean log floor of the episode's channel over the model's involuntary windows (``-inf`` before)."""
        return float(self._sum[self._channel]) / self._n if self._sum is not None and self._n else -math.inf

    def threshold(self) -> float:
        return max(self._min_log, self.level + self._rel_log)

    def _partial(self, gap_s: float) -> bool:
        """Since the episode's last window, ``gap_s`` ago, the discharge has only partly relieved."""
        return gap_s <= self.rules.max_dip_s and self._dip_min >= self._min_log

    def step(self, floors: FloatArray, gap_s: float, rest: FloatArray | None = None) -> tuple[bool, bool]:
        """A window the model did not call involuntary (``floors`` per channel, relative to the running
        baseline ``rest`` as in :meth:`observe`), ``gap_s`` after the episode's last window.

        Returns (held: the window belongs to the episode, bridging: a partial relief is still going on,
        so the episode must not be closed yet).
        """
        floors = self._from_rest(floors, rest)
        floor = float(floors[self._channel]) if floors.shape[0] > self._channel else -math.inf
        if not math.isfinite(floor):
            floor = -math.inf
        up = self._n > 0 and floor >= self.threshold()
        if up and (gap_s <= self.rules.hold_gap_s or self._partial(gap_s)):
            self._dip_min = math.inf
            return True, False
        self._dip_min = min(self._dip_min, floor)
        return False, self._partial(gap_s)


#: The rules the detector uses unless told otherwise.
EPISODE_RULES = EpisodeRules()
