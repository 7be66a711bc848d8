"""Refused commands write nothing: the decision is taken before the first write, the command
exits 2 with one line, and every file and database is left as it was."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from eventstore.errors import SchemaMissing
from mastertrail import Registry
from projections import name_hash
from projections.view import masters as masters_table
from projections.view import view_metadata
from tests.cli_support import Invoke, assert_failed_cleanly, files_under, make_invoke
from tests.conftest import FakeClock


@pytest.fixture
def invoke(clock: FakeClock) -> Invoke:
    """``mastertrail ARGS`` in-process on the injected clock."""
    return make_invoke(clock)


@pytest.fixture
def source(tmp_path: Path, clock: FakeClock) -> str:
    """A SQLite registry with one master, registered and started (positions 1 and 2)."""
    url = f"sqlite:///{tmp_path}/source/source.sqlite"
    (tmp_path / "source").mkdir()
    registry = Registry(url, clock=clock)
    registry.upgrade()
    registry.set_master_state(registry.find_master_id("alpha:/m"), True)
    registry.close()
    return url


@pytest.fixture
def raw(db_url: str) -> Iterator[sa.Engine]:
    """A plain SQLAlchemy engine on the empty test database (none of mastertrail's set-up)."""
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


def snapshot(engine: sa.Engine) -> dict[str, int]:
    """Every table of the database with its number of rows."""
    with engine.connect() as conn:
        return {
            table: conn.execute(
                sa.select(sa.func.count()).select_from(sa.table(table))
            ).scalar_one()
            for table in sorted(sa.inspect(conn).get_table_names())
        }


def unrelated_sqlite_file(path: Path) -> None:
    """A SQLite file of another program: one table, one row, the default rollback journal."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.execute("INSERT INTO notes (text) VALUES ('keep me')")
    connection.commit()
    connection.close()


def buildbot_database(engine: sa.Engine) -> None:
    """Buildbot's masters table with two rows, and another of its tables."""
    with engine.begin() as conn:
        view_metadata.create_all(conn)
        for master_id, name in ((3, "old-a:/m"), (7, "old-b:/m")):
            conn.execute(
                masters_table.insert().values(
                    id=master_id, name=name, name_hash=name_hash(name), active=1, last_active=0
                )
            )
        conn.exec_driver_sql("CREATE TABLE builds (id INTEGER PRIMARY KEY, number INTEGER)")
        conn.exec_driver_sql("INSERT INTO builds (id, number) VALUES (1, 1)")


class TestReadingAMissingSqliteFile:
    @pytest.mark.parametrize(
        "read",
        [
            lambda r: r.get_masters(),
            lambda r: r.get_master(1),
            lambda r: r.history(1),
            lambda r: list(r.events()),
            lambda r: r.masters_as_of(1),
            lambda r: r.verify(),
            lambda r: r.find_master_id("alpha:/m"),
            lambda r: r.adopt(),
        ],
    )
    def test_raises_schema_missing_and_creates_no_file(
        self, tmp_path: Path, read: Callable[[Registry], object]
    ) -> None:
        """Any call but upgrade() on a SQLite path that does not exist leaves no file."""
        registry = Registry(f"sqlite:///{tmp_path}/typo.sqlite")
        with pytest.raises(SchemaMissing, match=r"typo\.sqlite"):
            read(registry)
        registry.close()
        assert list(tmp_path.iterdir()) == []

    def test_upgrade_creates_it(self, tmp_path: Path) -> None:
        """upgrade() is what creates a new SQLite file, in WAL mode."""
        registry = Registry(f"sqlite:///{tmp_path}/new.sqlite")
        registry.upgrade()
        assert registry.get_masters() == []
        registry.close()
        connection = sqlite3.connect(tmp_path / "new.sqlite")
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        connection.close()


class TestAdoptRefusal:
    def test_an_unrelated_sqlite_file_is_left_byte_for_byte(
        self, tmp_path: Path, invoke: Invoke
    ) -> None:
        """adopt on a SQLite file without Buildbot's masters table exits 2, changing nothing."""
        unrelated_sqlite_file(tmp_path / "other.sqlite")
        before = files_under(tmp_path)
        line = assert_failed_cleanly(
            invoke("--db", f"sqlite:///{tmp_path}/other.sqlite", "adopt"), 2
        )
        assert "no Buildbot masters table" in line
        assert files_under(tmp_path) == before

    def test_a_database_without_masters_is_left_as_it_was(
        self, db_url: str, raw: sa.Engine, invoke: Invoke
    ) -> None:
        """On every backend, adopt on a database of other tables creates no table."""
        with raw.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO notes (id) VALUES (1)")
        before = snapshot(raw)
        assert_failed_cleanly(invoke("--db", db_url, "adopt"), 2)
        assert snapshot(raw) == before


class TestReplayRefusal:
    def test_into_a_buildbot_database_writes_nothing(
        self, source: str, db_url: str, raw: sa.Engine, invoke: Invoke
    ) -> None:
        """replay --into a Buildbot database exits 2 before creating a table or an event."""
        buildbot_database(raw)
        before = snapshot(raw)
        line = assert_failed_cleanly(
            invoke("--db", source, "replay", "--until", "now", "--into", db_url), 2
        )
        assert "empty database" in line
        assert snapshot(raw) == before

    def test_into_a_view_with_masters_writes_nothing(
        self, source: str, db_url: str, raw: sa.Engine, invoke: Invoke
    ) -> None:
        """A database whose only table is a masters table with rows is no empty database."""
        with raw.begin() as conn:
            view_metadata.create_all(conn)
            conn.execute(
                masters_table.insert().values(
                    id=1, name="x", name_hash=name_hash("x"), active=0, last_active=0
                )
            )
        before = snapshot(raw)
        assert_failed_cleanly(
            invoke("--db", source, "replay", "--until", "now", "--into", db_url), 2
        )
        assert snapshot(raw) == before

    def test_an_unrelated_sqlite_file_is_left_byte_for_byte(
        self, source: str, tmp_path: Path, invoke: Invoke
    ) -> None:
        """--into a SQLite file of another program is refused without touching the file."""
        unrelated_sqlite_file(tmp_path / "other.sqlite")
        before = files_under(tmp_path)
        into = f"sqlite:///{tmp_path}/other.sqlite"
        assert_failed_cleanly(invoke("--db", source, "replay", "--until", "now", "--into", into), 2)
        assert files_under(tmp_path) == before

    def test_from_a_source_without_the_schema_creates_no_target(
        self, tmp_path: Path, db_url: str, raw: sa.Engine, invoke: Invoke
    ) -> None:
        """A source without a log is refused before the target is created or touched."""
        unrelated_sqlite_file(tmp_path / "plain.sqlite")
        plain = f"sqlite:///{tmp_path}/plain.sqlite"
        before = snapshot(raw)
        line = assert_failed_cleanly(
            invoke("--db", plain, "replay", "--until", "now", "--into", db_url), 2
        )
        assert "upgrade" in line
        assert snapshot(raw) == before
        fresh = tmp_path / "fresh.sqlite"
        assert_failed_cleanly(
            invoke("--db", plain, "replay", "--until", "now", "--into", f"sqlite:///{fresh}"), 2
        )
        assert not fresh.exists()

    def test_an_empty_schema_is_still_accepted(
        self, source: str, db_url: str, invoke: Invoke
    ) -> None:
        """A target with mastertrail's schema and nothing in it is an empty database."""
        target = Registry(db_url)
        target.upgrade()
        target.close()
        result = invoke("--db", source, "replay", "--until", "now", "--into", db_url)
        assert result.exit_code == 0, result.output


class TestTimelineRefusal:
    def test_a_missing_directory_is_not_created(
        self, source: str, tmp_path: Path, invoke: Invoke
    ) -> None:
        """timeline --out into a directory that does not exist exits 2 and creates none."""
        out = tmp_path / "no" / "such" / "dir" / "t.svg"
        line = assert_failed_cleanly(invoke("--db", source, "timeline", "--out", str(out)), 2)
        assert "no directory" in line
        assert not (tmp_path / "no").exists()
