"""Sources of frames: anything that yields :class:`~crampwatch.frames.Frame` blocks in device-time order.

simulated   the simulated wearable (crampwatch.simulate), at real time or faster
replay      recording files, as the devices that recorded them would have sent them
lsl         Lab Streaming Layer streams (lab amplifiers), live
(ble: :class:`collector.ble.source.BleSource`, the BLE runner as a live source)

:func:`collector.relay.relay` runs any of them into the publisher.
"""

from .base import LiveSource, Source, parse_speed
from .simulated import SimulatedSource

__all__ = ["LiveSource", "SimulatedSource", "Source", "parse_speed"]
