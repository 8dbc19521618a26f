"""``cramp-detector train``: fit the model on domain-randomised simulated nights; write model + card."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..model import DEFAULT_MODEL

NAME = "train"
HELP = "train the window classifier on domain-randomised simulated nights and score it on held-out ones"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_MODEL, help=f"model file to write (default {DEFAULT_MODEL.name})"
    )
    parser.add_argument("--nights", type=int, default=480, help="training nights (default 480)")
    parser.add_argument("--night-s", type=float, default=1200.0, help="length of each training night (default 1200)")
    parser.add_argument("--density", type=float, default=3.0, help="event density of training nights (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="master seed (default 1)")
    parser.add_argument("--heldout-nights", type=int, default=48, help="held-out nights to score (default 48)")
    parser.add_argument("--heldout-s", type=float, default=1800.0, help="length of each held-out night (default 1800)")
    parser.add_argument(
        "--negatives",
        action="append",
        default=[],
        metavar="PATH",
        help="real recording (or folder of them) with no cramp or spasm, as 'nothing here' material (repeatable)",
    )
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="PATH",
        help="real no-cramp recording (or folder) NOT used in training: cramps/spasms found there go in the card",
    )
    parser.add_argument(
        "--cv-folds", type=int, default=3, help="cross-validation folds, split by night (default 3; 0 skips it)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train

    cfg = TrainConfig(
        nights=args.nights,
        night_s=args.night_s,
        density=args.density,
        seed=args.seed,
        heldout_nights=args.heldout_nights,
        heldout_s=args.heldout_s,
        workers=args.workers,
        negatives=tuple(args.negatives),
        check=tuple(args.check),
        cv_folds=args.cv_folds,
    )
    card = train(args.out, cfg)
    print(card["heldout"]["table"])
    print(f"model written to {args.out} (card {args.out.with_suffix('.card.json')})")
    return 0
