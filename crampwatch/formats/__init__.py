"""Recording files (EDF/BDF, ...) read into :class:`~crampwatch.recording.Recording`, formats chosen by name.

``read_recording(path)`` picks the format by suffix (or ``fmt=``); each format is one module that
registers itself (see :mod:`crampwatch.formats.registry`). Importing this package imports them all, like
telegraf's ``plugins/inputs/all``: to add a format, add a module and import it below.
"""

from __future__ import annotations

from . import biosppy as biosppy  # registers "biosppy" (by name; .txt goes through "txt")
from . import csvfile as csvfile  # registers "csv"
from . import edf as edf  # registers "edf"
from . import txt as txt  # registers "txt": BioSPPy or DataLOG by the first line
from . import uci as uci  # registers "datalog" (UCI lower-limb EMG text export)
from . import xdf as xdf  # registers "xdf"
from .registry import available_formats, open_recording, read_recording, register

__all__ = ["available_formats", "open_recording", "read_recording", "register"]
