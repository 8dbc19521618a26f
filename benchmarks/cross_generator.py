"""Cross-generator check (docs/cross-generator.md): train a small model on one generator, score it on the other.

    python -m benchmarks.cross_generator sim-to-scenarios --nights 60 --seed 7 --out /tmp/xg/sim.npz
    cramp-detector evaluate --scenarios --model /tmp/xg/sim.npz
    python -m benchmarks.cross_generator scenarios-to-sim --seeds 4 --seed 3 --out /tmp/xg/scen.npz
    cramp-detector evaluate --simulated 32 --seed 9 --model /tmp/xg/scen.npz

(a) ``sim-to-scenarios`` fits on training nights of :mod:`crampwatch.simulate` (``TRAIN_RANGES``, the same
recipe as ``cramp-detector train``, without calibration or held-out scoring); (b) ``scenarios-to-sim`` fits on
the scenario suite's recordings (:func:`crampwatch.scenarios.build`, every scenario at seeds 1000.., not the
suite's seed 0) and is scored on the simulator's held-out nights. Both models are small (60 iterations) and
carry no confidence calibration. A generator whose model scores well on the other family has taught
something about cramps, not about its own texture.

``--out`` names the model file; its suffix picks the format (``.npz``, what CrampWatch ships, or
``.skops``), and both load with ``--model``. Keep it out of the repository (``/tmp``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from detector.features import EMG_ONLY_COLUMNS
from detector.model import save_model
from detector.offline import run_recording
from detector.train import TrainConfig
from detector.train.data import training_set, window_labels
from detector.train.fit import fit

SMALL_ITER, SMALL_LEAVES, SMALL_RATE = 60, 31, 0.2


def _save(x: np.ndarray, y: np.ndarray, seed: int, out: Path, source: str) -> None:
    cfg = TrainConfig(seed=seed, max_iter=SMALL_ITER, max_leaf_nodes=SMALL_LEAVES, learning_rate=SMALL_RATE)
    clf = fit(x, y, seed, cfg)
    emg = fit(x[:, EMG_ONLY_COLUMNS], y, seed, cfg)
    classes, counts = np.unique(y, return_counts=True)
    card = {
        "name": out.stem,
        "training_data": {
            "source": source,
            "windows": len(y),
            "class_balance": dict(zip(classes.tolist(), counts.tolist(), strict=True)),
        },
        "boosting": {"max_iter": SMALL_ITER, "max_leaf_nodes": SMALL_LEAVES, "learning_rate": SMALL_RATE},
    }
    save_model(clf, out, card, emg)
    print(f"model written to {out}: {len(y)} windows {dict(zip(classes.tolist(), counts.tolist(), strict=True))}")


def sim_windows(nights: int, seed: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    from crampwatch.simulate._real import find_real_root

    root = find_real_root()
    # the shipped recipe's negatives: the UCI normal subjects, read in place
    negatives = (str(root / "uci-lower-limb-emg" / "N_TXT"),) if root is not None else ()
    cfg = TrainConfig(nights=nights, seed=seed, workers=workers, cv_folds=0, negatives=negatives)
    data = training_set(cfg)
    return data.x, data.y


def scenario_windows(seeds: int) -> tuple[np.ndarray, np.ndarray]:
    from crampwatch.scenarios import SCENARIOS, build

    xs, ys = [], []
    for k in range(seeds):
        for sc in SCENARIOS:
            rec = build(sc, seed=1000 + k)  # the suite scores seed 0; these are other draws
            out = run_recording(rec, None, keep_features=True)
            assert out.features is not None and out.window_end_s is not None
            xs.append(out.features)
            ys.append(window_labels(out.window_end_s, rec.annotations))
    return np.vstack(xs), np.concatenate(ys)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("direction", choices=("sim-to-scenarios", "scenarios-to-sim"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--nights", type=int, default=60, help="training nights for sim-to-scenarios")
    ap.add_argument("--seeds", type=int, default=12, help="draws of every scenario for scenarios-to-sim")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--windows", type=Path, help="fit on windows saved before (.npz with x, y) instead of making them")
    ap.add_argument("--save-windows", type=Path, help="also save the windows made (.npz with x, y)")
    args = ap.parse_args()
    if args.windows is not None:
        saved = np.load(args.windows)
        x, y = saved["x"], saved["y"]
        source = f"windows from {args.windows}"
    elif args.direction == "sim-to-scenarios":
        x, y = sim_windows(args.nights, args.seed, args.workers)
        source = f"crampwatch.simulate training nights: {args.nights} x 1200 s, seed {args.seed}"
    else:
        x, y = scenario_windows(args.seeds)
        source = f"crampwatch.scenarios.build: every scenario at seeds 1000..{999 + args.seeds}"
    if args.save_windows is not None:
        np.savez(args.save_windows, x=x, y=y)
    _save(x, y, args.seed, args.out, source)


if __name__ == "__main__":
    main()
