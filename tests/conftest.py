"""Fixtures that start real servers (see tests/servers.py); missing binaries fail loudly, never skip."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.servers import InfluxServer, InfluxTestDatabase, InfluxV2WriteAdapter, MosquittoServer


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A fresh broker per test, so a test may kill/restart it freely. `.url` is mqtt://127.0.0.1:<port>."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    try:
        yield server
    finally:
        server.kill()  # nothing to save; SIGKILL is fastest


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd 1.6.7 for the whole session; tests get isolation through `influx_db`."""
    server = InfluxServer(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def influx_v2_adapter(influxdb: InfluxServer) -> Iterator[InfluxV2WriteAdapter]:
    """Per test, so a test may stop() it to simulate "database down" without affecting others."""
    if not influxdb.running:  # an earlier test killed the shared server: bring it back
        influxdb.start()
    with InfluxV2WriteAdapter(influxdb.url) as adapter:
        yield adapter


@pytest.fixture
def influx_db(
    request: pytest.FixtureRequest, influxdb: InfluxServer, influx_v2_adapter: InfluxV2WriteAdapter
) -> Iterator[InfluxTestDatabase]:
    """A new, uniquely named database (named after the test, for debugging); dropped afterwards."""
    test_name = re.sub(r"\W+", "_", request.node.name)[:40]
    name = f"{test_name}_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(name)
    yield InfluxTestDatabase(name=name, server=influxdb, adapter=influx_v2_adapter)
    if influxdb.running:
        influxdb.drop_database(name)


@pytest.fixture(autouse=True, scope="session")
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Spools and other collector state go to a temp dir, never to the user's home or /var/lib."""
    import os

    old = os.environ.get("STATE_DIRECTORY")
    os.environ["STATE_DIRECTORY"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("STATE_DIRECTORY", None)
    else:
        os.environ["STATE_DIRECTORY"] = old
