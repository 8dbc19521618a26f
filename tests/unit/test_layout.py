"""The package layout holds: the core imports neither app, and neither app imports the other.

Each check runs in a fresh interpreter that imports every module of one package, then looks at what else
got imported. The collector must also stay free of the detector's heavy libraries (it runs on a Raspberry
Pi), and the detector free of bleak (its image has no Bluetooth).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import importlib, pkgutil, sys
package = importlib.import_module({package!r})
for info in pkgutil.walk_packages(package.__path__, {package!r} + "."):
    if not info.name.endswith(".__main__"):  # running the CLI is not importing it
        importlib.import_module(info.name)
loaded = {{name.split(".")[0] for name in sys.modules}}
print(" ".join(sorted(loaded & set({forbidden!r}))))
"""

CASES = {
    "crampwatch": ("collector", "detector", "sklearn", "bleak", "dask", "influxdb_client"),
    "collector": ("detector", "sklearn", "skops", "dask", "influxdb_client"),
    "detector": ("collector", "bleak"),
}


@pytest.mark.parametrize("package", sorted(CASES))
def test_package_imports_none_of_what_it_must_not(package: str) -> None:
    code = PROBE.format(package=package, forbidden=CASES[package])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing every module of {package} also imported: {done.stdout.strip()}"
