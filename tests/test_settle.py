"""``eventstore.settle`` after a bulk change: the database's picture of the log is fresh."""

from __future__ import annotations

import os

import sqlalchemy as sa

import eventstore
from mastertrail import Registry


def test_settle_refreshes_what_the_database_knows_of_the_log(registry: Registry) -> None:
    for n in range(20):
        registry.find_master_id(f"master-{n}")
    engine = registry.engine
    with engine.connect() as conn:
        count = eventstore.head_position(conn)
    eventstore.settle(engine)
    if engine.dialect.name == "sqlite":
        wal = f"{engine.url.database}-wal"
        # Folded back into the database file: the write-ahead log is empty, if it exists.
        assert not os.path.exists(wal) or os.path.getsize(wal) == 0
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            analysed = conn.execute(
                sa.text(
                    "SELECT last_analyze IS NOT NULL AND last_vacuum IS NOT NULL "
                    "FROM pg_stat_user_tables WHERE relname = :table"
                ),
                {"table": eventstore.EVENTS_TABLE},
            ).one()
        assert analysed[0]
    else:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT n_rows FROM mysql.innodb_table_stats "
                    "WHERE database_name = DATABASE() AND table_name = :table"
                ),
                {"table": eventstore.EVENTS_TABLE},
            ).scalar_one()
        assert rows == count
