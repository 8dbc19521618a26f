"""Recording files (EDF/BDF, ...) read into :class:`~collector.recording.Recording`, formats chosen by name.

``read_recording(path)`` picks the format by suffix (or ``fmt=``); each format is one module that
registers itself (see :mod:`collector.formats.registry`). Importing this package imports them all, like
telegraf's ``plugins/inputs/all``: to add a format, add a module and import it below.
"""

from __future__ import annotations

from . import edf as edf  # registers "edf"
from .registry import available_formats, read_recording, register

__all__ = ["available_formats", "read_recording", "register"]
