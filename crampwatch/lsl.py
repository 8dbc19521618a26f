"""The Lab Streaming Layer library, loaded on first use by the LSL source and the LSL sink."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigError


def lsl_module() -> Any:
    """pylsl, imported on first use (it loads liblsl); typed as Any because pylsl has no type hints."""
    try:
        return importlib.import_module("pylsl")
    except ModuleNotFoundError:
        raise ConfigError("LSL needs pylsl, an optional dependency: pip install 'crampwatch[lsl]'") from None
