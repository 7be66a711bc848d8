"""The log cannot be changed in place: the database refuses it, and verify finds what
was changed with the guards removed, also while others append."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
import eventstore.fused
from eventstore import (
    RecordedEvent,
)
from eventstore.schema import events
from tests.eventstore_support import (
    T0,
    all_events,
    append,
    drop_immutability_triggers,
    head,
    new_event,
)


class TestImmutability:
    """The database itself refuses to change or remove a stored event."""

    @pytest.fixture
    def log(self, engine: Engine) -> list[RecordedEvent]:
        append(engine, 1, 0, [new_event(data={"n": n}) for n in range(3)])
        return all_events(engine)

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE mastertrail_events SET data = '{}' WHERE position = 2",
            "UPDATE mastertrail_events SET master_id = 9",
            "UPDATE mastertrail_events SET metadata_id = type_id",
            "DELETE FROM mastertrail_events WHERE position = 3",
            "DELETE FROM mastertrail_events",
            "UPDATE mastertrail_texts SET text = 'test.forged' WHERE text = 'test.happened'",
            "DELETE FROM mastertrail_texts",
        ],
    )
    def test_raw_update_and_delete_are_refused(
        self, engine: Engine, log: list[RecordedEvent], statement: str
    ) -> None:
        """Raw-SQL UPDATE and DELETE on mastertrail_events and on the texts its events
        refer to fail, naming the table, and the log stays intact."""
        table = next(word for word in statement.split() if word.startswith("mastertrail_"))
        refused = f"{table} is append-only"
        with pytest.raises(sa.exc.DBAPIError, match=refused), engine.begin() as conn:
            conn.execute(sa.text(statement))
        assert all_events(engine) == log
        assert head(engine) == 3
        assert eventstore.verify_chain(engine).ok

    @pytest.mark.parametrize("table", ["mastertrail_events", "mastertrail_texts"])
    def test_truncate_is_refused(
        self, engine: Engine, log: list[RecordedEvent], table: str
    ) -> None:
        """TRUNCATE of the log or its texts is refused: by a trigger on PostgreSQL, and on
        MariaDB (whose TRUNCATE fires no trigger) by system versioning."""
        if engine.dialect.name == "sqlite":
            pytest.skip("SQLite has no TRUNCATE")
        message = "append-only" if engine.dialect.name == "postgresql" else "System-versioned"
        with pytest.raises(sa.exc.DBAPIError, match=message), engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {table}"))
        assert all_events(engine) == log
        assert eventstore.verify_chain(engine).ok

    def test_appends_still_work_after_a_refused_change(
        self, engine: Engine, log: list[RecordedEvent]
    ) -> None:
        """A refused UPDATE does not disturb later appends or the chain."""
        with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
            conn.execute(sa.text("UPDATE mastertrail_events SET version = 7"))
        assert append(engine, 1, 3, [new_event()]).positions == (4,)
        assert eventstore.verify_chain(engine).ok


class TestTamperDetection:
    """verify_chain finds a changed or removed row, at the exact first bad position."""

    @pytest.fixture
    def tamperable(self, engine: Engine) -> Engine:
        """Five events on two streams, with the immutability triggers dropped."""
        append(engine, 1, 0, [new_event(data={"n": 1}), new_event(data={"n": 2})])
        append(engine, 2, 0, [new_event(data={"n": 3})])
        append(engine, 1, 2, [new_event(data={"n": 4}), new_event(data={"n": 5})])
        assert eventstore.verify_chain(engine).ok
        with engine.begin() as conn:
            drop_immutability_triggers(conn)
        return engine

    @pytest.mark.parametrize(
        ("assignment", "position"),
        [
            ("data = '{\"n\": 33}'", 3),
            ("metadata_id = type_id", 2),
            ("type_id = metadata_id", 4),
            ("recorded_at = recorded_at + 1", 1),
            ("master_id = 3", 5),
        ],
    )
    def test_updated_row_is_the_first_bad_position(
        self, tamperable: Engine, assignment: str, position: int
    ) -> None:
        """A row changed behind the log's back is reported at its own position, first."""
        with tamperable.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE mastertrail_events SET {assignment} WHERE position = :p"),
                {"p": position},
            )
        report = eventstore.verify_chain(tamperable)
        assert not report.ok
        assert report.first_bad_position == position
        assert report.checked == position

    def test_deleted_middle_row_is_the_first_bad_position(self, tamperable: Engine) -> None:
        """A row removed from the middle of the log is reported at its position."""
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_events WHERE position = 3"))
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 3
        assert "missing" in report.problems[0].problem

    def test_deleted_newest_row_is_the_first_bad_position(self, tamperable: Engine) -> None:
        """Removing the newest row is found: the head row still names it."""
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_events WHERE position = 5"))
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 5
        assert report.checked == 4

    def test_positions_of_removed_newest_rows_are_never_reused(self, tamperable: Engine) -> None:
        """After the newest rows are removed, appends continue after the old head."""
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_events WHERE position >= 4"))
        assert append(tamperable, 2, 1, [new_event()]).positions == (6,)
        assert [e.position for e in all_events(tamperable)] == [1, 2, 3, 6]
        assert eventstore.verify_chain(tamperable).first_bad_position == 4

    def test_row_written_past_the_head_is_found(self, tamperable: Engine) -> None:
        """A row inserted behind append's back, after the newest event, is reported."""
        with tamperable.begin() as conn:
            conn.execute(
                events.insert().values(
                    position=6,
                    event_id=uuid.uuid4(),
                    master_id=3,
                    version=1,
                    type_id=1,
                    schema_version=1,
                    data="{}",
                    metadata_id=1,
                    recorded_at=T0,
                    hash=bytes(32),
                )
            )
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 6
        assert report.checked == 5

    def test_changed_text_is_found_at_the_first_event_using_it(self, tamperable: Engine) -> None:
        """A type name changed in the texts table is found at the first event of that type."""
        append(tamperable, 2, 1, [new_event("test.rare")])
        with tamperable.begin() as conn:
            conn.execute(
                sa.text("UPDATE mastertrail_texts SET text = 'test.forged' WHERE text = :t"),
                {"t": "test.rare"},
            )
        assert eventstore.verify_chain(tamperable).first_bad_position == 6

    def test_missing_text_is_found_and_its_events_are_refused(self, tamperable: Engine) -> None:
        """An event whose text was removed is still read, refused, and reported: not skipped."""
        append(tamperable, 2, 1, [new_event("test.rare")])
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_texts WHERE text = 'test.rare'"))
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 6
        assert "missing" in report.problems[0].problem
        with pytest.raises(eventstore.DecodeError, match="position 6"):
            all_events(tamperable)

    def test_swapped_rows_are_found(self, tamperable: Engine) -> None:
        """Exchanging the contents of two rows (each hash kept) is found at the earlier one."""
        with tamperable.begin() as conn:
            rows = {
                row.position: row.data
                for row in conn.execute(
                    sa.text(
                        "SELECT position, data FROM mastertrail_events WHERE position IN (2, 4)"
                    )
                )
            }
            for position, other in ((2, 4), (4, 2)):
                conn.execute(
                    sa.text("UPDATE mastertrail_events SET data = :d WHERE position = :p"),
                    {"d": rows[other], "p": position},
                )
        assert eventstore.verify_chain(tamperable).first_bad_position == 2


class TestVerifyChainWhileWriting:
    """verify_chain on a log that other transactions keep appending to."""

    def test_appends_committed_during_verification_are_not_problems(self, engine: Engine) -> None:
        """Events committed while verify_chain reads (before each of its queries) are no problem."""
        append(engine, 1, 0, [new_event() for _ in range(5)])
        appended: list[eventstore.AppendResult] = []
        appending = False

        def commit_an_append(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            nonlocal appending
            if appending or not statement.lstrip().startswith("SELECT"):
                return  # the append's own statements, and BEGIN
            appending = True
            try:
                appended.append(append(engine, 2, len(appended), [new_event()]))
            finally:
                appending = False

        sa.event.listen(engine, "before_cursor_execute", commit_an_append)
        try:
            report = eventstore.verify_chain(engine, batch_size=2)
        finally:
            sa.event.remove(engine, "before_cursor_execute", commit_an_append)
        assert len(appended) >= 3
        assert report.ok, report.problems
        assert report.checked >= 5
        assert eventstore.verify_chain(engine).checked == 5 + len(appended)
