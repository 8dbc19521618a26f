"""Sources of frames: anything that yields :class:`~crampwatch.frames.Frame` blocks in device-time order.

simulated   the simulated wearable (crampwatch.simulate), at real time or faster
(ble, replay: later modules, same interface)
"""

from .base import Source, paced, parse_speed
from .simulated import SimulatedSource

__all__ = ["SimulatedSource", "Source", "paced", "parse_speed"]
