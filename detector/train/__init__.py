"""``cramp-detector train``: fit the window classifier on domain-randomised simulated nights.

Labeled recordings (``--labeled``: EDF+ with annotations, or any recording with a ``type,onset_s,offset_s``
truth CSV next to it, found as ``cramp-detector evaluate`` finds it) join the training windows as they are.
Each training night draws its person, sensor and night from ``TRAIN_RANGES`` (EMG rate, gain, noise
floor, mains, ECG, ...); some nights lose their accelerometer, so the model also works without one,
and a second classifier, fitted on the EMG-only columns of every window, scores windows without ACC. Window
labels come from the simulator's truth at each window's centre. The model is then scored, event by event,
on held-out nights drawn from ``HELDOUT_RANGES`` (other rates, gains and noise floors) with seeds never
used in training, through the same offline path ``detect`` uses. Everything goes into the model card.

One module per stage:

- :mod:`.config`: :class:`TrainConfig`, the sizes and seeds of a run (all parameters, so tests train
  tiny models);
- :mod:`.data`: every simulated and real recording (training, calibration and held-out recipes, the
  accelerometer drop rule) and the labelled windows made from them;
- :mod:`.fit`: the classifiers, grouped cross-validation and the confidence calibration;
- :mod:`.card`: the model card; its held-out section is :func:`detector.evaluate.evaluate_simulated`;
- :mod:`.run`: :func:`train`, the three in order.
"""

from __future__ import annotations

from .config import TrainConfig
from .data import training_seeds
from .run import train

__all__ = ["TrainConfig", "train", "training_seeds"]
