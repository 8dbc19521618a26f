"""Real servers for integration tests: mosquitto, influxd 1.6.7 and a v2-write adapter in front of it.

Why real servers and not mocks: the failures that matter in CrampWatch (PUBACKed messages lost on a broker
crash, InfluxDB field-type conflicts, a database that is down) only come from the real programs. Each
server runs on free 127.0.0.1 ports in its own temp dir and logs to a file there, so a failure to start
is reported with the tail of that log.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.02
INSTALL_HINT = 'run "bash tests/run.sh" (installs mosquitto and influxdb with apt-get)'

_live_processes: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last line of defence (e.g. after Ctrl-C): never leave a broker or influxd running."""
    for proc in list(_live_processes):
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT_S)


def free_port() -> int:
    """Ask the kernel for a free TCP port (tiny race window, acceptable for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str) -> str:
    """Find a server binary; /usr/sbin is not on a non-root PATH, but Debian puts mosquitto there."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise RuntimeError(f"{name} is not installed: {INSTALL_HINT}")
    return found


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log file at {path})"
    return "\n".join(text.splitlines()[-lines:])


def port_open(host: str, port: int) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ServerProcess:
    """A server binary run as a child process, with start/stop/kill/restart on the same ports and dirs."""

    name = "server"
    host = "127.0.0.1"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # Subclasses describe how to run and how to tell that the server is ready.
    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The server's process id, 0 when it is not running (for CPU accounting in benchmarks)."""
        return self._proc.pid if self._proc is not None else 0

    def start(self) -> None:
        """Spawn the server and wait until it serves; raise RuntimeError with the log tail if it does not."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        cmd = self.command()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        self._proc = proc
        _live_processes.add(proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.is_ready():
            if proc.poll() is not None:
                self._reap()
                raise RuntimeError(
                    f"{self.name} exited with code {proc.returncode} during start-up ({' '.join(cmd)}).\n"
                    f"Log tail ({self.log_path}):\n{log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"{self.name} not ready after {START_TIMEOUT_S:.0f} s ({' '.join(cmd)}).\n"
                    f"Log tail ({self.log_path}):\n{log_tail(self.log_path)}"
                )
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        """Clean shutdown (SIGTERM): the server gets to save its state."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Crash (SIGKILL): only what the server already wrote to disk survives."""
        self._signal(signal.SIGKILL)

    def restart(self, *, crash: bool = False) -> None:
        """Stop (or kill, if crash) and start again on the same ports with the same data dirs."""
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            _live_processes.discard(self._proc)
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class MosquittoServer(ServerProcess):
    """A mosquitto broker with crash-safe persistence (see infrastructure.md §3.1).

    `autosave_on_changes true` with `autosave_interval 1` saves the database on every change, so a SIGKILL
    right after a PUBACK loses nothing; without it mosquitto only saves periodically.

    ``per_change_save=False`` is the broker of detector confirmation (docs/reliability.md): sessions are
    still persisted, but only every ``autosave_interval`` seconds, so a SIGKILL loses what came since;
    the collectors' spools hold it until the detector confirms it.
    """

    name = "mosquitto"

    def __init__(self, workdir: Path, *, per_change_save: bool = True, autosave_interval: int = 60) -> None:
        super().__init__(workdir)
        self.binary = find_binary("mosquitto")
        self.port = free_port()
        self.conf_path = workdir / "mosquitto.conf"
        persistence = workdir / "persistence"
        persistence.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {persistence}",
            *(
                ["autosave_interval 1", "autosave_on_changes true"]
                if per_change_save
                else [f"autosave_interval {autosave_interval}"]
            ),
            "persistent_client_expiration 1d",
            "max_queued_messages 100000",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            # As root mosquitto drops to user "mosquitto", which cannot write into pytest's 0700 temp dirs.
            lines.append("user root")
        self.conf_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf_path)]

    def is_ready(self) -> bool:
        return port_open(self.host, self.port)


class InfluxQueryError(RuntimeError):
    """influxd answered an InfluxQL query with an error (the message is influxd's)."""


class InfluxServer(ServerProcess):
    """The real influxd 1.6.7 from Debian, queried with InfluxQL over its 1.x HTTP API.

    With ``admin=(user, password)`` it demands authentication (``auth-enabled``), creates that admin
    user at start, and queries as that user; writes through the adapter then need the token
    ``"user:password"``, as on InfluxDB 1.8+.
    """

    name = "influxd"

    def __init__(self, workdir: Path, *, admin: tuple[str, str] | None = None) -> None:
        super().__init__(workdir)
        self.admin = admin
        self.binary = find_binary("influxd")
        self.port = free_port()
        self.rpc_port = free_port()
        self.conf_path = workdir / "influxdb.conf"
        data = workdir / "data"
        self.conf_path.write_text(
            f"""\
reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{data / "meta"}"

[data]
  dir = "{data / "data"}"
  wal-dir = "{data / "wal"}"
  query-log-enabled = false

[http]
  bind-address = "{self.host}:{self.port}"
  auth-enabled = {"true" if admin else "false"}
  log-enabled = false

[monitor]
  store-enabled = false

[logging]
  level = "warn"
"""
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.conf_path)]

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                return bool(resp.status == 204)
        except OSError:  # URLError and HTTPError are OSErrors
            return False

    def start(self) -> None:
        super().start()
        if self.admin is not None:
            # influxd lets anyone create the first admin user; with the same password this is idempotent.
            user, password = self.admin
            self.query(f"CREATE USER {quote_ident(user)} WITH PASSWORD {quote_string(password)} WITH ALL PRIVILEGES")

    def create_database(self, name: str) -> None:
        self.query(f"CREATE DATABASE {quote_ident(name)}")

    def drop_database(self, name: str) -> None:
        self.query(f"DROP DATABASE {quote_ident(name)}")

    def query(self, influxql: str, db: str = "") -> list[dict[str, Any]]:
        """Run InfluxQL (POST /query, epoch=ms) and return the rows of the first statement as dicts.

        Each row maps column names to values (time in ms) plus the series' tags, so GROUP BY tag queries
        return all their series. Raises InfluxQueryError with influxd's message if any statement failed.
        """
        form = urllib.parse.urlencode({"q": influxql, "db": db, "epoch": "ms"}).encode()
        request = urllib.request.Request(f"{self.url}/query", data=form)
        if self.admin is not None:
            request.add_header("Authorization", basic_auth(*self.admin))
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as err:
            with err:
                body = err.read().decode(errors="replace")
            raise InfluxQueryError(f"HTTP {err.code} for {influxql!r}: {body}") from None
        if "error" in payload:
            raise InfluxQueryError(f"{payload['error']} (query: {influxql!r})")
        results: list[dict[str, Any]] = payload.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxQueryError(f"{result['error']} (query: {influxql!r})")
        if not results:
            return []
        rows: list[dict[str, Any]] = []
        for series in results[0].get("series", []):
            tags: dict[str, Any] = series.get("tags", {})
            columns = series["columns"]
            rows.extend({**tags, **dict(zip(columns, values, strict=True))} for values in series["values"])
        return rows


def quote_ident(name: str) -> str:
    """Quote an InfluxQL identifier (database, measurement) safely."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def quote_string(value: str) -> str:
    """Quote an InfluxQL string literal (a password)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


_PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}


class InfluxV2WriteAdapter:
    """Serves InfluxDB 2.x `POST /api/v2/write` by forwarding to influxd 1.6.7's `/write`.

    influxd 1.6.7 has no /api/v2 (it came in 1.8), but influxdb-client only writes there. With this the
    unmodified client write path runs against a real storage engine, and influxd's errors (status and
    body) reach the client verbatim. stop()/start() on the same port simulate the database being down.
    A token ``user:password`` (``Authorization: Token user:password``, the 1.8+ convention) is forwarded
    as HTTP basic auth, which 1.6.7 understands; other tokens are not forwarded.
    HTTP/1.0 (one request per connection) so that stop() also ends keep-alive connections.
    """

    def __init__(self, influx_url: str) -> None:
        self.influx_url = influx_url.rstrip("/")
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _make_handler(self.influx_url))
        server.daemon_threads = True
        # A short poll interval makes stop() take milliseconds instead of half a second.
        thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name=f"influx-v2-adapter-{self.port}", daemon=True
        )
        thread.start()
        self._server = server

    def stop(self) -> None:
        """Stop listening: clients now get connection refused, as with a database that is down."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    close = stop

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _make_handler(influx_url: str) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/ping":
                self._reply(204, b"")
            elif path == "/health":
                health = {
                    "name": "influxdb",
                    "message": "ready for queries and writes",
                    "status": "pass",
                    "checks": [],
                    "version": "1.6.7-v2-write-adapter",
                    "commit": "none",
                }
                self._reply(200, json.dumps(health).encode())
            else:
                self._reply(404, b'{"code":"not found","message":"only /api/v2/write, /ping, /health"}')

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = urllib.parse.parse_qs(url.query)
            bucket = params.get("bucket", [""])[0]
            precision = _PRECISIONS.get(params.get("precision", ["ns"])[0])
            if url.path != "/api/v2/write" or not bucket or precision is None:
                self._reply(
                    400,
                    b'{"code":"invalid","message":"need POST /api/v2/write?bucket=db[/rp]&precision=ns|us|ms|s"}',
                )
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            db, _, rp = bucket.partition("/")
            query = urllib.parse.urlencode({"db": db, "rp": rp, "precision": precision})
            request = urllib.request.Request(f"{influx_url}/write?{query}", data=body)
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            user, colon, password = token.partition(":")
            if scheme == "Token" and colon:
                request.add_header("Authorization", basic_auth(user, password))
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    self._reply(resp.status, resp.read())
            except urllib.error.HTTPError as err:
                with err:
                    self._reply(err.code, err.read())
            except OSError as err:
                self._reply(503, json.dumps({"code": "unavailable", "message": f"influxd: {err}"}).encode())

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 204:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output clean."""

    return Handler


@dataclass(frozen=True)
class InfluxTestDatabase:
    """A fresh database on the shared influxd, as handed to a test by the `influx_db` fixture.

    Write with influxdb-client to `v2_url` using `bucket` (or just `name`); read back with `query()`.
    """

    name: str
    server: InfluxServer
    adapter: InfluxV2WriteAdapter

    @property
    def influx_url(self) -> str:
        """The raw influxd 1.x API (/query, /write, /ping)."""
        return self.server.url

    @property
    def v2_url(self) -> str:
        """URL for influxdb-client (InfluxDBClient(url=..., token="x", org="-"))."""
        return self.adapter.url

    @property
    def bucket(self) -> str:
        return f"{self.name}/autogen"

    def query(self, influxql: str) -> list[dict[str, Any]]:
        return self.server.query(influxql, db=self.name)
