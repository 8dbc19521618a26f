"""Every supported wearable, one module each; importing this package registers them all.

    crampwatch   CrampWatch sensor: DIY MyoWare 2.0 + ESP32/nRF52, our open protocol (deploy/firmware)
    ganglion     OpenBCI Ganglion: 4 ch EMG 200 Hz + accelerometer
    polar        Polar H10 / Verity Sense: PMD accelerometer
    myo          Thalmic Myo armband: 8 ch EMG 200 Hz + IMU (discontinued; test fixture)
    bitalino     BITalino (r)evolution BLE: EMG on A1-A4, 10-bit

Adding a device: write ``<name>.py`` with a ``PROFILE = register(DeviceProfile(...))`` and import it here.
"""

from . import bitalino, crampwatch, ganglion, myo, polar

__all__ = ["bitalino", "crampwatch", "ganglion", "myo", "polar"]
