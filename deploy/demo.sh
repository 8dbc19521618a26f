#!/usr/bin/env bash
# Install CrampWatch in .venv and run the main job: a simulated night through the whole pipeline
# (simulated wearable -> MQTT -> detector -> sinks), with the events found printed beside the truth.
# No broker configured (CRAMP_MQTT_URL unset): starts the installed mosquitto on a free port, installing
# it with apt-get when missing and run as root. No InfluxDB configured (CRAMP_INFLUX_URL unset): events
# go to a JSON-lines file. Extra arguments go to `cramp-detector demo` (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z "${CRAMP_MQTT_URL:-}" ]] && ! command -v mosquitto >/dev/null 2>&1 && [[ ! -x /usr/sbin/mosquitto ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        echo "==> installing mosquitto (apt-get)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
    else
        echo "error: no MQTT broker: install mosquitto (sudo apt-get install mosquitto)" >&2
        echo "       or point CRAMP_MQTT_URL at one (mqtt://host:1883)." >&2
        exit 1
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    python=$(command -v python3.11 || command -v python3)
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "error: CrampWatch needs Python >= 3.11; $python is $("$python" -V 2>&1)" >&2; exit 1; }
    echo "==> creating .venv"
    "$python" -m venv .venv
fi
echo "==> installing CrampWatch into .venv"
.venv/bin/pip install -q -e '.[all]'
exec .venv/bin/cramp-detector demo "$@"
