"""``mastertrail.Registry`` as CONTRACT §3 names it, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import attrs
import pytest
import sqlalchemy as sa
import structlog.testing
from freezegun import freeze_time

import commands.masters
import commands.retry
import eventstore
from eventstore.errors import ConcurrencyError
from mastertrail import (
    InvalidArgument,
    InvalidArgumentType,
    MasterModel,
    RecordedEvent,
    Registry,
    RegistryError,
    SchemaMissing,
    StoreUnavailable,
)
from projections import view
from tests.conftest import BACKENDS, FakeClock, Server

UTC = dt.UTC
#: The FakeClock's start, 2023-11-14T22:13:20Z.
T0 = 1_700_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

Snapshot = dict[str, list[tuple[Any, ...]]]


def at(seconds: float) -> dt.datetime:
    """The aware UTC datetime of POSIX seconds."""
    return dt.datetime.fromtimestamp(seconds, UTC)


def snapshot(registry: Registry) -> Snapshot:
    """Every row of the log, its head and the view, as stored."""
    with registry.engine.connect() as conn:
        return {
            table: [
                tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))
            ]
            for table in ("mastertrail_events", "mastertrail_head", "masters")
        }


def head(registry: Registry) -> int:
    """The position of the newest event."""
    with registry.engine.connect() as conn:
        return eventstore.head_position(conn)


def log_of(registry: Registry) -> list[RecordedEvent]:
    return list(registry.events())


def insert_raw_master(
    registry: Registry, master_id: int, name: str, *, active: bool, last_active: int
) -> None:
    """A ``masters`` row written behind the log's back, as Buildbot itself would have."""
    with registry.engine.begin() as conn:
        conn.execute(
            view.masters.insert().values(
                id=master_id,
                name=name,
                name_hash=hashlib.sha1(name.encode()).hexdigest(),
                active=int(active),
                last_active=last_active,
            )
        )


def execute(registry: Registry, statement: str, **params: object) -> None:
    with registry.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


link_metadata = sa.MetaData()
scheduler_masters = sa.Table(
    "scheduler_masters",
    link_metadata,
    sa.Column("schedulerid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("masterid", sa.Integer, nullable=False),
)
changesource_masters = sa.Table(
    "changesource_masters",
    link_metadata,
    sa.Column("changesourceid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("masterid", sa.Integer, nullable=False),
)


def links(registry: Registry) -> dict[str, list[tuple[int, int]]]:
    """The rows of both link tables, by table."""
    with registry.engine.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in (scheduler_masters, changesource_masters)
        }


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
    """A registry for tests that write nothing (or only what the next test expects)."""
    backend, server = str(request.param), None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('shared')}/mastertrail.sqlite"
    else:
        configured = servers[backend]
        if isinstance(configured, str):
            pytest.skip(configured)
        server = Server(backend, configured.admin_url.render_as_string(hide_password=False))
        server.create()
        url = server.url
    clock = FakeClock()
    registry = Registry(url, clock=clock, actor="tester")
    registry.upgrade()
    yield Shared(registry, clock)
    registry.close()
    if server is not None:
        server.drop()


@pytest.fixture(scope="class")
def fleet(shared: Shared) -> list[int]:
    """Five masters: names out of id order, three active with distinct last_active."""
    registry, clock = shared.registry, shared.clock
    ids = [registry.find_master_id(n) for n in ("m:c", "m:a", "m:e", "m:b", "m:d")]
    for offset, master_id in zip((30, 10, 20), ids[::2], strict=True):
        clock.now = T0 + offset
        registry.set_master_state(master_id, True)
    return ids


@pytest.fixture(scope="class")
def target(shared: Shared) -> int:
    """An active master whose state any write would change."""
    master_id = shared.registry.find_master_id("host:/srv/active")
    shared.registry.set_master_state(master_id, True)
    return master_id


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


class TestFindMasterId:
    def test_a_new_name_is_registered_inactive_and_last_active_now(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """A new name gets an id; it reads back inactive with last_active = now."""
        clock.advance(5)
        master_id = registry.find_master_id("host:/srv/new")
        assert registry.get_master(master_id) == MasterModel(
            master_id, "host:/srv/new", False, at(T0 + 5)
        )

    def test_registration_is_one_event(self, registry: Registry, clock: FakeClock) -> None:
        """The log gets one master.registered event, version 1, with the name and now."""
        master_id = registry.find_master_id("host:/srv/new")
        (event,) = log_of(registry)
        assert (event.master_id, event.version, event.type) == (master_id, 1, "master.registered")
        assert event.data == {"name": "host:/srv/new", "last_active": T0}
        assert event.metadata["reason"] == "registered"

    def test_an_existing_name_returns_its_id(self, registry: Registry, clock: FakeClock) -> None:
        """Looking a name up again returns the id it was registered with."""
        master_id = registry.find_master_id("host:/srv/a")
        clock.advance(60)
        assert registry.find_master_id("host:/srv/a") == master_id

    def test_looking_up_an_existing_name_writes_nothing(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """The lookup leaves log, head and view exactly as they were."""
        before = snapshot(registry)
        clock.advance(60)
        registry.find_master_id("host:/srv/active")
        assert snapshot(registry) == before

    def test_names_are_case_sensitive(self, registry: Registry) -> None:
        """``some:master`` and ``some:Master`` are two masters."""
        lower = registry.find_master_id("some:master")
        upper = registry.find_master_id("some:Master")
        assert lower != upper
        assert [m.name for m in registry.get_masters()] == ["some:master", "some:Master"]
        assert registry.find_master_id("some:Master") == upper

    def test_new_names_get_distinct_growing_ids(self, registry: Registry) -> None:
        """Each new name gets an id greater than every id before it."""
        ids = [registry.find_master_id(f"host:/srv/{n}") for n in range(5)]
        assert ids == sorted(set(ids))
        assert ids[0] >= 1

    @pytest.mark.parametrize(
        "name",
        ["x" * 1024, "emoji:🚀/ünïcode", "é" * 1024, "trailing ", "tab-free:/a b"],
    )
    def test_any_valid_name_round_trips(self, shared: Shared, name: str) -> None:
        """Long and non-ASCII names are stored and found again exactly."""
        registry = shared.registry
        master_id = registry.find_master_id(name)
        master = registry.get_master(master_id)
        assert master is not None
        assert master.name == name
        assert registry.find_master_id(name) == master_id
        assert registry.verify().ok

    def test_names_differing_only_in_trailing_space_are_two_masters(
        self, registry: Registry
    ) -> None:
        """``a`` and ``a `` are different names, even where SQL pads comparisons."""
        assert registry.find_master_id("a") != registry.find_master_id("a ")


class TestSetMasterState:
    def test_inactive_to_active_returns_true_and_moves_last_active(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """Activating an inactive master: True, active, last_active = now, master.activated."""
        master_id = registry.find_master_id("host:/srv/a")
        clock.advance(30)
        assert registry.set_master_state(master_id, True) is True
        assert registry.get_master(master_id) == MasterModel(
            master_id, "host:/srv/a", True, at(T0 + 30)
        )
        event = log_of(registry)[-1]
        assert (event.type, event.metadata["reason"]) == ("master.activated", "started")

    def test_active_to_active_is_a_check_in(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Activating an active master: False, last_active moves to now, master.checked_in."""
        clock.advance(45)
        assert registry.set_master_state(active_master, True) is False
        master = registry.get_master(active_master)
        assert master is not None
        assert (master.active, master.last_active) == (True, at(T0 + 55))
        event = log_of(registry)[-1]
        assert (event.type, event.metadata["reason"]) == ("master.checked_in", "heartbeat")
        # last_active is the second the event was recorded in: left out of the data.
        assert (event.schema_version, event.data) == (2, {})
        assert eventstore.CODEC.decode(event).last_active == T0 + 55

    def test_active_to_inactive_returns_true_and_keeps_last_active(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Deactivating: True, inactive, last_active unchanged, master.deactivated (stopped)."""
        clock.advance(300)
        assert registry.set_master_state(active_master, False) is True
        master = registry.get_master(active_master)
        assert master is not None
        assert (master.active, master.last_active) == (False, at(T0 + 10))
        event = log_of(registry)[-1]
        assert (event.type, event.metadata["reason"]) == ("master.deactivated", "stopped")
        assert event.data == {
            "last_active": T0 + 10,
            "timeout": None,
            "schedulers": [],
            "changesources": [],
        }

    def test_inactive_to_inactive_returns_false_and_writes_nothing(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """Deactivating an inactive master: False, and log and view are unchanged."""
        master_id = registry.find_master_id("host:/srv/a")
        before = snapshot(registry)
        clock.advance(30)
        assert registry.set_master_state(master_id, False) is False
        assert snapshot(registry) == before

    @pytest.mark.parametrize("active", [True, False])
    def test_an_unknown_id_returns_false_and_writes_nothing(
        self, registry: Registry, active_master: int, active: bool
    ) -> None:
        """A master id nobody registered: False, nothing written, nothing created."""
        before = snapshot(registry)
        assert registry.set_master_state(active_master + 1, active) is False
        assert registry.get_master(active_master + 1) is None
        assert snapshot(registry) == before

    def test_deactivation_by_another_master_is_recorded_as_expiry(
        self, registry: Registry, db_url: str, clock: FakeClock, active_master: int
    ) -> None:
        """A registered master deactivating another records reason expired and its name."""
        other = Registry(db_url, clock=clock, actor="host:/srv/other")
        other.find_master_id("host:/srv/other")
        assert other.set_master_state(active_master, False) is True
        event = log_of(registry)[-1]
        assert event.metadata["reason"] == "expired"
        assert event.metadata["actor"] == "host:/srv/other"
        other.close()


class TestLinks:
    @pytest.fixture
    def linked(self, registry: Registry, clock: FakeClock) -> tuple[int, int]:
        """Two active masters, each with a scheduler and a change source link."""
        with registry.engine.begin() as conn:
            link_metadata.create_all(conn)
        first = registry.find_master_id("host:/srv/first")
        second = registry.find_master_id("host:/srv/second")
        for master_id in (first, second):
            registry.set_master_state(master_id, True)
        with registry.engine.begin() as conn:
            conn.execute(
                scheduler_masters.insert(),
                [
                    {"schedulerid": 1, "masterid": first},
                    {"schedulerid": 2, "masterid": second},
                    {"schedulerid": 3, "masterid": first},
                ],
            )
            conn.execute(
                changesource_masters.insert(),
                [
                    {"changesourceid": 1, "masterid": first},
                    {"changesourceid": 2, "masterid": second},
                ],
            )
        return first, second

    def test_deactivation_deletes_the_masters_links_only(
        self, registry: Registry, linked: tuple[int, int]
    ) -> None:
        """A deactivated master loses its scheduler and change source links; others keep theirs."""
        first, second = linked
        assert registry.set_master_state(first, False) is True
        assert links(registry) == {
            "scheduler_masters": [(2, second)],
            "changesource_masters": [(2, second)],
        }

    def test_the_deactivation_records_the_links_it_removed(
        self, registry: Registry, linked: tuple[int, int], clock: FakeClock
    ) -> None:
        """The stop's event names the scheduler and change source links it deleted, and so
        does an expiry's; the trail keeps what the tables forget."""
        first, second = linked
        registry.set_master_state(first, False)
        stop = registry.history(first)[-1]
        assert (stop.schema_version, stop.data["schedulers"], stop.data["changesources"]) == (
            2,
            [1, 3],
            [1],
        )
        clock.advance(700)
        registry.expire_masters()
        expiry = registry.history(second)[-1]
        assert (expiry.data["schedulers"], expiry.data["changesources"]) == ([2], [2])

    def test_activation_and_check_ins_keep_links(
        self, registry: Registry, linked: tuple[int, int], clock: FakeClock
    ) -> None:
        """Checking in, and activating an inactive master, do not touch links."""
        with registry.engine.begin() as conn:
            conn.execute(scheduler_masters.insert().values(schedulerid=4, masterid=99))
        before = links(registry)
        clock.advance(10)
        registry.set_master_state(linked[0], True)
        registry.set_master_state(registry.find_master_id("host:/srv/third"), True)
        assert links(registry) == before

    def test_expiry_deletes_links(
        self, registry: Registry, linked: tuple[int, int], clock: FakeClock
    ) -> None:
        """A master expired by housekeeping loses its links too."""
        clock.advance(700)
        registry.set_master_state(linked[1], True)
        expired = registry.expire_masters()
        assert [m.id for m in expired] == [linked[0]]
        assert links(registry) == {
            "scheduler_masters": [(2, linked[1])],
            "changesource_masters": [(2, linked[1])],
        }

    def test_links_are_deleted_in_the_deactivations_transaction(
        self, registry: Registry, active_master: int
    ) -> None:
        """When deleting links fails, the deactivation is not recorded either."""
        with registry.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE scheduler_masters (schedulerid INTEGER)"))
        before = snapshot(registry)
        with pytest.raises(sa.exc.DBAPIError):
            registry.set_master_state(active_master, False)
        assert snapshot(registry) == before
        master = registry.get_master(active_master)
        assert master is not None
        assert master.active is True

    def test_deactivation_works_without_link_tables(
        self, registry: Registry, active_master: int
    ) -> None:
        """In a database with no link tables a deactivation deletes nothing, and records
        that it removed no link."""
        assert registry.set_master_state(active_master, False) is True
        stop = registry.history(active_master)[-1]
        assert (stop.data["schedulers"], stop.data["changesources"]) == ([], [])


class TestSetAllMastersActiveLongTimeAgo:
    def test_every_master_becomes_active_at_the_epoch(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Active and inactive masters alike read back active with last_active at the epoch."""
        inactive = registry.find_master_id("host:/srv/inactive")
        clock.advance(60)
        registry.set_all_masters_active_long_time_ago()
        assert registry.get_masters() == [
            MasterModel(active_master, "host:/srv/active", True, EPOCH),
            MasterModel(inactive, "host:/srv/inactive", True, EPOCH),
        ]

    def test_each_masters_trail_shows_it(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Each master's newest event is master.housekeeping_forced, reason upgrade."""
        inactive = registry.find_master_id("host:/srv/inactive")
        registry.set_all_masters_active_long_time_ago()
        for master_id in (active_master, inactive):
            event = registry.history(master_id)[-1]
            assert event.type == "master.housekeeping_forced"
            assert event.metadata["reason"] == "upgrade"
            assert event.data == {"last_active": 0}

    def test_the_next_housekeeping_expires_them_all(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """After it, expire_masters() deactivates every master."""
        inactive = registry.find_master_id("host:/srv/inactive")
        registry.set_all_masters_active_long_time_ago()
        expired = registry.expire_masters()
        assert [m.id for m in expired] == [active_master, inactive]
        assert registry.get_masters(active=True) == []

    def test_with_no_masters_nothing_is_written(self, registry: Registry) -> None:
        """On an empty registry it writes nothing."""
        before = snapshot(registry)
        registry.set_all_masters_active_long_time_ago()
        assert snapshot(registry) == before


class TestExpireMasters:
    def test_a_master_silent_exactly_the_timeout_is_kept(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """last_active exactly now - timeout is not older than it: nothing is expired or written."""
        clock.advance(600)
        before = snapshot(registry)
        assert registry.expire_masters(timeout=600) == []
        assert snapshot(registry) == before

    def test_a_master_silent_longer_than_the_timeout_is_expired(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """One second more and it is deactivated and returned, last_active unchanged."""
        clock.advance(601)
        expected = MasterModel(active_master, "host:/srv/active", False, at(T0 + 10))
        assert registry.expire_masters(timeout=600) == [expected]
        assert registry.get_master(active_master) == expected

    def test_the_default_timeout_is_600_seconds(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Without ``timeout=`` 600 s of silence is allowed and 601 s is not."""
        clock.advance(600)
        assert registry.expire_masters() == []
        clock.advance(1)
        assert [m.id for m in registry.expire_masters()] == [active_master]

    def test_only_silent_active_masters_are_returned(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Recent and inactive masters are left alone and not returned."""
        inactive = registry.find_master_id("host:/srv/inactive")
        recent = registry.find_master_id("host:/srv/recent")
        clock.advance(1000)
        registry.set_master_state(recent, True)
        assert [m.id for m in registry.expire_masters(timeout=600)] == [active_master]
        assert {m.id for m in registry.get_masters(active=False)} == {active_master, inactive}
        assert [m.id for m in registry.get_masters(active=True)] == [recent]

    def test_the_expiry_names_actor_reason_and_timeout(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """The deactivation names the registry's actor, reason expired, and the timeout."""
        clock.advance(1000)
        registry.expire_masters(timeout=120)
        event = registry.history(active_master)[-1]
        assert event.type == "master.deactivated"
        assert event.data == {
            "last_active": T0 + 10,
            "timeout": 120,
            "schedulers": [],
            "changesources": [],
        }
        assert event.metadata["actor"] == "tester"
        assert event.metadata["reason"] == "expired"

    def test_by_names_who_expired_them(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """expire_masters(by=...) records that name as the actor of the deactivation."""
        clock.advance(1000)
        with structlog.testing.capture_logs() as logs:
            registry.expire_masters(by="host:/srv/housekeeper")
        event = registry.history(active_master)[-1]
        assert event.metadata["actor"] == "host:/srv/housekeeper"
        assert event.metadata["reason"] == "expired"
        assert logs[0]["actor"] == "host:/srv/housekeeper"

    def test_expiring_again_writes_nothing(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """A second housekeeping finds nothing left to expire."""
        clock.advance(1000)
        registry.expire_masters()
        before = snapshot(registry)
        assert registry.expire_masters() == []
        assert snapshot(registry) == before


class TestAdoption:
    def test_upgrade_adopts_rows_without_history(self, db_url: str, clock: FakeClock) -> None:
        """Rows written straight into masters before upgrade get an adoption event, as found."""
        registry = Registry(db_url, clock=clock, actor="tester")
        registry.upgrade()
        insert_raw_master(registry, 5, "old:/srv/a", active=True, last_active=T0 - 100)
        registry.upgrade()
        (event,) = registry.history(5)
        assert (event.type, event.version) == ("master.adopted", 1)
        assert event.data == {"name": "old:/srv/a", "active": True, "last_active": T0 - 100}
        assert event.metadata["reason"] == "adopted"
        assert registry.get_master(5) == MasterModel(5, "old:/srv/a", True, at(T0 - 100))
        assert registry.verify().ok
        registry.close()

    def test_adopt_returns_the_adopted_masters_once(
        self, registry: Registry, active_master: int
    ) -> None:
        """adopt() returns the rows it recorded; a second call finds none and writes nothing."""
        insert_raw_master(registry, 50, "old:/srv/b", active=False, last_active=T0 - 5)
        assert registry.adopt() == [MasterModel(50, "old:/srv/b", False, at(T0 - 5))]
        before = snapshot(registry)
        assert registry.adopt() == []
        assert snapshot(registry) == before

    def test_a_command_adopts_lazily_before_its_own_event(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """set_master_state on a row with no history records the adoption first."""
        insert_raw_master(registry, 7, "old:/srv/c", active=True, last_active=T0 - 100)
        clock.advance(5)
        assert registry.set_master_state(7, True) is False
        trail = registry.history(7)
        assert [(e.type, e.metadata["reason"]) for e in trail] == [
            ("master.adopted", "adopted"),
            ("master.checked_in", "heartbeat"),
        ]
        assert [e.version for e in trail] == [1, 2]
        assert trail[0].data["last_active"] == T0 - 100

    def test_expiry_adopts_before_deactivating(self, registry: Registry, clock: FakeClock) -> None:
        """An expired row without history: adoption, then the deactivation."""
        insert_raw_master(registry, 8, "old:/srv/d", active=True, last_active=T0 - 10_000)
        assert [m.id for m in registry.expire_masters()] == [8]
        assert [e.type for e in registry.history(8)] == ["master.adopted", "master.deactivated"]

    def test_housekeeping_adopts_before_forcing(self, registry: Registry) -> None:
        """set_all_masters_active_long_time_ago adopts a row without history first."""
        insert_raw_master(registry, 9, "old:/srv/e", active=False, last_active=T0)
        registry.set_all_masters_active_long_time_ago()
        assert [e.type for e in registry.history(9)] == [
            "master.adopted",
            "master.housekeeping_forced",
        ]

    def test_looking_up_a_row_without_history_writes_nothing(self, registry: Registry) -> None:
        """find_master_id of an unadopted name returns its id and writes nothing."""
        insert_raw_master(registry, 11, "old:/srv/f", active=False, last_active=T0)
        before = snapshot(registry)
        assert registry.find_master_id("old:/srv/f") == 11
        assert snapshot(registry) == before

    def test_new_ids_stay_clear_of_adopted_rows(self, registry: Registry) -> None:
        """A new registration gets an id above a row written without history."""
        insert_raw_master(registry, 100, "old:/srv/g", active=False, last_active=T0)
        assert registry.find_master_id("host:/srv/new") > 100


class TestGetMasters:
    @pytest.fixture
    def registry(self, shared: Shared) -> Registry:
        """The class's shared registry (these tests only read)."""
        return shared.registry

    def test_the_plain_call_returns_every_master_by_id(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """get_masters() returns all masters in id order."""
        assert [m.id for m in registry.get_masters()] == fleet

    def test_get_master_of_an_unknown_id_is_none(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """An id nobody registered reads as None."""
        assert registry.get_master(max(fleet) + 1) is None

    @pytest.mark.parametrize(("active", "indexes"), [(True, [0, 2, 4]), (False, [1, 3])])
    def test_active_filters(
        self, registry: Registry, fleet: list[int], active: bool, indexes: list[int]
    ) -> None:
        """active=True/False returns only the active/inactive masters."""
        masters = registry.get_masters(active=active)
        assert [m.id for m in masters] == [fleet[i] for i in indexes]
        assert {m.active for m in masters} == {active}

    @pytest.mark.parametrize(
        ("order", "names"),
        [
            (("name",), ["m:a", "m:b", "m:c", "m:d", "m:e"]),
            (("-name",), ["m:e", "m:d", "m:c", "m:b", "m:a"]),
            (("-id",), ["m:d", "m:b", "m:e", "m:a", "m:c"]),
            (("-active", "last_active"), ["m:e", "m:d", "m:c", "m:a", "m:b"]),
            (("active", "-name"), ["m:b", "m:a", "m:e", "m:d", "m:c"]),
            ((), ["m:c", "m:a", "m:e", "m:b", "m:d"]),
        ],
    )
    def test_order_takes_column_names_and_minus_for_descending(
        self, registry: Registry, fleet: list[int], order: tuple[str, ...], names: list[str]
    ) -> None:
        """Sorting by one or more columns, ``-`` descending, ties broken by id."""
        assert [m.name for m in registry.get_masters(order=order)] == names

    def test_limit_and_offset_page_through_the_order(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """Pages of two, concatenated, are the whole sorted list."""
        everything = registry.get_masters(order=("-name",))
        pages = [registry.get_masters(order=("-name",), limit=2, offset=n) for n in (0, 2, 4, 6)]
        assert [len(page) for page in pages] == [2, 2, 1, 0]
        assert [m for page in pages for m in page] == everything

    def test_the_largest_limit_and_offset_are_accepted(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """A limit or offset of 2**63 - 1 is a valid (if unhelpful) page on every backend."""
        assert [m.id for m in registry.get_masters(limit=2**63 - 1)] == fleet
        assert registry.get_masters(offset=2**63 - 1) == []
        assert list(registry.events(after=2**63 - 1)) == []
        assert len(registry.masters_as_of(2**63 - 1)) == len(fleet)

    def test_offset_without_limit_and_limit_zero(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """An offset alone skips; limit=0 returns nothing."""
        assert [m.id for m in registry.get_masters(offset=3)] == fleet[3:]
        assert registry.get_masters(limit=0) == []

    def test_filter_order_and_page_combine(self, registry: Registry, fleet: list[int]) -> None:
        """active, order, limit and offset apply together."""
        page = registry.get_masters(active=True, order=("name",), limit=1, offset=1)
        assert [m.name for m in page] == ["m:d"]


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


def bad_calls() -> list[Any]:
    """(call, error) pairs that must be refused without writing anything."""
    naive = dt.datetime(2024, 1, 1)
    long_name = "x" * 1025
    cases: list[tuple[str, Callable[[Registry, int], object], type[Exception]]] = [
        ("name-none", lambda r, m: r.find_master_id(None), InvalidArgumentType),  # type: ignore[arg-type]
        ("name-int", lambda r, m: r.find_master_id(5), InvalidArgumentType),  # type: ignore[arg-type]
        ("name-bytes", lambda r, m: r.find_master_id(b"a"), InvalidArgumentType),  # type: ignore[arg-type]
        ("name-empty", lambda r, m: r.find_master_id(""), InvalidArgument),
        ("name-too-long", lambda r, m: r.find_master_id(long_name), InvalidArgument),
        ("name-nul", lambda r, m: r.find_master_id("a\x00b"), InvalidArgument),
        ("name-newline", lambda r, m: r.find_master_id("a\nb"), InvalidArgument),
        ("name-escape", lambda r, m: r.find_master_id("a\x1b[31m"), InvalidArgument),
        ("id-bool-true", lambda r, m: r.set_master_state(True, True), InvalidArgumentType),
        ("id-bool-false", lambda r, m: r.set_master_state(False, False), InvalidArgumentType),
        ("id-str", lambda r, m: r.set_master_state(str(m), False), InvalidArgumentType),  # type: ignore[arg-type]
        ("id-float", lambda r, m: r.set_master_state(float(m), False), InvalidArgumentType),  # type: ignore[arg-type]
        ("id-none", lambda r, m: r.set_master_state(None, False), InvalidArgumentType),  # type: ignore[arg-type]
        ("id-zero", lambda r, m: r.set_master_state(0, True), InvalidArgument),
        ("id-negative", lambda r, m: r.set_master_state(-m, False), InvalidArgument),
        ("id-huge", lambda r, m: r.set_master_state(2**31, True), InvalidArgument),
        ("id-enormous", lambda r, m: r.set_master_state(10**100, True), InvalidArgument),
        ("active-int", lambda r, m: r.set_master_state(m, 0), InvalidArgumentType),  # type: ignore[arg-type]
        ("active-str", lambda r, m: r.set_master_state(m, "False"), InvalidArgumentType),  # type: ignore[arg-type]
        ("active-none", lambda r, m: r.set_master_state(m, None), InvalidArgumentType),  # type: ignore[arg-type]
        ("get-master-bool", lambda r, m: r.get_master(True), InvalidArgumentType),
        ("get-master-zero", lambda r, m: r.get_master(0), InvalidArgument),
        ("filter-int", lambda r, m: r.get_masters(active=1), InvalidArgumentType),  # type: ignore[arg-type]
        ("order-unknown", lambda r, m: r.get_masters(order=("bogus",)), InvalidArgument),
        (
            "order-sql",
            lambda r, m: r.get_masters(order=("name; DROP TABLE masters",)),
            InvalidArgument,
        ),
        ("order-str", lambda r, m: r.get_masters(order="name"), InvalidArgumentType),
        ("order-item", lambda r, m: r.get_masters(order=(1,)), InvalidArgumentType),  # type: ignore[arg-type]
        ("order-name-hash", lambda r, m: r.get_masters(order=("name_hash",)), InvalidArgument),
        ("limit-negative", lambda r, m: r.get_masters(limit=-1), InvalidArgument),
        ("limit-bool", lambda r, m: r.get_masters(limit=True), InvalidArgumentType),
        ("limit-huge", lambda r, m: r.get_masters(limit=2**63), InvalidArgument),
        ("offset-negative", lambda r, m: r.get_masters(offset=-1), InvalidArgument),
        ("offset-huge", lambda r, m: r.get_masters(offset=10**30), InvalidArgument),
        ("offset-str", lambda r, m: r.get_masters(offset="1"), InvalidArgumentType),  # type: ignore[arg-type]
        ("timeout-negative", lambda r, m: r.expire_masters(timeout=-1), InvalidArgument),
        ("timeout-nan", lambda r, m: r.expire_masters(timeout=math.nan), InvalidArgument),  # type: ignore[arg-type]
        ("timeout-str", lambda r, m: r.expire_masters(timeout="600"), InvalidArgumentType),  # type: ignore[arg-type]
        ("timeout-bool", lambda r, m: r.expire_masters(timeout=True), InvalidArgumentType),
        ("by-int", lambda r, m: r.expire_masters(by=5), InvalidArgumentType),  # type: ignore[arg-type]
        ("by-empty", lambda r, m: r.expire_masters(by=""), InvalidArgument),
        ("by-control", lambda r, m: r.expire_masters(by="a\x00"), InvalidArgument),
        ("history-id", lambda r, m: r.history(0), InvalidArgument),
        ("history-since-naive", lambda r, m: r.history(m, since=naive), InvalidArgument),
        ("history-until-naive", lambda r, m: r.history(m, until=naive), InvalidArgument),
        ("history-since-str", lambda r, m: r.history(m, since="2024"), InvalidArgumentType),  # type: ignore[arg-type]
        ("events-after-negative", lambda r, m: r.events(after=-1), InvalidArgument),
        ("events-limit-negative", lambda r, m: r.events(limit=-1), InvalidArgument),
        ("events-after-huge", lambda r, m: r.events(after=2**63), InvalidArgument),
        ("events-after-str", lambda r, m: r.events(after="0"), InvalidArgumentType),  # type: ignore[arg-type]
        ("as-of-naive", lambda r, m: r.masters_as_of(naive), InvalidArgument),
        ("as-of-negative", lambda r, m: r.masters_as_of(-1), InvalidArgument),
        ("as-of-huge", lambda r, m: r.masters_as_of(10**30), InvalidArgument),
        ("as-of-bool", lambda r, m: r.masters_as_of(True), InvalidArgumentType),
        ("as-of-str", lambda r, m: r.masters_as_of("yesterday"), InvalidArgumentType),  # type: ignore[arg-type]
        ("as-of-float", lambda r, m: r.masters_as_of(1.5), InvalidArgumentType),  # type: ignore[arg-type]
        ("as-of-date", lambda r, m: r.masters_as_of(dt.date(2024, 1, 1)), InvalidArgumentType),  # type: ignore[arg-type]
    ]
    return [pytest.param(call, error, id=name) for name, call, error in cases]


class TestBadInput:
    @pytest.mark.parametrize(("call", "error"), bad_calls())
    def test_bad_input_raises_a_typed_error_and_writes_nothing(
        self,
        shared: Shared,
        target: int,
        call: Callable[[Registry, int], object],
        error: type[Exception],
    ) -> None:
        """Each bad argument raises a RegistryError that is also the builtin; log, head and
        view are byte-for-byte unchanged."""
        registry = shared.registry
        before = snapshot(registry)
        shared.clock.advance(10_000)  # the target would expire, were anything to run
        with pytest.raises(error) as raised:
            call(registry, target)
        assert isinstance(raised.value, RegistryError)
        builtin = TypeError if error is InvalidArgumentType else ValueError
        assert isinstance(raised.value, builtin)
        assert snapshot(registry) == before


@pytest.fixture(scope="class")
def trail(shared: Shared) -> int:
    """One master with four events 10 s apart, another master interleaved."""
    registry, clock = shared.registry, shared.clock
    master_id = registry.find_master_id("host:/srv/a")
    for active in (True, True, False):
        clock.advance(10)
        registry.set_master_state(master_id, active)
        registry.find_master_id(f"host:/srv/other-{clock.now}")
    return master_id


class TestHistory:
    @pytest.fixture
    def registry(self, shared: Shared) -> Registry:
        """The class's shared registry (these tests only read)."""
        return shared.registry

    def test_history_is_the_masters_trail_in_order(self, registry: Registry, trail: int) -> None:
        """All of a master's events, versions 1..n, and none of another master's."""
        events = registry.history(trail)
        assert [e.type for e in events] == [
            "master.registered",
            "master.activated",
            "master.checked_in",
            "master.deactivated",
        ]
        assert [e.version for e in events] == [1, 2, 3, 4]
        assert {e.master_id for e in events} == {trail}
        assert [e.recorded_at for e in events] == [at(T0 + s) for s in (0, 10, 20, 30)]

    def test_since_and_until_are_inclusive(self, registry: Registry, trail: int) -> None:
        """since and until select recorded_at within both bounds, ends included."""
        assert [e.version for e in registry.history(trail, since=at(T0 + 10))] == [2, 3, 4]
        assert [e.version for e in registry.history(trail, until=at(T0 + 20))] == [1, 2, 3]
        window = registry.history(trail, since=at(T0 + 10), until=at(T0 + 10))
        assert [e.version for e in window] == [2]
        assert registry.history(trail, since=at(T0 + 31)) == []

    def test_bounds_in_another_time_zone_mean_the_same_instant(
        self, registry: Registry, trail: int
    ) -> None:
        """An aware datetime at UTC+02:00 bounds the same instants as its UTC equivalent."""
        plus_two = dt.timezone(dt.timedelta(hours=2))
        since = at(T0 + 20).astimezone(plus_two)
        assert [e.version for e in registry.history(trail, since=since)] == [3, 4]

    def test_an_unknown_master_has_no_history(self, registry: Registry, trail: int) -> None:
        """history of an id nobody registered is empty."""
        assert registry.history(trail + 1000) == []


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


def commands_by_name() -> list[Any]:
    """Every command as a callable of (registry, active master id), with its log line and
    that line's level (None: a command that changed nothing on several masters, no line)."""
    cases: list[tuple[str, Callable[[Registry, int], object], str | None, str | None]] = [
        ("register", lambda r, m: r.find_master_id("host:/srv/new"), "master_registered", "info"),
        ("find", lambda r, m: r.find_master_id("host:/srv/active"), "master_found", "debug"),
        ("check-in", lambda r, m: r.set_master_state(m, True), "master_checked_in", "debug"),
        ("stop", lambda r, m: r.set_master_state(m, False), "master_deactivated", "info"),
        ("unknown", lambda r, m: r.set_master_state(m + 1, False), "master_unknown", "debug"),
        ("unknown-up", lambda r, m: r.set_master_state(m + 1, True), "master_unknown", "debug"),
        ("expire", lambda r, m: r.expire_masters(timeout=0), "masters_expired", "info"),
        ("expire-none", lambda r, m: r.expire_masters(), None, None),
        (
            "housekeeping",
            lambda r, m: r.set_all_masters_active_long_time_ago(),
            "housekeeping_forced",
            "info",
        ),
        ("adopt", lambda r, m: r.adopt(), None, None),
    ]
    return [pytest.param(call, line, level, id=name) for name, call, line, level in cases]


class TestClockAndLogging:
    @pytest.mark.parametrize(("call", "line", "level"), commands_by_name())
    def test_each_command_reads_the_clock_once_and_logs_one_line(
        self,
        registry: Registry,
        active_master: int,
        clock: FakeClock,
        call: Callable[[Registry, int], object],
        line: str | None,
        level: str | None,
    ) -> None:
        """Every command reads the injected clock exactly once and writes exactly one
        structlog line, named for what it did: at DEBUG for what a master does every minute
        (or what changes nothing), at INFO for a registration or a change of state, which
        operators look for; none for a housekeeping or adoption that found nothing."""
        clock.advance(1)
        clock.readings = 0
        with structlog.testing.capture_logs() as logs:
            call(registry, active_master)
        assert clock.readings == 1
        expected = [] if line is None else [(line, level)]
        assert [(entry["event"], entry["log_level"]) for entry in logs] == expected

    def test_a_single_master_line_has_its_key_values(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """A check-in's line carries master_id, name, position, changed and actor; it is
        routine, so DEBUG."""
        with structlog.testing.capture_logs() as logs:
            registry.set_master_state(active_master, True)
        assert logs == [
            {
                "event": "master_checked_in",
                "log_level": "debug",
                "master_id": active_master,
                "name": "host:/srv/active",
                "position": 3,
                "changed": False,
                "actor": "tester",
            }
        ]

    def test_inactive_to_inactive_is_debug(self, registry: Registry) -> None:
        """A stop of a master that is not active changes nothing: DEBUG."""
        master = registry.find_master_id("host:/srv/idle")
        with structlog.testing.capture_logs() as logs:
            registry.set_master_state(master, False)
        assert [(entry["event"], entry["log_level"]) for entry in logs] == [
            ("master_unchanged", "debug")
        ]

    def test_one_line_for_several_expired_masters(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Expiring two masters logs one line listing both."""
        other = registry.find_master_id("host:/srv/other")
        registry.set_master_state(other, True)
        clock.advance(1000)
        with structlog.testing.capture_logs() as logs:
            registry.expire_masters()
        (entry,) = logs
        assert entry["master_ids"] == [active_master, other]
        assert entry["timeout"] == 600

    def test_the_default_clock_is_the_system_clock(self, db_url: str) -> None:
        """Without ``clock=``, a frozen time.time() is what the events record."""
        with freeze_time("2024-05-01 12:00:00.5"):
            registry = Registry(db_url, actor="tester")
            registry.upgrade()
            master_id = registry.find_master_id("host:/srv/frozen")
        master = registry.get_master(master_id)
        assert master is not None
        assert master.last_active == dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
        (event,) = log_of(registry)
        assert event.recorded_at == dt.datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
        registry.close()


class TestRetries:
    def test_a_conflict_is_retried_inside_the_command(
        self,
        registry: Registry,
        active_master: int,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A stale-version conflict on the first attempt is retried; the caller never sees it,
        the clock is still read once and exactly one event is written."""
        calls = []

        def conflicting_once(real: Callable[..., Any]) -> Callable[..., Any]:
            def append(conn: sa.Connection, *args: Any, **kwargs: Any) -> Any:
                calls.append(args)
                if len(calls) == 1:
                    raise ConcurrencyError(active_master, 2, 3)
                return real(conn, *args, **kwargs)

            return append

        # After its own write a master appends without reading where the database chains
        # events itself (append_chained), else after its read (append_after).
        for name in ("append_after", "append_chained"):
            monkeypatch.setattr(
                commands.masters, name, conflicting_once(getattr(commands.masters, name))
            )
        clock.advance(5)
        clock.readings = 0
        assert registry.set_master_state(active_master, True) is False
        assert len(calls) == 2
        assert clock.readings == 1
        assert [e.type for e in registry.history(active_master)][-1] == "master.checked_in"
        assert head(registry) == 3

    def test_a_duplicate_is_another_calls_event_and_decided_again(
        self, registry: Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A command never sends a batch twice, so a batch the store finds stored is another
        call's, the same to the byte (one process, one instant): the command decides again
        on fresh state rather than report that call's change as its own."""
        calls = []
        real = commands.masters.append

        def duplicate_once(conn: sa.Connection, *args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            if len(calls) == 1:
                return eventstore.AppendResult((1,), duplicate=True)
            return real(conn, *args, **kwargs)

        monkeypatch.setattr(commands.masters, "append", duplicate_once)
        master_id = registry.find_master_id("m")
        assert len(calls) == 2
        assert [(e.master_id, e.type) for e in registry.events()] == [
            (master_id, "master.registered")
        ]

    def test_retries_are_bounded(
        self, registry: Registry, active_master: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A conflict on every attempt is retried until RETRY_FOR seconds have passed (on
        the retries' own clock), then the call raises StoreUnavailable, having written
        nothing."""
        transactions = []
        real_begin = commands.retry.begin_write
        ticks = iter(range(1000))

        def counting_begin(conn: sa.Connection) -> None:
            transactions.append(conn)
            real_begin(conn)

        def always_conflicting(conn: sa.Connection, *args: Any, **kwargs: Any) -> Any:
            raise ConcurrencyError(active_master, 2, 3)

        monkeypatch.setattr(commands.masters, "append_after", always_conflicting)
        monkeypatch.setattr(commands.masters, "append_chained", always_conflicting)
        monkeypatch.setattr(commands.retry, "begin_write", counting_begin)
        monkeypatch.setattr(commands.retry, "monotonic", lambda: float(next(ticks)))
        monkeypatch.setattr(commands.retry, "pause", lambda _seconds: None)
        monkeypatch.setattr(commands.retry, "RETRY_FOR", 3.0)
        before = snapshot(registry)
        with pytest.raises(StoreUnavailable, match="gave up after 3 attempts"):
            registry.set_master_state(active_master, False)
        assert len(transactions) == 3
        assert snapshot(registry) == before
