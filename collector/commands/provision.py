"""``cramp-collector provision``: give one wearable its own MQTT account and print its collector settings.

Run it by the broker (it edits mosquitto's password file with ``mosquitto_passwd``), then copy the password
file and the printed TOML to the bedside computer. Why the collector's program: what it prints is collector
settings, checked by the collector's own settings model, and it needs nothing but the core package.

The account is named ``<patient>/<device>``, the two topic levels its data goes to, so one ACL line per
topic (``pattern write cramp/v1/%u/emg`` in deploy/mosquitto/acl) lets each device write its own topics
and nothing else; the deployed broker also uses the account name as the client id
(``use_username_as_clientid``), so no account can take over another one's session.

The password is random (``secrets``), goes to ``mosquitto_passwd`` on its standard input (not on its
command line, where ``ps`` would show it) and to one file created with mode 0600. It is never printed
or logged. Without ``--patient`` a random pseudonym (``p-`` and 8 hex digits) is made: patient ids appear
in topics, logs and the database, so they must never be names, initials, birth dates or record numbers.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from crampwatch.cli import output_file
from crampwatch.errors import ConfigError, CrampWatchError
from crampwatch.topics import check_id

if TYPE_CHECKING:
    from ..config import CollectorSettings

NAME = "provision"
HELP = "create a wearable's own MQTT account (random password, mosquitto_passwd) and print its collector settings"

EPILOG = """\
Example, on the broker host:

  cramp-collector provision --device left-calf --passwd-file deploy/mosquitto/passwd \\
      --mqtt-url mqtts://broker.example.org:8883

creates account '<pseudonym>/left-calf' with a new pseudonym, writes its password to
<pseudonym>.left-calf.mqtt-password (mode 0600) and prints the collector's TOML. Reload the broker so it
reads the new account (docker compose restart mosquitto, or systemctl reload mosquitto). Copy the TOML to
/etc/crampwatch/collector.toml and the password file to the path it names, on the bedside computer."""

#: Pseudonyms made here: "p-" and 8 hex digits (4 billion), random, so they carry nothing about the person.
PSEUDONYM_HEX_DIGITS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Imported here, as in the other commands: `cramp-collector --help` must not load pydantic.
    from crampwatch import settings as settings_mod

    from ..config import CollectorSettings

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--passwd-file", type=Path, required=True, metavar="FILE", help="mosquitto's password file")
    parser.add_argument(
        "--password-out",
        type=output_file,
        metavar="FILE",
        help="where the new password goes, mode 0600 (default: <patient>.<device>.mqtt-password here)",
    )
    parser.add_argument(
        "--rotate", action="store_true", help="the account exists: give it a new password (the old one stops working)"
    )
    parser.add_argument(
        "--mosquitto-passwd", metavar="PROGRAM", help="the mosquitto_passwd program (default: found on the PATH)"
    )
    settings_mod.add_arguments(parser, CollectorSettings, fields=("mqtt_url", "topic_prefix", "patient", "device"))


def run(args: argparse.Namespace) -> int:
    from crampwatch import settings as settings_mod

    from ..config import CollectorSettings

    cfg = settings_mod.load(CollectorSettings, args)
    if not settings_mod.is_set(CollectorSettings, "device", args):
        raise ConfigError("say which device: --device ID (for example left-calf); the account is per device")
    url = urlsplit(cfg.mqtt_url)
    if url.username or url.password:
        raise ConfigError(
            "--mqtt-url: give the broker without a user or password (mqtts://host:8883); the new account is filled in"
        )
    tool = _mosquitto_passwd(args.mosquitto_passwd)
    existing = _accounts(args.passwd_file)
    if settings_mod.is_set(CollectorSettings, "patient", args):
        patient = cfg.patient
    else:
        patient = new_pseudonym({name.split("/", 1)[0] for name in existing})
    device = check_id(cfg.device, "--device")
    account = f"{patient}/{device}"
    if account in existing and not args.rotate:
        raise ConfigError(
            f"account {account!r} already exists in {args.passwd_file}: add --rotate to give it a new password"
        )
    password_out: Path = args.password_out or output_file(f"{patient}.{device}.mqtt-password")
    password = secrets.token_urlsafe(24)
    _write_secret(password_out, password, replace=args.rotate)
    try:
        _add_account(tool, args.passwd_file, account, password)
    except CrampWatchError:
        password_out.unlink(missing_ok=True)
        raise
    print(collector_toml(cfg, patient, device, password_out.resolve()), end="")
    print(
        f"account {account!r} {'has a new password' if account in existing else 'added'} in {args.passwd_file}; "
        f"its password is in {password_out} (mode 0600, not shown). Reload the broker so it reads the account "
        "(docker compose restart mosquitto, or systemctl reload mosquitto), then copy the TOML above and the "
        "password file to the bedside computer.",
        file=sys.stderr,
    )
    return 0


def new_pseudonym(taken: set[str]) -> str:
    """A random patient pseudonym not in ``taken``."""
    while True:
        pseudonym = "p-" + secrets.token_hex(PSEUDONYM_HEX_DIGITS)
        if pseudonym not in taken:
            return pseudonym


def collector_toml(cfg: CollectorSettings, patient: str, device: str, password_file: Path) -> str:
    """The connection settings of the new account as TOML for ``--config``, checked by loading them."""
    from crampwatch import settings as settings_mod

    from ..config import CollectorSettings

    url = urlsplit(cfg.mqtt_url)
    # The account name has a '/', which a URL's user part must carry as %2F.
    netloc = f"{quote(f'{patient}/{device}', safe='')}@{url.netloc}"
    values = {
        "mqtt_url": urlunsplit(url._replace(netloc=netloc)),
        "mqtt_password_file": password_file,
        "topic_prefix": cfg.topic_prefix,
        "patient": patient,
        "device": device,
    }
    CollectorSettings.model_validate(values)  # what we print must load back
    lines = [f"# MQTT account {patient}/{device} (cramp-collector provision). Keep the password file mode 0600."]
    for name, value in values.items():
        lines.append(f"{name} = {settings_mod.toml_value(value)}")
    if url.scheme == "mqtts":
        lines.append("# The CA that signed the broker's certificate, if it is not a public CA:")
        lines.append('# mqtt_ca_file = "/etc/crampwatch/mqtt-ca.crt"')
    return "\n".join(lines) + "\n"


def _mosquitto_passwd(given: str | None) -> str:
    found = given or shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/bin:/usr/sbin")
    if found is None or not os.access(found, os.X_OK):
        where = f"--mosquitto-passwd {given}: no such program" if given else "mosquitto_passwd not found"
        raise ConfigError(
            f"{where}. mosquitto_passwd comes with the mosquitto broker (Debian/Ubuntu: apt-get install "
            "mosquitto); run this command on the broker host, or give its path with --mosquitto-passwd"
        )
    return found


def _accounts(passwd_file: Path) -> set[str]:
    """The account names in mosquitto's password file (``name:hash`` lines); none if it does not exist yet."""
    try:
        text = passwd_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    except OSError as err:
        raise ConfigError(f"--passwd-file {passwd_file}: cannot read it ({err.strerror})") from None
    return {line.split(":", 1)[0] for line in text.splitlines() if ":" in line and not line.startswith("#")}


def _write_secret(path: Path, secret: str, *, replace: bool) -> None:
    """Write ``secret`` to a new file that only its owner can read (created 0600, never wider)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already: move it away, give --password-out, or add --rotate") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file (--rotate) keeps its old mode otherwise
        out.write(secret + "\n")


def _add_account(tool: str, passwd_file: Path, account: str, password: str) -> None:
    # The password goes on stdin (mosquitto_passwd asks twice), not as "-b ... PASSWORD" on the command line.
    create = [] if passwd_file.exists() else ["-c"]
    try:
        done = subprocess.run(
            [tool, *create, str(passwd_file), account],
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"{tool} did not run: {err}") from None
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split()) or f"exit code {done.returncode}"
        raise ConfigError(f"{tool} could not add {account!r} to {passwd_file}: {why}")
