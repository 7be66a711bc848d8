"""Prebuilt statements sent as the driver's own call behave as ``Connection.execute``
would: same rows, same typed errors, same events."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore import prebuilt
from eventstore.schema import HEAD_ROW_ID, head, texts

#: A literal bound by the statement itself (HEAD_ROW_ID) and one bound by the caller.
HEAD_AT = sa.select(head.c.position, head.c.last_master_id.label("last")).where(
    head.c.id == HEAD_ROW_ID, head.c.position >= sa.bindparam("at_least")
)
INSERT_TEXT = texts.insert()


def test_a_select_returns_the_rows_execute_returns(engine: Engine) -> None:
    with engine.connect() as conn:
        expected = conn.execute(HEAD_AT, {"at_least": 0}).all()
        got = prebuilt.execute(conn, HEAD_AT, {"at_least": 0}).all()
        assert [tuple(row) for row in got] == [tuple(row) for row in expected] == [(0, 0)]
        assert got[0].last == 0  # columns by name
        assert prebuilt.execute(conn, HEAD_AT, {"at_least": 1}).all() == []


def test_many_rows_are_inserted_in_one_call(engine: Engine) -> None:
    rows = [{"id": n, "digest": bytes([n]) * 32, "text": f"t{n}"} for n in (1, 2, 3)]
    with engine.begin() as conn:
        assert prebuilt.execute(conn, INSERT_TEXT, rows).rowcount in (3, -1)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(texts.c.id, texts.c.text).order_by(texts.c.id)).all()
    assert [tuple(row) for row in stored] == [(1, "t1"), (2, "t2"), (3, "t3")]


def test_a_driver_error_is_sqlalchemys_typed_error(engine: Engine) -> None:
    row = {"id": 1, "digest": bytes(32), "text": "t"}
    with engine.begin() as conn:
        prebuilt.execute(conn, INSERT_TEXT, row)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        prebuilt.execute(conn, INSERT_TEXT, {**row, "id": 2})


def test_every_call_is_seen_by_the_engines_statement_events(engine: Engine) -> None:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            for _ in range(3):
                prebuilt.execute(conn, HEAD_AT, {"at_least": 0}).all()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(seen) == 3  # one statement a call
    assert len(set(seen)) == 1  # the same prebuilt SQL each time


def test_a_parameter_left_out_is_an_error_not_a_null(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises((KeyError, sa.exc.DBAPIError)):
        prebuilt.execute(conn, HEAD_AT, {})
