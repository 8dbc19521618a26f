"""``cramp-detector train``: fit the model on domain-randomised simulated nights; write model + card."""

from __future__ import annotations

import argparse
import os

from crampwatch.cli import input_path, non_negative_int, positive_float, positive_int

NAME = "train"
HELP = "train the window classifier on simulated nights and labeled recordings; score it on held-out nights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import MODEL_FIELDS, DetectorSettings
    from ..train import TrainConfig

    # Defaults come from TrainConfig, so the command and the library cannot drift apart.
    d = TrainConfig()
    # The model to write is the `model` setting (--model, CRAMP_MODEL, --config), so the next detect/serve
    # with the same settings uses what was trained; --out stays as the older spelling of --model here.
    parser.add_argument("--out", dest="model", default=None, metavar="MODEL", help="same as --model")
    parser.add_argument("--nights", type=positive_int, default=d.nights, help=f"training nights (default {d.nights})")
    parser.add_argument(
        "--night-s",
        type=positive_float,
        default=d.night_s,
        help=f"length of each training night (default {d.night_s:g})",
    )
    parser.add_argument(
        "--density",
        type=positive_float,
        default=d.density,
        help=f"event density of training nights (default {d.density:g})",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"master seed (default {d.seed})")
    parser.add_argument(
        "--heldout-nights",
        type=positive_int,
        default=d.heldout_nights,
        help=f"held-out nights to score (default {d.heldout_nights})",
    )
    parser.add_argument(
        "--heldout-s",
        type=positive_float,
        default=d.heldout_s,
        help=f"length of each held-out night (default {d.heldout_s:g})",
    )
    parser.add_argument(
        "--calibration-nights",
        type=int,
        default=d.calibration_nights,
        help=f"validation nights the confidence calibration is fitted on (default {d.calibration_nights})",
    )
    parser.add_argument(
        "--negatives",
        type=input_path,
        action="append",
        default=[],
        metavar="PATH",
        help="real recording (or folder of them) with no cramp or spasm, as 'nothing here' material (repeatable)",
    )
    parser.add_argument(
        "--check",
        type=input_path,
        action="append",
        default=[],
        metavar="PATH",
        help="real no-cramp recording (or folder) NOT used in training: cramps/spasms found there go in the card",
    )
    parser.add_argument(
        "--labeled",
        type=input_path,
        action="append",
        default=[],
        metavar="PATH",
        help="recording (or folder) with true events, as EDF+ annotations or a <stem>.truth.csv / <stem>.csv "
        "(type,onset_s,offset_s) next to it; its windows are added to the training data (repeatable)",
    )
    parser.add_argument(
        "--cv-folds",
        type=non_negative_int,
        default=d.cv_folds,
        help=f"cross-validation folds, split by night (default {d.cv_folds}; 0 skips it)",
    )
    parser.add_argument(
        "--max-iter",
        type=positive_int,
        default=d.max_iter,
        help=f"boosting iterations at most, per classifier (default {d.max_iter}; fewer = smaller, faster model)",
    )
    parser.add_argument(
        "--max-leaf-nodes",
        type=positive_int,
        default=d.max_leaf_nodes,
        help=f"leaves per tree at most (default {d.max_leaf_nodes})",
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=d.learning_rate,
        help=f"boosting learning rate (default {d.learning_rate:g})",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    settings_mod.add_arguments(parser, DetectorSettings, fields=MODEL_FIELDS)


def run(args: argparse.Namespace) -> int:
    from ..config import check_model_output, load_settings
    from ..train import TrainConfig, train

    out = check_model_output(load_settings(args), args)  # before hours of training, not after
    cfg = TrainConfig(
        nights=args.nights,
        night_s=args.night_s,
        density=args.density,
        seed=args.seed,
        heldout_nights=args.heldout_nights,
        heldout_s=args.heldout_s,
        calibration_nights=args.calibration_nights,
        workers=args.workers,
        negatives=tuple(args.negatives),
        check=tuple(args.check),
        labeled=tuple(args.labeled),
        cv_folds=args.cv_folds,
        max_iter=args.max_iter,
        max_leaf_nodes=args.max_leaf_nodes,
        learning_rate=args.learning_rate,
    )
    card = train(out, cfg)
    print(card["heldout"]["table"])
    print(f"model written to {out} (card {out.with_suffix('.card.json')})")
    return 0
