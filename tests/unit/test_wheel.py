"""The installed wheel finds its model: build it, install it alone, load the shipped model from there.

An editable install hides a missing package-data entry, because the model is then read from the source
tree; this test does not. The Docker image (deploy/Dockerfile) installs the same way: it builds a wheel
from the same files and installs it. Offline: it builds with the venv's setuptools (no build isolation)
and installs nothing but the wheel.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detector.model import SHIPPED_MODEL_SHA256

ROOT = Path(__file__).resolve().parents[2]
#: What a wheel is built from, here and in deploy/Dockerfile.
SOURCES = ("pyproject.toml", "README.md", "crampwatch", "collector", "detector")

# Runs with the installed copy first on sys.path; the editable install's finder (if the venv has one) is
# removed, so the source tree cannot stand in for a file the wheel lacks. The venv's site-packages stay,
# for the third-party dependencies.
PROBE = """
import json, sys
from pathlib import Path

target = Path(sys.argv[1]).resolve()
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path[:] = [str(target)] + [p for p in sys.path if p and Path(p).resolve() != Path(sys.argv[2]).resolve()]

import detector.model

model = detector.model.load_model()
print(json.dumps({
    "module": detector.model.__file__,
    "model": str(model.path),
    "sha256": detector.model.file_sha256(model.path),
    "classes": list(model.classes),
}))
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_installed_wheel_loads_the_shipped_model(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so building leaves no build/ or egg-info in the checkout
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input")
    _run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", "dist", str(src), cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("crampwatch-*.whl")
    target = tmp_path / "target"
    _run(*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(target), str(wheel), cwd=tmp_path)

    done = _run(sys.executable, "-c", PROBE, str(target), str(ROOT), cwd=tmp_path)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["module"]).resolve().is_relative_to(target.resolve()), found
    assert Path(found["model"]).resolve().is_relative_to(target.resolve()), found
    assert found["sha256"] == SHIPPED_MODEL_SHA256
    assert {"cramp", "spasm"} <= set(found["classes"])


def test_dockerfile_installs_a_wheel_built_from_the_same_files() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = tuple(
        name
        for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.MULTILINE)
        for name in line.split()[:-1]
    )
    assert sorted(copied) == sorted(SOURCES)
    assert "pip wheel" in dockerfile and "--no-deps" in dockerfile
    assert re.search(r"pip install .*\.whl", dockerfile), "the image must install the built wheel"
