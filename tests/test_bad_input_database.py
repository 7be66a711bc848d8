"""A database that is not usable as given: a bad URL, a missing database or server,
no schema, a newer schema revision, events of a newer version. Typed errors, nothing
created or changed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import eventstore
from eventstore import (
    InvalidArgument,
    InvalidArgumentType,
    NewEvent,
    RegistryError,
    SchemaMissing,
    SchemaTooNew,
    StoreUnavailable,
    UnknownEventType,
    UnsupportedSchemaVersion,
)
from mastertrail import Registry
from tests.bad_input_support import T0, UNREACHABLE, newer_schema_of
from tests.conftest import FakeClock, Server, server_of
from tests.reliability_support import dump


class TestBadDatabaseUrl:
    @pytest.mark.parametrize(
        ("url", "error"),
        [
            pytest.param(None, InvalidArgumentType, id="none"),
            pytest.param(42, InvalidArgumentType, id="int"),
            pytest.param("", InvalidArgument, id="empty"),
            pytest.param("masters.sqlite", InvalidArgument, id="a-path"),
            pytest.param("oracle://scott@db/orcl", InvalidArgument, id="unsupported"),
            pytest.param("postgresql+nosuchdriver://db/x", InvalidArgument, id="no-driver"),
        ],
    )
    def test_an_unusable_url_is_bad_input(self, url: object, error: type[RegistryError]) -> None:
        """A URL that is not one, or names a database mastertrail does not run on, is
        refused when the registry is made."""
        with pytest.raises(error):
            Registry(url)  # type: ignore[arg-type]

    def test_a_database_that_does_not_exist_is_unavailable(
        self, backend: str, servers: dict[str, Server | str], tmp_path: Path
    ) -> None:
        """A URL naming a database that does not exist (a SQLite file in a missing
        directory) raises StoreUnavailable on first use, and creates nothing."""
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/missing/masters.sqlite"
        else:
            url = (
                server_of(backend, servers)
                .admin_url.set(database=f"missing_{uuid.uuid4().hex[:8]}")
                .render_as_string(hide_password=False)
            )
        registry = Registry(url)
        with pytest.raises(StoreUnavailable):
            registry.get_masters()
        with pytest.raises(StoreUnavailable):
            registry.find_master_id("alpha:/srv")
        registry.close()
        assert not (tmp_path / "missing").exists()

    @pytest.mark.parametrize("backend", ["postgresql", "mysql"])
    def test_a_server_that_does_not_answer_is_unavailable(self, backend: str) -> None:
        """A URL naming a port where no server listens raises StoreUnavailable."""
        registry = Registry(UNREACHABLE[backend])
        with pytest.raises(StoreUnavailable):
            registry.get_masters()
        registry.close()


OPERATIONS: list[Any] = [
    pytest.param(lambda r: r.find_master_id("alpha:/srv"), id="find_master_id"),
    pytest.param(lambda r: r.set_master_state(1, True), id="set_master_state"),
    pytest.param(lambda r: r.get_master(1), id="get_master"),
    pytest.param(lambda r: r.get_masters(), id="get_masters"),
    pytest.param(lambda r: r.set_all_masters_active_long_time_ago(), id="housekeeping"),
    pytest.param(lambda r: r.expire_masters(), id="expire_masters"),
    pytest.param(lambda r: r.adopt(), id="adopt"),
    pytest.param(lambda r: r.history(1), id="history"),
    pytest.param(lambda r: list(r.events()), id="events"),
    pytest.param(lambda r: r.masters_as_of(1), id="masters_as_of"),
    pytest.param(lambda r: r.rebuild(), id="rebuild"),
    pytest.param(lambda r: r.verify(), id="verify"),
]


class TestDatabaseWithoutTheSchema:
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_every_operation_says_schema_missing(
        self, db_url: str, clock: FakeClock, operation: Callable[[Registry], object]
    ) -> None:
        """On an empty database every operation raises SchemaMissing and creates nothing."""
        registry = Registry(db_url, clock=clock, actor="tester")
        with pytest.raises(SchemaMissing, match="mastertrail upgrade"):
            operation(registry)
        assert sa.inspect(registry.engine).get_table_names() == []
        registry.close()


@pytest.fixture
def newer_schema(registry: Registry) -> Iterator[Registry]:
    """A database with a newer schema revision than this mastertrail knows, holding a
    master; a fresh registry on it."""
    with newer_schema_of(registry) as fresh:
        yield fresh


class TestNewerSchemaRevision:
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_every_operation_says_schema_too_new(
        self, newer_schema: Registry, operation: Callable[[Registry], object]
    ) -> None:
        """A log written by a newer schema revision is refused by every operation with
        SchemaTooNew, and left as it was."""
        with pytest.raises(SchemaTooNew, match="newer mastertrail"):
            operation(newer_schema)

    def test_upgrade_refuses_to_downgrade(self, newer_schema: Registry) -> None:
        """upgrade on a newer revision raises a typed error instead of touching it."""
        with pytest.raises(RegistryError):
            newer_schema.upgrade()


def append_raw(registry: Registry, master_id: int, type_name: str, schema_version: int) -> None:
    """Append an event this mastertrail cannot read, as a newer one would write it."""
    with registry.engine.begin() as conn:
        version = eventstore.stream_version(conn, master_id)
        eventstore.append(
            conn,
            master_id,
            version,
            [
                NewEvent(
                    event_id=uuid.uuid4(),
                    type=type_name,
                    schema_version=schema_version,
                    data={"last_active": int(T0), "galaxy": "far away"},
                    metadata={"actor": "future", "reason": "heartbeat"},
                    recorded_at=int(T0 * 1_000_000) + 1,
                )
            ],
        )


UNREADABLE: list[Any] = [
    pytest.param("master.teleported", 1, UnknownEventType, id="unknown-type"),
    pytest.param("master.checked_in", 3, UnsupportedSchemaVersion, id="newer-schema-version"),
]


class TestEventsOfANewerVersion:
    @pytest.mark.parametrize(("type_name", "schema_version", "error"), UNREADABLE)
    def test_folding_them_is_a_typed_error(
        self,
        registry: Registry,
        type_name: str,
        schema_version: int,
        error: type[RegistryError],
    ) -> None:
        """An event of a type or schema version this mastertrail cannot read makes every
        operation that folds it (rebuild, verify, masters_as_of) raise its typed error,
        leaves the tables as they were, and the raw reads still work."""
        master_id = registry.find_master_id("alpha:/srv")
        registry.set_master_state(master_id, True)
        append_raw(registry, master_id, type_name, schema_version)
        before = dump(registry.engine)
        for operation in (registry.rebuild, registry.verify, lambda: registry.masters_as_of(3)):
            with pytest.raises(error):
                operation()
        assert registry.masters_as_of(2)[0].active
        assert [e.type for e in registry.history(master_id)][-1] == type_name
        assert len(list(registry.events())) == 3
        assert [m.id for m in registry.get_masters()] == [master_id]
        assert dump(registry.engine) == before
