"""Fixtures shared by every test: one fresh database per test on each backend.

SQLite always runs (a file in the test's temporary directory). PostgreSQL and MariaDB run
when ``MASTERTRAIL_TEST_POSTGRES_URL`` / ``MASTERTRAIL_TEST_MYSQL_URL`` are set: the suite
creates a database of its own on that server, empties it before each test and drops it at
the end. With ``CI=true`` a configured server that cannot be reached fails the run.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import Engine

import eventstore
from mastertrail import MasterModel, Registry

SERVER_ENV = {
    "postgresql": "MASTERTRAIL_TEST_POSTGRES_URL",
    "mysql": "MASTERTRAIL_TEST_MYSQL_URL",
}
BACKENDS = ["sqlite", "postgresql", "mysql"]
IN_CI = os.environ.get("CI", "").lower() == "true"

# Property tests run on machines shared with other work, so nothing in a profile may depend
# on how fast an example runs: no deadline, and no "too slow" health check. "Data too large"
# depends on the examples drawn, so a rare draw would fail a run the same code passed
# before. In CI the examples are derived from the test itself, so a red run can be repeated
# exactly, and a failure prints the blob that reproduces it.
settings.register_profile(
    "mastertrail",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci", parent=settings.get_profile("mastertrail"), derandomize=True, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "mastertrail"))


class FakeClock:
    """An injected clock: POSIX seconds that only move when a test moves them."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Server:
    """A database server reached through an admin URL, holding one test database."""

    def __init__(self, backend: str, admin_url: str) -> None:
        self.backend = backend
        self.admin_url = sa.make_url(admin_url)
        self.name = f"mastertrail_test_{uuid.uuid4().hex[:10]}"
        self.url = self.admin_url.set(database=self.name).render_as_string(hide_password=False)
        self.admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.own = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")

    def create(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {self.name}")

    def reset(self) -> None:
        """Empty the test database: on PostgreSQL drop and recreate its schema (much faster
        than the database), elsewhere drop and recreate the database."""
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
                )
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.name}")
                conn.exec_driver_sql(f"CREATE DATABASE {self.name}")
                return
        with self.own.connect() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        self.own.dispose()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
                )
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.name}")
        self.admin.dispose()
        self.own.dispose()


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, Server | str]]:
    """The configured servers by backend, or the reason a backend is skipped."""
    found: dict[str, Server | str] = {}
    for backend, variable in SERVER_ENV.items():
        admin_url = os.environ.get(variable)
        if not admin_url:
            found[backend] = f"{variable} is not set"
            continue
        server = Server(backend, admin_url)
        try:
            server.create()
        except sa.exc.OperationalError as error:
            message = f"{backend} at {variable} is unreachable: {error.orig}"
            if IN_CI:
                pytest.fail(f"CI=true and {message}")
            found[backend] = message
            continue
        found[backend] = server
    yield found
    for server in found.values():
        if isinstance(server, Server):
            server.drop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


def server_of(backend: str, servers: dict[str, Server | str]) -> Server:
    """The configured server of ``backend``; skips the test when there is none. (A server
    that is configured but does not answer has already failed the run under ``CI=true``:
    see :func:`servers`.)"""
    server = servers[backend]
    if isinstance(server, str):
        pytest.skip(server)
    return server


def empty_database(backend: str, servers: dict[str, Server | str], sqlite_file: Path) -> str:
    """The URL of an empty database on ``backend`` for one test: ``sqlite_file`` (which must
    not exist) on SQLite, elsewhere the session's database on the server, emptied. Skips
    when the backend is not configured."""
    if backend == "sqlite":
        return f"sqlite:///{sqlite_file}"
    server = server_of(backend, servers)
    server.reset()
    return server.url


@contextlib.contextmanager
def own_database(backend: str, servers: dict[str, Server | str], directory: Path) -> Iterator[str]:
    """The URL of a new, empty database of ``backend`` (a file in ``directory`` on SQLite),
    dropped afterwards: for fixtures that outlive one test, and for a test's second
    database. Skips when the backend is not configured."""
    if backend == "sqlite":
        yield f"sqlite:///{directory}/mastertrail.sqlite"
        return
    configured = server_of(backend, servers)
    database = Server(backend, configured.admin_url.render_as_string(hide_password=False))
    database.create()
    try:
        yield database.url
    finally:
        database.drop()


@pytest.fixture
def db_url(backend: str, servers: dict[str, Server | str], tmp_path: Path) -> str:
    """The URL of an empty database on the backend under test."""
    return empty_database(backend, servers, tmp_path / "mastertrail.sqlite")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database with the log's schema."""
    engine = eventstore.create_engine(db_url)
    eventstore.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    """A clock frozen at 2023-11-14T22:13:20Z until the test advances it."""
    return FakeClock()


@pytest.fixture
def registry(db_url: str, clock: FakeClock) -> Iterator[Registry]:
    """A registry with its schema, on an empty database, on the injected clock."""
    registry = Registry(db_url, clock=clock, actor="tester")
    registry.upgrade()
    yield registry
    registry.close()


@pytest.fixture
def active_master(registry: Registry, clock: FakeClock) -> int:
    """A master registered at T0 and activated 10 s later."""
    master_id = registry.find_master_id("host:/srv/active")
    clock.advance(10)
    registry.set_master_state(master_id, True)
    return master_id


@attrs.frozen
class Shared:
    """A registry and its clock on a database of its own, shared by one class's tests."""

    registry: Registry
    clock: FakeClock


@pytest.fixture(scope="class", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest,
    servers: dict[str, Server | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shared]:
    """A registry on a database of its own per class and backend. Class-scoped fixtures
    write what the class reads; the tests themselves take :func:`shared_registry`."""
    with own_database(str(request.param), servers, tmp_path_factory.mktemp("shared")) as url:
        clock = FakeClock()
        registry = Registry(url, clock=clock, actor="tester")
        registry.upgrade()
        yield Shared(registry, clock)
        registry.close()


def stored_state(registry: Registry) -> tuple[int, list[MasterModel]]:
    """The log's head position and the whole view: what any write changes."""
    with registry.engine.connect() as conn:
        head = eventstore.head_position(conn)
    return head, registry.get_masters()


@pytest.fixture
def shared_registry(shared: Shared) -> Iterator[Registry]:
    """The class's shared registry, for a test that only reads: the test fails if it
    wrote, so no test can come to depend on what another one wrote before it."""
    before = stored_state(shared.registry)
    yield shared.registry
    assert stored_state(shared.registry) == before, "a test on the shared registry wrote"
