"""After a bulk change to the log (a long history loaded, old events archived): let the
database settle, so that its plans and its files reflect the new size."""

from __future__ import annotations

import contextlib
import sqlite3

from sqlalchemy.engine import Engine

from eventstore.schema import events


def settle(engine: Engine) -> None:
    """Refresh the planner's statistics of the log's table and fold SQLite's write-ahead
    log back into the database file. Run it outside any transaction of ``engine``'s."""
    if engine.dialect.name == "sqlite":
        with contextlib.closing(sqlite3.connect(engine.url.database or "")) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {events.name}")
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"ANALYZE TABLE {events.name}").all()
