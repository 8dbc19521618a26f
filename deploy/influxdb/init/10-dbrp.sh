#!/bin/bash
# Runs once, on InfluxDB's first start (docker-entrypoint-initdb.d), after the org, bucket and token exist.
# Maps InfluxQL database "crampwatch", retention policy "autogen", to the bucket, so Grafana's InfluxQL
# data source and `cramp-detector report` can query it. (2.4+ also makes a virtual mapping of the same
# name; an explicit one is listed by `influx v1 dbrp list` and survives a bucket rename.)
set -euo pipefail
bucket_id="$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)"
influx v1 dbrp create --db crampwatch --rp autogen --bucket-id "${bucket_id}" --default
