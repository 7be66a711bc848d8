"""What mastertrail creates in a database is read back by SQLAlchemy's and alembic's
reflection without a warning, and is InnoDB throughout on MariaDB."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

import eventstore
from eventstore.reads import read_range
from eventstore.schema import metadata
from mastertrail import Registry
from projections import queries
from projections.view import view_metadata
from tests.conftest import FakeClock, Server

MINUTE_MICROS = 60_000_000


@pytest.fixture
def upgraded(db_url: str, clock: FakeClock) -> Iterator[Engine]:
    """A database with the whole schema (log and view) and a few events."""
    registry = Registry(db_url, clock=clock, actor="tester")
    registry.upgrade()
    for name in ("a", "b"):
        registry.set_master_state(registry.find_master_id(name), True)
        clock.advance(90)
    registry.close()
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


class TestReflection:
    def test_reflecting_the_whole_database_warns_nothing(self, upgraded: Engine) -> None:
        """sa.MetaData().reflect of every table, index and constraint raises no warning."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            reflected = sa.MetaData()
            reflected.reflect(upgraded)
        assert {"mastertrail_events", "mastertrail_head", "masters"} <= set(reflected.tables)
        index_names = {i.name for i in reflected.tables["mastertrail_events"].indexes}
        assert "mastertrail_events_recorded_at" in index_names

    def test_alembic_compare_warns_nothing(self, upgraded: Engine) -> None:
        """alembic's autogenerate comparison of the database with the schema's tables, as
        Buildbot's and any alembic user's tooling runs it, raises no warning."""
        target = sa.MetaData()
        for table in (*metadata.tables.values(), *view_metadata.tables.values()):
            table.to_metadata(target)
        with warnings.catch_warnings(), upgraded.connect() as conn:
            warnings.simplefilter("error")
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            compare_metadata(context, target)


class TestSQLiteTimeIndex:
    """SQLite's time index is on a VIRTUAL column: its planner still seeks it for reads by time."""

    @pytest.fixture
    def sqlite(self, upgraded: Engine) -> Engine:
        if upgraded.dialect.name != "sqlite":
            pytest.skip("only SQLite's time index holds minutes")
        return upgraded

    def plans(self, engine: Engine, run: object) -> str:
        found: list[str] = []

        def explain(conn: sa.Connection, cursor: object, statement: str, *rest: object) -> None:
            if "recorded_minute" in statement and not statement.startswith("EXPLAIN"):
                raw = conn.connection.dbapi_connection
                assert raw is not None
                params = rest[0]
                plan = raw.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
                found.append(" ".join(str(row) for row in plan))

        sa.event.listen(engine, "before_cursor_execute", explain)
        try:
            with engine.connect() as conn:
                run(conn)  # type: ignore[operator]
        finally:
            sa.event.remove(engine, "before_cursor_execute", explain)
        assert found
        return " | ".join(found)

    def test_position_at_seeks_the_index(self, sqlite: Engine, clock: FakeClock) -> None:
        """position_at, in its own minute and in an earlier one, seeks the time index."""
        micros = int(clock.now * 1_000_000)
        plan = self.plans(sqlite, lambda conn: queries.position_at(conn, micros + MINUTE_MICROS))
        assert "SCAN mastertrail_events" not in plan, plan
        assert "INDEX mastertrail_events_recorded_at (recorded_minute" in plan, plan

    def test_read_range_seeks_the_index(self, sqlite: Engine, clock: FakeClock) -> None:
        """read_range by time seeks the time index."""
        micros = int(clock.now * 1_000_000)
        plan = self.plans(sqlite, lambda conn: read_range(conn, since=micros, until=micros))
        assert "INDEX mastertrail_events_recorded_at (recorded_minute" in plan, plan


class TestInnoDB:
    def test_every_table_is_innodb_when_the_default_engine_is_myisam(
        self, backend: str, servers: dict[str, Server | str], db_url: str
    ) -> None:
        """With MyISAM as the server's default engine for the upgrading sessions, every
        table mastertrail creates (alembic's version table too) is InnoDB."""
        if backend != "mysql":
            pytest.skip("storage engines are MariaDB's")
        server = servers[backend]
        assert isinstance(server, Server)
        engine = eventstore.create_engine(db_url)

        @sa.event.listens_for(engine, "connect")
        def myisam(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("SET SESSION default_storage_engine = MyISAM")
            cursor.close()

        registry = Registry(engine)
        registry.upgrade()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT @@default_storage_engine").scalar() == "MyISAM"
            found = dict(
                conn.exec_driver_sql(
                    "SELECT table_name, engine FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()"
                ).all()
            )
        registry.close()
        assert {"mastertrail_alembic_version", "mastertrail_events", "masters"} <= set(found)
        assert {name: e for name, e in found.items() if e != "InnoDB"} == {}
