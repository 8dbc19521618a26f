"""``cramp-detector report``: one patient's night as an HTML report (and a PDF of it) for the clinic.

cramp-detector report --patient P --night 2026-01-01                    from InfluxDB (what the service wrote)
cramp-detector report --events night.csv --recording night.edf          offline, from `detect` output
cramp-detector report ... --out reports/p1.html --timezone Europe/Berlin

The night is named by the date of its evening (noon to noon UTC in InfluxDB). The PDF needs Chromium
(Debian: apt-get install chromium); without it only the HTML is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crampwatch.cli import input_file, output_file

#: What a report reads: the night from InfluxDB, and the model card it names.
REPORT_FIELDS = ("influx_url", "influx_token", "influx_bucket", "model")

NAME = "report"
HELP = "write a night report (HTML and PDF) for a clinician, from InfluxDB or from `detect` output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import DetectorSettings

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (__doc__ or "").split("\n\n", 1)[1]
    live = parser.add_argument_group("from InfluxDB (--influx-url, --influx-bucket, --influx-token below)")
    live.add_argument("--patient", help="patient id (pseudonym) as the collector sends it")
    live.add_argument("--night", metavar="YYYY-MM-DD", help="the date of the evening the night began")
    offline = parser.add_argument_group("offline")
    offline.add_argument(
        "--events", type=input_file, metavar="CSV", help="events CSV written by `cramp-detector detect`"
    )
    offline.add_argument("--recording", type=input_file, metavar="FILE", help="the recording the events came from")
    offline.add_argument("--emg", action="append", metavar="LABEL", help="EMG channel label, as for `detect`")
    offline.add_argument("--acc", action="append", metavar="LABEL", help="accelerometer channel label (x, y, z)")
    offline.add_argument("--format", dest="fmt", help="recording format name (default: from the file suffix)")
    parser.add_argument("--out", type=output_file, help="HTML file to write (default: report-<patient>-<night>.html)")
    parser.add_argument("--timezone", default="UTC", help="clock times in this IANA zone (default: UTC)")
    parser.add_argument("--no-pdf", action="store_true", help="write only the HTML")
    # The same settings as every other detector command: the model the report names, and where the live
    # service wrote the night (InfluxQL is read on /query; on InfluxDB 2.x the bucket's DBRP database).
    settings_mod.add_arguments(parser, DetectorSettings, fields=REPORT_FIELDS)


def run(args: argparse.Namespace) -> int:
    from crampwatch.errors import ConfigError

    from ..config import load_settings
    from ..report import find_chromium, model_info, read_influx, read_offline, timezone, write_report

    cfg = load_settings(args)
    tz = timezone(args.timezone)
    if args.events or args.recording:
        if not (args.events and args.recording):
            raise ConfigError("offline reports need both --events CSV and --recording FILE")
        data = read_offline(
            args.events, args.recording, patient=args.patient or "", fmt=args.fmt, emg=args.emg, acc=args.acc
        )
    elif args.patient and args.night:
        if not cfg.influx_url:
            raise ConfigError(
                "a report from InfluxDB needs --influx-url (or CRAMP_INFLUX_URL), e.g. http://127.0.0.1:8086"
            )
        database = cfg.influx_bucket.split("/")[0]  # 1.x: database[/retention policy]
        data = read_influx(cfg.influx_url, database, args.patient, args.night, token=cfg.influx_token)
    else:
        raise ConfigError("say which night: --patient P --night YYYY-MM-DD (InfluxDB), or --events and --recording")
    data.model = model_info(cfg.model)
    out = args.out or Path(f"report-{data.patient}-{data.night}.html")
    want_pdf = not args.no_pdf
    if want_pdf and find_chromium() is None:
        print("chromium is not installed (apt-get install chromium): writing the HTML only, no PDF", file=sys.stderr)
        want_pdf = False
    html_path, pdf_path = write_report(data, out, tz=tz, pdf=want_pdf)
    print(f"wrote {html_path}" + (f" and {pdf_path}" if pdf_path else ""), file=sys.stderr)
    return 0
