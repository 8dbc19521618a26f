"""Speed and memory benchmarks: ``python -m benchmarks.run [--hours H] [--rate HZ]``.

``python -m benchmarks.run live ...`` runs the live benchmark instead (benchmarks/live.py: patients one
detector process sustains through a real broker).

Prints numbers; asserts nothing (timed tests are flaky, numbers in a log are useful). Measures:

- simulate: rendering a night (2-channel EMG + 3-axis ACC at 50 Hz);
- detect: the offline pipeline on that night (the same code as the live service), x real time;
- live: the same pipeline fed 0.25 s frames, as the service is fed from MQTT, x real time;
- wire: encode + decode of 0.25 s frames, frames per second;
- peak memory (max RSS) of the process after each stage.
"""

from __future__ import annotations

import argparse
import importlib
import resource
import sys
import time

import numpy as np

from crampwatch import wire
from crampwatch.frames import StreamKind
from crampwatch.recording import Recording, Signal
from crampwatch.simulate import Night, SimParams
from detector.model import load_model
from detector.offline import detect_recording
from detector.stream import DeviceStreams


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Named benchmarks, each a module with ``main(argv)``: ``python -m benchmarks.run NAME [its flags]``.
NAMED = {"live": "benchmarks.live"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in NAMED:
        importlib.import_module(NAMED[sys.argv[1]]).main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1.0, help="night length in hours (default 1)")
    parser.add_argument("--rate", type=float, default=1000.0, help="EMG sample rate (default 1000 Hz)")
    parser.add_argument("--live-minutes", type=float, default=10.0, help="minutes fed as live frames (default 10)")
    args = parser.parse_args()
    seconds = args.hours * 3600
    params = SimParams(emg_rate_hz=args.rate, acc_rate_hz=50.0)
    print(f"night: {args.hours:g} h, EMG {args.rate:g} Hz x 2 ch + ACC 50 Hz x 3")

    t = time.perf_counter()
    rec = Night(seconds, 1, params=params).recording()
    dt = time.perf_counter() - t
    print(f"simulate   {dt:8.2f} s   {seconds / dt:8.0f} x real time   max RSS {_rss_mb():7.0f} MB")

    model = load_model()
    t = time.perf_counter()
    events = detect_recording(rec, model)
    dt = time.perf_counter() - t
    print(
        f"detect     {dt:8.2f} s   {seconds / dt:8.0f} x real time   max RSS {_rss_mb():7.0f} MB   {len(events)} events"
    )

    live_s = min(seconds, args.live_minutes * 60)
    n_emg, n_acc = round(live_s * args.rate), round(live_s * 50)
    assert rec.acc is not None
    part = Recording(
        Signal(StreamKind.EMG, args.rate, rec.emg.channel_names, rec.emg.data[:n_emg]),
        Signal(StreamKind.ACC, 50.0, rec.acc.channel_names, rec.acc.data[:n_acc]),
    )
    frames = list(part.frames(0.25))
    streams = DeviceStreams(model, "bench", "dev", expect_acc=True)
    t = time.perf_counter()
    for f in frames:
        streams.on_frame(f)
    streams.finish()
    dt = time.perf_counter() - t
    print(
        f"live       {dt:8.2f} s   {live_s / dt:8.0f} x real time   {len(frames) / dt:8.0f} frames/s "
        f"({len(frames)} frames of 0.25 s)"
    )

    payloads = [wire.encode(f) for f in frames[:2000]]
    t = time.perf_counter()
    for f in frames[:2000]:
        wire.encode(f)
    for p in payloads:
        wire.decode(p)
    dt = time.perf_counter() - t
    size = np.mean([len(p) for p in payloads])
    print(f"wire       {len(payloads) / dt:8.0f} frames/s encode+decode ({size:.0f} B each)")


if __name__ == "__main__":
    main()
