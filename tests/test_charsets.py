"""A master's name the database cannot store exactly is refused with a typed error and
nothing is written; one it can is stored exactly as it was hashed, also through Buildbot's
MariaDB engine settings (``charset=utf8``) and with a non-strict ``sql_mode``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
from mastertrail import Registry, RegistryError
from tests.conftest import FakeClock, Server, server_of

ROCKET = "rocket-\U0001f680:/srv"  # a 4-byte character
CAFE = "café:/srv"  # in latin1 and utf8mb3
HAN = "中文:/srv"  # in utf8mb3, not in latin1


@pytest.fixture
def private(servers: dict[str, Server | str]) -> Iterator[Any]:
    """Make databases with a default character set of the test's choosing on a server;
    dropped at the end."""
    made: list[tuple[Server, str]] = []

    def make(backend: str, charset: str) -> str:
        server = server_of(backend, servers)
        name = f"mastertrail_cs_{uuid.uuid4().hex[:8]}"
        with server.admin.connect() as conn:
            if backend == "postgresql":
                conn.exec_driver_sql(
                    f"CREATE DATABASE {name} ENCODING '{charset}' LC_COLLATE 'C' LC_CTYPE 'C' "
                    "TEMPLATE template0"
                )
            else:
                conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET {charset}")
        made.append((server, name))
        return server.admin_url.set(database=name).render_as_string(hide_password=False)

    yield make
    for server, name in made:
        with server.admin.connect() as conn:
            if server.backend == "postgresql":
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")


def buildbot_engine(url: str, sql_mode: str) -> Engine:
    """An engine as Buildbot makes one for MariaDB (``charset=utf8``, ``use_unicode``), on a
    server whose ``sql_mode`` is ``sql_mode``."""
    engine = sa.create_engine(
        sa.make_url(url).update_query_dict({"charset": "utf8", "use_unicode": "True"}),
        pool_recycle=3600,
    )

    def set_mode(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET SESSION sql_mode = '{sql_mode}'")

    sa.event.listen(engine, "connect", set_mode)
    return engine


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        events = conn.exec_driver_sql("SELECT COUNT(*) FROM mastertrail_events").scalar_one()
        masters = conn.exec_driver_sql("SELECT COUNT(*) FROM masters").scalar_one()
        return int(events), int(masters)


def assert_refused(registry: Registry, name: str) -> None:
    """``find_master_id(name)`` raises UnstorableName, a ValueError, and writes nothing."""
    before = counts(registry.engine)
    with pytest.raises(eventstore.UnstorableName) as raised:
        registry.find_master_id(name)
    assert isinstance(raised.value, RegistryError)
    assert isinstance(raised.value, ValueError)
    assert counts(registry.engine) == before


def assert_stored_exactly(registry: Registry, name: str) -> None:
    """``name`` is registered, found again under the same id, read back exactly from the
    view and the log, and the log verifies."""
    master_id = registry.find_master_id(name)
    assert registry.find_master_id(name) == master_id
    master = registry.get_master(master_id)
    assert master is not None
    assert master.name == name
    assert registry.history(master_id)[0].data["name"] == name
    report = registry.verify()
    assert report.ok, report.problems


class TestBuildbotsMariaDBEngine:
    """Buildbot connects with ``charset=utf8``: a 4-byte character cannot pass."""

    @pytest.mark.parametrize("sql_mode", ["", "STRICT_TRANS_TABLES"])
    def test_a_four_byte_name_is_refused_and_others_are_stored_exactly(
        self, private: Any, clock: FakeClock, sql_mode: str
    ) -> None:
        """Whatever the ``sql_mode``, a name with U+1F680 is refused with a typed error and
        nothing is written; names of 2- and 3-byte characters are stored exactly."""
        url = private("mysql", "utf8mb4")
        Registry(url, clock=clock).upgrade()
        engine = buildbot_engine(url, sql_mode)
        registry = Registry(engine, clock=clock, actor="buildbot")
        try:
            assert_refused(registry, ROCKET)
            assert_stored_exactly(registry, CAFE)
            assert_stored_exactly(registry, HAN)
            assert_refused(registry, ROCKET)  # and again: never a raw error
        finally:
            engine.dispose()


class TestDatabaseDefaultCharset:
    """A database whose default character set cannot hold every character."""

    @pytest.mark.parametrize("charset", ["latin1", "utf8mb3"])
    def test_the_log_and_its_own_view_hold_any_name(
        self, private: Any, clock: FakeClock, charset: str
    ) -> None:
        """On mastertrail's own engine, the log's tables and a ``masters`` table it makes
        are ``utf8mb4``: a 4-byte name is stored exactly as it was hashed."""
        registry = Registry(private("mysql", charset), clock=clock)
        try:
            registry.upgrade()
            assert_stored_exactly(registry, ROCKET)
            assert_stored_exactly(registry, HAN)
        finally:
            registry.close()

    @pytest.mark.parametrize(
        ("charset", "refused", "stored"),
        [("latin1", [ROCKET, HAN], [CAFE]), ("utf8mb3", [ROCKET], [CAFE, HAN])],
    )
    def test_buildbots_masters_table_refuses_what_it_cannot_hold(
        self, private: Any, clock: FakeClock, charset: str, refused: list[str], stored: list[str]
    ) -> None:
        """A ``masters`` table Buildbot made in the database's default character set refuses
        the names it cannot hold, with a typed error and nothing written."""
        url = private("mysql", charset)
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # as Buildbot's model makes it
            conn.exec_driver_sql(
                "CREATE TABLE masters (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                "name TEXT NOT NULL, name_hash VARCHAR(40) NOT NULL, active INTEGER NOT NULL, "
                "last_active INTEGER NOT NULL, UNIQUE KEY master_name_hashes (name_hash))"
            )
        engine.dispose()
        registry = Registry(url, clock=clock)
        try:
            registry.upgrade()
            for name in refused:
                assert_refused(registry, name)
            for name in stored:
                assert_stored_exactly(registry, name)
        finally:
            registry.close()

    def test_a_latin1_postgresql_database_refuses_what_it_cannot_hold(
        self, private: Any, clock: FakeClock
    ) -> None:
        """A PostgreSQL database encoded in LATIN1 refuses a name outside it with a typed
        error (not a raw ``DataError``) and stores one inside it exactly."""
        registry = Registry(private("postgresql", "LATIN1"), clock=clock)
        try:
            registry.upgrade()
            assert_refused(registry, ROCKET)
            assert_refused(registry, HAN)
            assert_stored_exactly(registry, CAFE)
        finally:
            registry.close()
