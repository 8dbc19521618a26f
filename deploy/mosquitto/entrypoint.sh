#!/bin/sh
# Builds mosquitto's password file from the environment (.env via docker compose), then runs the broker.
# The passwords are hashed by mosquitto_passwd (PBKDF2-SHA512); the file lives in the data volume only.
set -eu
: "${MQTT_DETECTOR_PASSWORD:?set MQTT_DETECTOR_PASSWORD in .env}"
: "${MQTT_COLLECTOR_PASSWORD:?set MQTT_COLLECTOR_PASSWORD in .env}"
umask 077
passwd=/mosquitto/data/passwd
rm -f "$passwd"
mosquitto_passwd -c -b "$passwd" detector "$MQTT_DETECTOR_PASSWORD"
mosquitto_passwd -b "$passwd" collector "$MQTT_COLLECTOR_PASSWORD"
chown mosquitto:mosquitto "$passwd"
exec mosquitto -c /mosquitto/config/mosquitto.conf
