"""``mastertrail.Registry`` as CONTRACT §3 names it, on SQLite, PostgreSQL and MariaDB:
construction, the tables, the models, the log as read and its metadata."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import pytest
import sqlalchemy as sa

import eventstore
from mastertrail import (
    InvalidArgumentType,
    Registry,
    RegistryError,
    SchemaMissing,
    StoreUnavailable,
)
from tests.conftest import BACKENDS, FakeClock, Server
from tests.registry_support import (
    T0,
    UTC,
    at,
    log_of,
    snapshot,
)


class TestConstruction:
    def test_a_url_or_an_engine_is_accepted(self, db_url: str, clock: FakeClock) -> None:
        """A Registry built on an Engine works like one built on its URL."""
        engine = eventstore.create_engine(db_url)
        try:
            registry = Registry(engine, clock=clock)
            registry.upgrade()
            master_id = registry.find_master_id("host:/srv/a")
            assert Registry(db_url, clock=clock).get_master(master_id) is not None
        finally:
            engine.dispose()

    def test_the_default_actor_is_host_and_pid(self, db_url: str, clock: FakeClock) -> None:
        """Without ``actor=``, events name ``<host>:<pid>`` as the actor."""
        registry = Registry(db_url, clock=clock)
        registry.upgrade()
        registry.find_master_id("host:/srv/a")
        (event,) = log_of(registry)
        assert event.metadata["actor"] == f"{socket.gethostname()}:{os.getpid()}"
        registry.close()

    @pytest.mark.parametrize(
        ("options", "error"),
        [({"clock": 5}, InvalidArgumentType), ({"actor": 5}, InvalidArgumentType)],
    )
    def test_bad_options_are_typed_errors(
        self, db_url: str, options: dict[str, Any], error: type[Exception]
    ) -> None:
        """A clock that is not callable or an actor that is not a str is refused."""
        with pytest.raises(error):
            Registry(db_url, **options)

    def test_a_database_without_schema_is_refused(self, db_url: str, clock: FakeClock) -> None:
        """Before upgrade() calls raise SchemaMissing, a RegistryError, and create nothing."""
        registry = Registry(db_url, clock=clock)
        with pytest.raises(SchemaMissing):
            registry.find_master_id("host:/srv/a")
        with pytest.raises(RegistryError):
            registry.get_masters()
        with registry.engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
        registry.close()

    def test_upgrade_is_idempotent(self, registry: Registry, active_master: int) -> None:
        """A second upgrade() writes nothing and keeps every master."""
        before = snapshot(registry)
        registry.upgrade()
        assert snapshot(registry) == before


class TestStoreUnavailable:
    @pytest.mark.parametrize(
        "url",
        [
            "postgresql+psycopg://root@127.0.0.1:1/test",
            "mysql+pymysql://root@127.0.0.1:1/test",
            "sqlite:////nonexistent-directory/mastertrail.sqlite",
        ],
    )
    def test_a_database_that_is_down_raises_store_unavailable(self, url: str) -> None:
        """Nothing listening (or no such directory): StoreUnavailable, a RegistryError."""
        registry = Registry(url)
        with pytest.raises(StoreUnavailable):
            registry.upgrade()
        with pytest.raises(RegistryError):
            registry.find_master_id("host:/srv/a")
        registry.close()

    CALLS: ClassVar[dict[str, Callable[[Registry], object]]] = {
        "find_master_id": lambda r: r.find_master_id("host:/srv/a"),
        "set_master_state": lambda r: r.set_master_state(1, True),
        "get_master": lambda r: r.get_master(1),
        "get_masters": lambda r: r.get_masters(),
        "history": lambda r: r.history(1),
        "masters_as_of": lambda r: r.masters_as_of(1),
    }

    @pytest.mark.parametrize("call", sorted(CALLS))
    @pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "sqlite"], indirect=True)
    def test_a_connection_killed_mid_call_raises_store_unavailable_then_recovers(
        self, registry: Registry, servers: dict[str, Server | str], backend: str, call: str
    ) -> None:
        """The server drops the connection between checkout and the call's first query (a
        restart, an administrator's kill): StoreUnavailable, never a raw driver error, for
        reads as for writes; the next call on the same registry succeeds."""
        registry.find_master_id("host:/srv/a")
        server = servers[backend]
        assert isinstance(server, Server)
        admin = sa.create_engine(server.url)
        armed = [True]

        def kill_own_connection(conn: sa.Connection, *_: object) -> None:
            if not armed[0]:
                return
            armed[0] = False
            dbapi = conn.connection.dbapi_connection
            with admin.connect() as other:
                if backend == "postgresql":
                    pid = dbapi.info.backend_pid  # type: ignore[union-attr]
                    other.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
                else:
                    other.exec_driver_sql(f"KILL {int(dbapi.thread_id())}")  # type: ignore[union-attr]

        before = snapshot(registry)
        sa.event.listen(registry.engine, "before_cursor_execute", kill_own_connection)
        try:
            with pytest.raises(StoreUnavailable):
                self.CALLS[call](registry)
            assert not armed[0]
        finally:
            sa.event.remove(registry.engine, "before_cursor_execute", kill_own_connection)
            admin.dispose()
        assert snapshot(registry) == before
        self.CALLS[call](registry)


class TestTables:
    def test_the_view_has_buildbots_columns_and_values(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """``masters`` holds id, name, sha1 name_hash, active as int, last_active as int."""
        with registry.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("masters")}
            row = conn.execute(sa.text("SELECT * FROM masters")).mappings().one()
        assert columns == {"id", "name", "name_hash", "active", "last_active"}
        assert dict(row) == {
            "id": active_master,
            "name": "host:/srv/active",
            "name_hash": hashlib.sha1(b"host:/srv/active").hexdigest(),
            "active": 1,
            "last_active": T0 + 10,
        }
        assert type(row["active"]) is int
        assert type(row["last_active"]) is int

    def test_the_log_is_mastertrail_events(self, registry: Registry, active_master: int) -> None:
        """Both events of the master are rows of ``mastertrail_events``."""
        with registry.engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM mastertrail_events")).scalar()
        assert count == 2


class TestMasterModel:
    def test_models_are_frozen_aware_utc_whole_seconds(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """last_active is aware UTC without microseconds even for a fractional clock."""
        clock.now = T0 + 0.987654
        master_id = registry.find_master_id("host:/srv/a")
        master = registry.get_master(master_id)
        assert master is not None
        assert master.last_active == at(T0)
        assert master.last_active.utcoffset() == dt.timedelta(0)
        assert master.last_active.microsecond == 0
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            master.active = True  # type: ignore[misc]


class TestEvents:
    def test_the_whole_log_in_gap_free_position_order(
        self, registry: Registry, active_master: int
    ) -> None:
        """events() yields positions 1..n."""
        registry.find_master_id("host:/srv/b")
        assert [e.position for e in registry.events()] == [1, 2, 3]

    def test_after_and_limit_select_a_window(self, registry: Registry) -> None:
        """after=2, limit=3 yields positions 3, 4, 5; a limit past the end stops there."""
        for n in range(6):
            registry.find_master_id(f"host:/srv/{n}")
        assert [e.position for e in registry.events(after=2, limit=3)] == [3, 4, 5]
        assert [e.position for e in registry.events(after=4, limit=100)] == [5, 6]
        assert list(registry.events(after=6)) == []
        assert list(registry.events(limit=0)) == []

    def test_events_are_streamed(self, registry: Registry, active_master: int) -> None:
        """events() returns a lazy iterator that sees what committed after it was made."""
        stream = registry.events()
        assert iter(stream) is stream
        registry.find_master_id("host:/srv/later")
        assert [e.position for e in stream] == [1, 2, 3]

    def test_versions_count_each_stream_from_one(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Every master's events carry versions 1..n with no gap."""
        other = registry.find_master_id("host:/srv/b")
        registry.set_master_state(other, True)
        registry.set_master_state(active_master, False)
        versions: dict[int, list[int]] = {}
        for event in registry.events():
            versions.setdefault(event.master_id, []).append(event.version)
        assert versions == {active_master: [1, 2, 3], other: [1, 2]}

    def test_recorded_events_are_frozen(self, registry: Registry, active_master: int) -> None:
        """A RecordedEvent cannot be changed."""
        event = next(registry.events())
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.position = 99  # type: ignore[misc]


class TestMetadata:
    def test_every_event_names_actor_host_pid_and_reason(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Each event's metadata has the actor, this host, this pid and a reason."""
        clock.advance(10)
        registry.set_master_state(active_master, True)
        registry.set_master_state(active_master, False)
        reasons = []
        for event in registry.events():
            assert event.metadata["actor"] == "tester"
            assert event.metadata["host"] == socket.gethostname()
            assert event.metadata["pid"] == os.getpid()
            reasons.append(event.metadata["reason"])
        assert reasons == ["registered", "started", "heartbeat", "stopped"]

    def test_recorded_at_comes_from_the_injected_clock(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """recorded_at is the clock's reading, to the microsecond, in UTC."""
        clock.now = T0 + 123.25
        registry.find_master_id("host:/srv/a")
        (event,) = log_of(registry)
        assert event.recorded_at == dt.datetime(2023, 11, 14, 22, 15, 23, 250_000, tzinfo=UTC)
