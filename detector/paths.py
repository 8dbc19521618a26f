"""Where the shipped model lives.

A module of its own so that the settings (whose ``--model`` default it is) and the model code share the one
definition without importing each other: ``--help`` must not load numpy and scipy through the model code,
and loading a model must not load pydantic through the settings.
"""

from __future__ import annotations

from pathlib import Path

#: The model shipped with the package (package data, so installed wheels have it); ``--model`` overrides it,
#: and ``cramp-detector train`` writes here by default.
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "cramp-model.npz"
