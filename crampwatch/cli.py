"""What both command-line programs share: one sub-command per module, and one error-to-exit-code rule.

A command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; adding a command
means adding a module to the app's ``COMMANDS`` tuple.

Every mistake a user can make on the command line ends the same way: one line on stderr,
``<prog>: error: <what is wrong and how to fix it>``, and exit code 2, never a traceback. Argument
validators (:func:`input_file`, :func:`output_file`, :func:`positive_float` ...) run while the command line
is parsed, so a bad file name or number is reported before any long work starts.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from .errors import CrampWatchError


class UsageError(CrampWatchError):
    """The command line itself is wrong (unknown command or option, a missing or malformed argument).

    ``prog`` is the (sub-)command whose arguments are wrong, e.g. ``cramp-detector detect``.
    """

    def __init__(self, prog: str, message: str) -> None:
        self.prog = prog
        super().__init__(message)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become :class:`UsageError` instead of usage text and ``sys.exit``.

    Why: argparse prints the usage block and then exits, so a caller of ``main([...])`` gets SystemExit
    and the user gets several lines; raising lets :func:`run_command` report it like every other error.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, f"{message} (see '{self.prog} --help')")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # Only the chosen command's arguments are added, just before parsing: some commands take their
        # defaults from heavy modules (the training config, the evaluator), and `--help` or one command
        # must not import every other command's dependencies (issue 16: `--help` took 2.3 s).
        pending: dict[str, tuple[argparse.ArgumentParser, ModuleType]] = getattr(self, "_pending_commands", {})
        if pending:
            for token in sys.argv[1:] if args is None else args:
                if token in pending:
                    sub, command = pending.pop(token)
                    command.add_arguments(sub)
                    break
        return super().parse_known_args(args, namespace)


def add_commands(parser: argparse.ArgumentParser, commands: tuple[ModuleType, ...]) -> None:
    """One sub-command per module (``NAME``, ``HELP``, ``add_arguments``, ``run``).

    On a :class:`CommandParser`, a command's ``add_arguments`` runs when a command line names it.
    """
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of the commands below", parser_class=CommandParser
    )
    pending: dict[str, tuple[argparse.ArgumentParser, ModuleType]] = {}
    for command in commands:
        # No help= here: the epilog (commands_epilog) lists the commands once, in a wider layout.
        p = sub.add_parser(command.NAME, description=command.HELP)
        if isinstance(parser, CommandParser):
            pending[command.NAME] = (p, command)
        else:
            command.add_arguments(p)
        p.set_defaults(run=command.run)
    if pending:
        parser._pending_commands = pending  # type: ignore[attr-defined]


def commands_epilog(prog: str, commands: tuple[ModuleType, ...], width: int = 100) -> str:
    """The command list for ``prog --help``'s epilog, built from ``commands`` so it cannot drift from them.

    Plain text (no RST markup), one command per entry, wrapped for a terminal; pair it with
    ``argparse.RawDescriptionHelpFormatter`` so the layout is kept.
    """
    name_width = max(len(c.NAME) for c in commands) + 2
    lines = ["commands:"]
    for command in commands:
        wrapped = textwrap.wrap(command.HELP, width=width - name_width - 4) or [""]
        lines.append(f"  {command.NAME:<{name_width}}{wrapped[0]}")
        lines.extend(" " * (name_width + 2) + rest for rest in wrapped[1:])
    footer = (
        f"Run '{prog} COMMAND --help' for a command's options. Settings come from flags, CRAMP_* environment "
        f"variables or a --config TOML file; '{prog} check-config' validates them and prints such a file."
    )
    lines += ["", *textwrap.wrap(footer, width=width)]
    return "\n".join(lines)


def build_parser(prog: str, description: str, commands: tuple[ModuleType, ...]) -> argparse.ArgumentParser:
    """The top-level parser of a CrampWatch program: its commands, and an epilog that lists them all."""
    parser = CommandParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=commands_epilog(prog, commands),
    )
    add_commands(parser, commands)
    return parser


#: glibc mallopt parameters (malloc.h) and the values keep_freed_memory sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 128 << 20


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse rather than hand it back to the kernel at once.

    Detection allocates and frees numpy arrays of a few MB for every block of samples. By default glibc
    serves such sizes with fresh mmap()s or trims the heap after each free, so every block page-faulted its
    memory in anew: 1.4 s of kernel time in the 5.7 s of CPU of an 8-h night (558,000 page faults; 19,000
    after this, and the same peak RSS). Returns whether it applied (glibc on Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv``, run the chosen command, and turn any user error into one line and exit code 2."""
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        return _fail(err.prog, err)
    level = (getattr(args, "log_level", None) or os.environ.get("CRAMP_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = "INFO"  # the settings model reports the bad value with its fix; logging must not crash first
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    prog = getattr(args, "command", None)
    prog = f"{parser.prog} {prog}" if prog else parser.prog
    keep_freed_memory()
    try:
        return int(args.run(args))
    except CrampWatchError as err:
        return _fail(prog, err)
    except OSError as err:
        # Inputs and outputs are checked up front; this is what is left (disk full, a file removed or
        # made unreadable while we ran). It is the user's environment, not a bug, so no traceback.
        where = f" {err.filename}" if err.filename else ""
        return _fail(prog, f"cannot use{where}: {err.strerror or err}")
    except KeyboardInterrupt:
        return 130


def _fail(prog: str, err: object) -> int:
    # One line, whatever the message: a log scraper or a person reads the first line only.
    message = " ".join(str(err).split("\n"))
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------- argument validators
# Each is an argparse ``type=``: it runs at parse time and its ArgumentTypeError message names the fix.


def input_file(text: str) -> Path:
    """An existing, readable file."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file; check the path")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable; check its permissions")
    return path


def input_folder(text: str) -> Path:
    """An existing folder."""
    path = Path(text).expanduser()
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "no such folder"
        raise argparse.ArgumentTypeError(f"{text}: {problem}; give the folder that holds the recordings")
    return path


def input_path(text: str) -> Path:
    """An existing file or folder."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder; check the path")
    return path


def output_file(text: str) -> Path:
    """A file we can create or overwrite: its folder exists and is writable, and it is not a folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {folder} does not exist; create it or write elsewhere")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text}: not writable; check the permissions or write elsewhere")
    return path


def output_folder(text: str) -> Path:
    """A folder we can write into: it exists and is writable, or its parent is (we create it)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder (it is created if missing)")
    existing = path if path.exists() else path.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {existing} does not exist; create it or write elsewhere")
    if not os.access(existing, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: {existing} is not writable; write elsewhere")
    return path


def _number(text: str, kind: type[int] | type[float], what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (durations, lengths, rates)."""
    value = _number(text, float, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of 0 or more."""
    value = _number(text, float, "a number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    """A whole number of 1 or more (counts of nights, workers ...)."""
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more."""
    value = int(_number(text, int, "a whole number"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def speed(text: str) -> str:
    """``--speed``: a factor of real time above 0 (1 = real time, 60 = a minute per second) or ``max``."""
    if text != "max":
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a speed; give a factor like 1 or 60, or 'max'")
    return text
