"""Peer detectors: what CrampWatch's model is compared against (``docs/peers.md``).

A peer is a function ``Recording -> list[Event]``, registered here by name, so ``cramp-detector
evaluate --detector NAME`` scores it exactly like the model:

- ``rms``: the hobbyist's detector (band-pass, 250 ms RMS, 3 x the recording's median RMS);
- ``neurokit``: the researcher's pipeline, NeuroKit2's ``emg_process`` defaults (optional dependency).

Both end with the same duration rules (:class:`DurationRules`: merge gaps < 2 s, drop runs < 0.5 s,
>= 30 s cramp, else spasm). Neither is tuned to any truth. Adding a peer = adding a module and a line in
``PEERS``.
"""

from __future__ import annotations

from collections.abc import Callable

from crampwatch.errors import ConfigError
from crampwatch.recording import Recording

from ..events import Event
from . import neurokit, rms
from ._rules import DurationRules

__all__ = ["PEERS", "DurationRules", "PeerDetector", "get_peer"]

PeerDetector = Callable[[Recording], list[Event]]

PEERS: dict[str, PeerDetector] = {"rms": rms.detect, "neurokit": neurokit.detect}


def get_peer(name: str) -> PeerDetector:
    """The peer registered as ``name``, or ConfigError listing the known ones."""
    try:
        return PEERS[name]
    except KeyError:
        raise ConfigError(f"unknown peer detector {name!r}; known: {', '.join(PEERS)}") from None
