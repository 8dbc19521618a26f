"""`--help` starts fast because it imports none of the heavy libraries (issue 16: it took 2.3 s).

No timing here (timings belong to ``python -m benchmarks.run startup``); what is checked is the cause: which
modules a fresh interpreter has loaded after printing the help of each program.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

HEAVY = ("numpy", "scipy", "sklearn", "skops", "pydantic", "paho", "bleak", "pyedflib", "influxdb_client", "dask")

SCRIPT = """
import contextlib, io, sys
from {package}.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(["--help"])
    except SystemExit:
        pass
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


@pytest.mark.parametrize("package", ["detector", "collector"])
def test_help_imports_no_heavy_library(package: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(package=package)], capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    assert f"{package}" in loaded  # the script really ran the program
    assert sorted(loaded & set(HEAVY)) == []


def test_loading_the_shipped_model_imports_neither_scikit_learn_nor_skops() -> None:
    """The .npz model is numpy arrays scored by numpy: importing scikit-learn and skops was ~2.5 s of a night."""
    script = (
        "import sys\nfrom detector.model import load_model\nload_model()\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert "numpy" in loaded
    assert sorted(loaded & {"sklearn", "skops", "threadpoolctl"}) == []


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_commands_ask_glibc_to_keep_freed_memory() -> None:
    """Without it an 8-h night spent a quarter of its CPU page-faulting freshly mapped numpy buffers."""
    from crampwatch.cli import keep_freed_memory

    assert keep_freed_memory() is True
