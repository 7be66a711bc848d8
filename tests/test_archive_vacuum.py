"""After a run that deleted rows, PostgreSQL's log is vacuumed: the dead rows' index entries
would otherwise slow every seek past them (a stream's first event in the table, in
``masters_as_of``) until autovacuum comes by."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mastertrail import Registry
from tests.conftest import FakeClock


def vacuums(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'mastertrail_events'"
            ).scalar_one()
        )


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("made_elsewhere", [False, True], ids=["own engine", "Buildbot's engine"])
def test_a_run_that_deleted_rows_vacuums_the_log(
    db_url: str, clock: FakeClock, tmp_path: Path, made_elsewhere: bool
) -> None:
    foreign = sa.create_engine(db_url) if made_elsewhere else None
    registry = Registry(foreign or db_url, clock=clock, actor="tester")
    try:
        registry.upgrade()
        master_id = registry.find_master_id("a:/m")
        for _ in range(30):
            clock.advance(60)
            registry.set_master_state(master_id, True)
        before = vacuums(registry.engine)
        assert registry.archive(before=20, to=tmp_path).events == 19
        assert vacuums(registry.engine) == before + 1
        assert registry.archive(before=20, to=tmp_path).events == 0  # nothing deleted
        assert vacuums(registry.engine) == before + 1
        assert registry.verify().ok
    finally:
        registry.close()
        if foreign is not None:
            foreign.dispose()
