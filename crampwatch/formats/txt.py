"""``.txt`` recordings: one suffix, two real-world layouts, told apart by their first line.

The registry maps a suffix to one format, but the two text layouts the team reads both end in ``.txt``:
BioSPPy's Simple Text Format (:mod:`crampwatch.formats.biosppy`, first line ``# Simple Text Format``) and
the Biometrics DataLOG export of the UCI lower-limb dataset (:mod:`crampwatch.formats.uci`, first line
``File Name: ...``). This format claims ``.txt``, reads the first line and hands the file to the right
one; ``--format biosppy`` / ``--format datalog`` skip the sniffing. CSV belongs in ``.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import RecordingError
from ..recording import Recording
from . import biosppy, uci
from .registry import register

__all__ = ["TextFormat"]


@register
class TextFormat:
    """Dispatches ``.txt`` to the BioSPPy or DataLOG reader by the first line."""

    name = "txt"
    suffixes = (".txt",)

    def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
        try:
            with open(path, encoding="latin-1") as fh:
                first = fh.readline().strip()
        except OSError as err:
            raise RecordingError(str(path), f"cannot read the file ({err.strerror})") from None
        if first == biosppy.FIRST_LINE:
            return biosppy.BiosppyFormat().read(path, emg=emg, acc=acc)
        if first.startswith(uci.FIRST_LINE_PREFIX):
            return uci.DatalogFormat().read(path, emg=emg, acc=acc)
        raise RecordingError(
            str(path),
            f"unknown text layout (first line {first[:40]!r}). Known: BioSPPy Simple Text Format (first line "
            f"{biosppy.FIRST_LINE!r}) and the Biometrics DataLOG export (first line '{uci.FIRST_LINE_PREFIX} ...'); "
            "a CSV file should be named .csv (see docs/formats.md)",
        )
