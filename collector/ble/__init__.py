"""Bluetooth LE wearables: device profiles and decoders, framing, and the reconnecting bleak runner.

profile.py     DeviceProfile (static facts as data), Decoder protocol, registry
profiles/      one module per supported device (crampwatch, ganglion, polar, myo, bitalino)
framer.py      decoded sample blocks -> numbered, timed wire frames (gaps marked for the detector)
runner.py      scan -> connect -> subscribe -> start -> stream -> watchdog -> backoff -> reconnect
"""

from .profile import DeviceProfile, StreamSpec, all_profiles, get_profile

__all__ = ["DeviceProfile", "StreamSpec", "all_profiles", "get_profile"]
