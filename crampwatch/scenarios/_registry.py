"""The named scenarios. Each is a situation a clinician would recognise, described in one line.

Times are fixed here, so the truth (cramp, spasm and PLM intervals) is exact; amplitudes are µV RMS
before the scenario's gain. The set spans the recording set-ups issue 14 lists: EMG at 500-2000 Hz, gain
x0.5-x3, 50 or 60 Hz mains. Not tuned to any detector: the numbers come from physiology.md and were
written down before the suite was ever run.
"""

from __future__ import annotations

from typing import Final

from ._build import Scenario
from ._parts import (
    CALF,
    TA,
    Clonus,
    Cramp,
    Extensor,
    Flexor,
    Myoclonic,
    PlmSeries,
    Rub,
    SitUp,
    Tonic,
    Turn,
    Voluntary,
    Walk,
)
from ._signals import LEFT_SIDE, PRONE, RIGHT_SIDE, SUPINE

SCENARIOS: Final[tuple[Scenario, ...]] = (
    # ------------------------------------------------------------------------------------ cramps
    Scenario(
        "five-minute-cramp-sits-up-rubs",
        "five-minute cramp, sits up at 40 s, rubs twice, stretches it off",
        420.0,
        (
            Cramp(60.0, 300.0, level_uv=200.0, precursor_s=30.0, residual_s=40.0),
            SitUp(100.0, tilt_deg=70.0, lie_down_s=400.0),
            Rub(150.0, 12.0, stroke_hz=2.0, acc_g=0.2, artefact_uv=200.0),
            Rub(250.0, 10.0, stroke_hz=1.5, acc_g=0.1, artefact_uv=120.0),
        ),
    ),
    Scenario(
        "cramp-two-relief-dips",
        "cramp of 150 s with two 5 s relief dips, bends the knee, fades out over 8 s",
        300.0,
        (
            Cramp(50.0, 150.0, level_uv=120.0, dips=((40.0, 5.0), (95.0, 5.0)), end="fade", fade_s=8.0),
            SitUp(70.0, tilt_deg=45.0, kind="bend_knee", lie_down_s=230.0),
        ),
        emg_rate_hz=2000.0,
        gain=2.0,
        mains_hz=60.0,
    ),
    Scenario(
        "off-site-cramp-3x-floor",
        "off-site cramp at 3x floor for 2 min (electrode over the silent head), stretched off",
        240.0,
        (Cramp(60.0, 120.0, level_x_floor=3.0, ta_share=0.0),),
    ),
    Scenario(
        "short-cramp-fading",
        "short cramp 15 s fading over its last 8 s, at 500 Hz and x0.5 gain",
        150.0,
        (Cramp(50.0, 15.0, level_uv=150.0, end="fade", fade_s=8.0, rise_s=1.0),),
        emg_rate_hz=500.0,
        gain=0.5,
    ),
    Scenario(
        "six-minute-cramp-walks-it-off",
        "six-minute cramp, sits up at 20 s, rubs three times, one 3 s dip, stretched off, then walks",
        480.0,
        (
            Cramp(30.0, 360.0, level_uv=300.0, dips=((200.0, 3.0),), precursor_s=20.0),
            SitUp(50.0, tilt_deg=85.0),
            Rub(80.0, 15.0, stroke_hz=2.5, acc_g=0.3, artefact_uv=400.0),
            Rub(160.0, 8.0, stroke_hz=1.2, acc_g=0.08, artefact_uv=80.0),
            Rub(290.0, 20.0, stroke_hz=2.0, acc_g=0.15, artefact_uv=250.0),
            Walk(400.0, 70.0, cadence_hz=1.7),
        ),
        emg_rate_hz=1000.0,
        gain=1.5,
    ),
    Scenario(
        "one-minute-cramp-gain-3",
        "one-minute cramp at x3 gain and 2000 Hz, 60 Hz mains 10 µV, abrupt stretch",
        180.0,
        (Cramp(60.0, 60.0, level_uv=100.0, rise_s=0.5),),
        emg_rate_hz=2000.0,
        gain=3.0,
        mains_hz=60.0,
        mains_uv=10.0,
    ),
    Scenario(
        "cramp-after-long-precursor",
        "cramp of 60 s after a 60 s precursor, sleeps through it, residual tone after",
        220.0,
        (Cramp(90.0, 60.0, level_uv=80.0, rise_s=3.0, precursor_s=60.0, residual_s=40.0),),
        gain=1.5,
    ),
    Scenario(
        "two-cramps",
        "two cramps 2 minutes apart (60 s and 80 s), sits up for the second",
        360.0,
        (
            Cramp(40.0, 60.0, level_uv=150.0),
            Cramp(220.0, 80.0, level_uv=250.0, end="fade", fade_s=12.0),
            SitUp(240.0, tilt_deg=60.0, lie_down_s=330.0),
        ),
        emg_rate_hz=1000.0,
        mains_hz=60.0,
    ),
    Scenario(
        "cramp-then-tonic-spasm",
        "cramp of 90 s, then a tonic spasm of 10 s half a minute after it",
        240.0,
        (
            Cramp(40.0, 90.0, level_uv=180.0),
            Tonic(160.0, 10.0, level_uv=150.0),
        ),
        emg_rate_hz=2000.0,
    ),
    # ------------------------------------------------------------------------------------ spasms
    Scenario(
        "tonic-spasm-40s",
        "tonic spasm 40 s, calf and tibialis together",
        150.0,
        (Tonic(50.0, 40.0, level_uv=100.0),),
    ),
    Scenario(
        "short-tonic-spasms-posture",
        "three tonic spasms (2 s, 5 s, 10 s; 40-300 µV), the first two with a posture change",
        180.0,
        (
            Tonic(40.0, 2.0, level_uv=80.0, tilt_deg=30.0),
            Tonic(90.0, 5.0, level_uv=40.0, tilt_deg=20.0),
            Tonic(140.0, 10.0, level_uv=300.0),
        ),
        emg_rate_hz=1000.0,
        gain=1.5,
        mains_hz=60.0,
    ),
    Scenario(
        "clonus-run-20s",
        "clonus run 20 s at 5.5 Hz",
        120.0,
        (Clonus(50.0, 20.0, rate_hz=5.5, level_uv=200.0),),
    ),
    Scenario(
        "clonus-run-70s-weak",
        "clonus run 70 s at 6.5 Hz, weak bursts (60 µV) at x0.5 gain, 500 Hz",
        180.0,
        (Clonus(50.0, 70.0, rate_hz=6.5, level_uv=60.0, acc_g=0.06),),
        emg_rate_hz=500.0,
        gain=0.5,
    ),
    Scenario(
        "flexor-spasm-then-plm",
        "flexor spasm 4 s, then a PLM series of 5 movements 15-30 s apart",
        240.0,
        (
            Flexor(30.0, 4.0, level_uv=150.0, rotate_deg=50.0),
            PlmSeries(70.0, n=5),
        ),
    ),
    Scenario(
        "three-flexor-spasms",
        "three flexor spasms (2 s, 6 s, 12 s; 30-300 µV) that pull the leg up 20-90°",
        200.0,
        (
            Flexor(40.0, 2.0, level_uv=30.0, rotate_deg=20.0),
            Flexor(100.0, 6.0, level_uv=300.0, rotate_deg=90.0),
            Flexor(160.0, 12.0, level_uv=100.0, rotate_deg=45.0),
        ),
        emg_rate_hz=2000.0,
        gain=2.0,
        mains_hz=60.0,
    ),
    Scenario(
        "extensor-spasms",
        "three extensor kicks (3 s, 6 s, 2 s; 80-300 µV), each leaving the leg straighter",
        240.0,
        (
            Extensor(40.0, 3.0, level_uv=80.0),
            Extensor(110.0, 6.0, level_uv=300.0, rotate_deg=30.0),
            Extensor(180.0, 2.0, level_uv=150.0, rotate_deg=10.0),
        ),
    ),
    Scenario(
        "myoclonic-series",
        "myoclonic series of 10 jerks at 0.4 Hz",
        150.0,
        (Myoclonic(40.0, n_jerks=10, rate_hz=0.4, level_uv=150.0),),
        gain=1.5,
    ),
    # ------------------------------------------------------------------------------------ look-alikes
    Scenario(
        "walk-to-the-bathroom",
        "walk to the bathroom and back (2 min, stands 20 s in between)",
        240.0,
        (Walk(60.0, 120.0, cadence_hz=1.8, pause=(50.0, 20.0)),),
    ),
    Scenario(
        "restless-turning",
        "restless turning: five posture changes in four minutes",
        240.0,
        (
            Turn(20.0, 3.0, LEFT_SIDE, level_uv=80.0),
            Turn(60.0, 5.0, SUPINE, level_uv=200.0),
            Turn(110.0, 2.0, RIGHT_SIDE, level_uv=60.0),
            Turn(160.0, 8.0, PRONE, level_uv=350.0),
            Turn(210.0, 4.0, SUPINE, level_uv=120.0),
        ),
        gain=1.5,
    ),
    Scenario(
        "plm-series-gain-2",
        "PLM series of 8 movements 20-30 s apart, x2 gain, 2000 Hz, no cramp or spasm",
        260.0,
        (PlmSeries(20.0, n=8, interval_s=(20.0, 30.0), duration_s=(0.5, 8.0), level_uv=(10.0, 100.0)),),
        emg_rate_hz=2000.0,
        gain=2.0,
    ),
    Scenario(
        "awake-foot-movements-and-rubbing",
        "awake: points the foot 4 s, pulls it up 3 s, rubs the calf 15 s; no cramp",
        200.0,
        (
            Voluntary(40.0, 4.0, channel=CALF, level_uv=200.0),
            Voluntary(80.0, 3.0, channel=TA, level_uv=150.0),
            Rub(120.0, 15.0, stroke_hz=2.0, acc_g=0.2, artefact_uv=300.0),
        ),
        mains_hz=60.0,
    ),
    Scenario(
        "quiet-rest-noisy",
        "quiet rest at x3 gain with 20 µV of 50 Hz mains; nothing happens",
        240.0,
        (),
        gain=3.0,
        mains_uv=20.0,
    ),
)

BY_NAME: Final[dict[str, Scenario]] = {s.name: s for s in SCENARIOS}
