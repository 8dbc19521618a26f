"""The CrampWatch core, shared by the bedside collector (:mod:`collector`) and the detector (:mod:`detector`).

It imports neither app. What lives here is what both sides of the broker must agree on:

frames      the typed sample block (``Frame``) every source produces and the detector consumes
wire        the binary frame format on MQTT
units       EMG µV / ACC g conversions
topics      the MQTT topic layout and id rules
errors      the one error tree (``CrampWatchError``)
settings    flags > environment > TOML file > defaults, for each service's settings model
mqtt        connecting a paho client (TLS, credentials, session)
recording   a whole recording in memory, and its annotations
formats     file readers and writers (EDF/BDF, CSV, XDF, ...) registered by name
simulate    the physiological night simulator
cli         sub-command registration and the error-to-exit-code rule of both programs
lsl         the Lab Streaming Layer library, loaded on first use
"""
