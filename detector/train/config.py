"""What one training run is: sizes, seeds and the real recordings it uses (``cramp-detector train``'s flags).

Every size is a parameter, so a test trains a model in seconds with tiny ones; the defaults are the recipe
of the shipped model (its card's ``command`` repeats them).
"""

from __future__ import annotations

from dataclasses import dataclass

from crampwatch.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    # 200 nights (was 480): each now holds ~3x the cramps and ~3x the spasms of before, plus leg movements
    # and real EMG, and costs ~3x the CPU to simulate; the shared 2-core machine set the budget.
    nights: int = 200
    night_s: float = 1200.0
    density: float = 3.0
    seed: int = 1
    heldout_nights: int = 24
    heldout_s: float = 1800.0
    heldout_density: float = 3.0
    # Validation nights the confidence calibration is fitted on (as long and dense as the held-out ones).
    calibration_nights: int = 24
    workers: int = 2
    negatives: tuple[str, ...] = ()  # real recordings with no cramp or spasm in them, for training
    check: tuple[str, ...] = ()  # other real no-cramp recordings, only to count false events
    labeled: tuple[str, ...] = ()  # recordings (or folders) with true events, as EDF+ annotations or a truth CSV
    # Grouped (by night or file) cross-validation folds; 0 skips it. The shipped recipe skips it: six more
    # fits did not fit the time budget, and the held-out nights score the model itself.
    cv_folds: int = 0
    # The boosting's size: the model ships inside the package, so it must stay small and load fast.
    # Fewer, larger trees: each tree costs scoring time per window (the .npz model scores every tree of a
    # window in numpy), and skops, for .skops models, spent ~1 ms per tree loading.
    max_iter: int = 40
    max_leaf_nodes: int = 63
    learning_rate: float = 0.25

    def __post_init__(self) -> None:
        for flag, value in (
            ("--nights", self.nights),
            ("--heldout-nights", self.heldout_nights),
            ("--calibration-nights", self.calibration_nights),
        ):
            if value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        if self.max_iter < 1 or self.max_leaf_nodes < 2 or not self.learning_rate > 0:
            raise ConfigError(
                "--max-iter must be at least 1, --max-leaf-nodes at least 2 and --learning-rate positive, got "
                f"{self.max_iter}, {self.max_leaf_nodes}, {self.learning_rate}"
            )
        if self.cv_folds == 1 or self.cv_folds < 0:
            # One fold would have no held-out part; say so rather than silently skip the scores.
            raise ConfigError(f"--cv-folds must be 0 (skip cross-validation) or at least 2, got {self.cv_folds}")

    def command(self) -> str:
        """The ``cramp-detector train`` command line that repeats this run (for the model card).

        Flags at their default that the shipped card's command never named (--heldout-s,
        --calibration-nights) are left out, so the default recipe's command is unchanged.
        """
        default = TrainConfig()
        extra = "".join(
            f" --{flag} {value:g}"
            for flag, value, base in (
                ("heldout-s", self.heldout_s, default.heldout_s),
                ("calibration-nights", self.calibration_nights, default.calibration_nights),
            )
            if value != base
        )
        # the boosting's size is always named: the card must say how big a model the command makes
        boost = (
            f" --max-iter {self.max_iter} --max-leaf-nodes {self.max_leaf_nodes} --learning-rate {self.learning_rate:g}"
        )
        return (
            f"cramp-detector train --nights {self.nights} --night-s {self.night_s:g} "
            f"--density {self.density:g} --seed {self.seed} --heldout-nights {self.heldout_nights} "
            f"--cv-folds {self.cv_folds}"
            + extra
            + boost
            + "".join(f" --negatives {p}" for p in self.negatives)
            + "".join(f" --check {p}" for p in self.check)
            + "".join(f" --labeled {p}" for p in self.labeled)
        )
