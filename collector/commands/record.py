"""``cramp-collector record``: write a device's live MQTT streams to an EDF+/BDF+ file.

    cramp-collector record --out night.bdf --patient p07 --device left

Why: a night recorded through the live system can be looked at in any EDF viewer, shared, re-scored and
re-run offline (``cramp-detector detect``), and the recording is what the detector actually received.

* Subscribes (QoS 1, persistent session ``cramp-recorder-<patient>-<device>``) to the device's ``emg``
  and ``acc`` topics. Start it **before** the device or replay: the broker keeps messages for a
  subscription only once it exists.
* Continuity is the detector's (:mod:`crampwatch.continuity`): samples are converted to µV and g, and
  duplicated frames (same sequence number) are dropped. Lost frames are filled (EMG with zeros, ACC by
  holding the last reading), in blocks straight to disk, so the file's time axis stays device time even
  after an hours-long dropout; each gap becomes an EDF+ annotation ``gap`` (subtype ``emg``/``acc``)
  over the filler, so a viewer shows where data is missing and ``cramp-detector detect`` treats it as
  lost, as the live service did. A jump of device time beyond a day is a clock reset, not a dropout:
  the recording stops there and the file holds what came before.
* The file is written when the streams end (end-of-stream flag on EMG, and on ACC if ACC frames came),
  on ``--duration`` seconds of EMG, or on Ctrl-C (what arrived so far). The start time in the header
  is the first EMG frame's device time (UTC, whole seconds; EDF cannot store the fraction). ACC samples
  from before the first EMG sample are dropped.
* Memory stays small: samples go to temporary files beside ``--out`` (float64, about 58 MB per channel
  per hour at 2 kHz) and are read back memory-mapped when the EDF is written. ``.bdf`` (24 bit) keeps
  far more of the signal's resolution than ``.edf`` (16 bit); both are rounded to the file's digital step.
"""

from __future__ import annotations

import argparse

NAME = "record"
HELP = "record a device's live MQTT streams into an EDF+/BDF+ file (until end of stream or Ctrl-C)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod
    from crampwatch.cli import output_file, positive_float

    from ..config import MQTT_FIELDS, CollectorSettings

    parser.add_argument("--out", type=output_file, required=True, help="output file, .bdf (24 bit) or .edf (16 bit)")
    parser.add_argument(
        "--duration", type=positive_float, default=None, metavar="SECONDS", help="stop after this much EMG"
    )
    parser.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop when no frame arrived for this long after the first one (default: wait for end of stream)",
    )
    settings_mod.add_arguments(parser, CollectorSettings, fields=MQTT_FIELDS)


def run(args: argparse.Namespace) -> int:
    from ..recorder import record

    return record(args)
