#!/bin/sh
# Builds mosquitto's password file and config, then runs the broker (docker compose; docs/security.md).
#  - device accounts: deploy/mosquitto/passwd, made by `cramp-collector provision` (git-ignored);
#  - service accounts from .env: detector, the demo collector (demo-patient/sim01) and reader.
# Passwords reach mosquitto_passwd on stdin, so no process list shows them; the file keeps only
# PBKDF2-SHA512 hashes and lives in the data volume. The TLS listener is on when deploy/mosquitto/certs
# holds ca.crt, server.crt and server.key.
set -eu
: "${MQTT_DETECTOR_PASSWORD:?set MQTT_DETECTOR_PASSWORD in .env}"
: "${MQTT_DEMO_COLLECTOR_PASSWORD:?set MQTT_DEMO_COLLECTOR_PASSWORD in .env}"
: "${MQTT_READER_PASSWORD:?set MQTT_READER_PASSWORD in .env}"
umask 077
config=/mosquitto/config
passwd=/mosquitto/data/passwd
rm -f "$passwd"
if [ -f "$config/passwd" ]; then
    cp "$config/passwd" "$passwd"
else
    : > "$passwd"
    echo "no device accounts yet: make them with 'cramp-collector provision --passwd-file deploy/mosquitto/passwd'"
fi
add_account() {
    printf '%s\n%s\n' "$2" "$2" | mosquitto_passwd "$passwd" "$1" > /dev/null
}
add_account detector "$MQTT_DETECTOR_PASSWORD"
add_account demo-patient/sim01 "$MQTT_DEMO_COLLECTOR_PASSWORD"
add_account reader "$MQTT_READER_PASSWORD"
chown mosquitto:mosquitto "$passwd"

conf=/mosquitto/data/mosquitto.conf
if [ -f "$config/certs/server.crt" ]; then
    # Copied so the key can be owned by mosquitto and unreadable to everyone else, whoever owns the host's copy.
    mkdir -p /mosquitto/certs
    cp "$config/certs/ca.crt" "$config/certs/server.crt" "$config/certs/server.key" /mosquitto/certs/
    chown -R mosquitto:mosquitto /mosquitto/certs
    cp "$config/mosquitto.conf" "$conf"
else
    sed '/^# --- TLS begin/,/^# --- TLS end/d' "$config/mosquitto.conf" > "$conf"
    echo "TLS listener (8883) off: put ca.crt, server.crt and server.key in deploy/mosquitto/certs to turn it on"
fi
chown mosquitto:mosquitto "$conf"
exec mosquitto -c "$conf"
