"""Section 4: rebuilding the view from the long log against a raw driver scan of the same
table, ``masters_as_of`` in the middle of the year, and the bytes each event costs."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import sqlite3
import statistics
import threading
import time
from typing import Any

import sqlalchemy as sa

from bench.databases import Database
from bench.history import HistoryPlan
from bench.stats import alternate, summary
from eventstore import EVENTS_TABLE, TEXTS_TABLE
from mastertrail import Registry

SCAN = f"SELECT * FROM {EVENTS_TABLE} ORDER BY position"


def raw_scan(database: Database) -> int:
    """Read every row of the log in position order with the bare driver; the row count."""
    if database.backend == "sqlite":
        return _scan_sqlite(database)
    if database.backend == "postgresql":
        return _scan_postgresql(database)
    return _scan_mysql(database)


def _scan_sqlite(database: Database) -> int:
    count = 0
    with contextlib.closing(sqlite3.connect(str(database.path))) as conn:
        for _row in conn.execute(SCAN):
            count += 1
    return count


def _scan_postgresql(database: Database) -> int:
    import psycopg

    url = database.sa_url().set(drivername="postgresql")
    count = 0
    with (
        psycopg.connect(url.render_as_string(hide_password=False)) as conn,
        conn.cursor(name="bench_scan") as cursor,  # server-side: streamed in batches
    ):
        cursor.itersize = 5000
        cursor.execute(SCAN)
        for _row in cursor:
            count += 1
    return count


def _scan_mysql(database: Database) -> int:
    import pymysql
    import pymysql.cursors

    url = database.sa_url()
    conn = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=url.database,
        cursorclass=pymysql.cursors.SSCursor,  # unbuffered: streamed from the server
    )
    count = 0
    try:
        with conn.cursor() as cursor:
            cursor.execute(SCAN)
            for _row in cursor:
                count += 1
    finally:
        conn.close()
    return count


class PeakMemory:
    """The highest resident set size seen while the block runs, sampled every 10 ms."""

    def __init__(self) -> None:
        self.baseline = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakMemory:
        self.baseline = self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


def _rss() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: no sampling
        return 0


def rebuild_vs_scan(database: Database, repeats: int) -> dict[str, Any]:
    """Alternate raw scans and ``Registry.rebuild()``: scan, then ``repeats`` times
    rebuild and scan."""
    registry = Registry(database.url, actor="bench")
    scans: list[float] = []
    rebuilds: list[float] = []
    growth: list[float] = []
    replayed = 0

    def scan() -> int:
        start = time.perf_counter()
        rows = raw_scan(database)
        scans.append(rows / (time.perf_counter() - start))
        return rows

    try:
        rows = scan()
        for _ in range(repeats):
            with PeakMemory() as memory:
                start = time.perf_counter()
                replayed = registry.rebuild()
                rebuilds.append(replayed / (time.perf_counter() - start))
            growth.append(memory.growth_mb)
            rows = scan()
    finally:
        registry.close()
    scan_rate, rebuild_rate = statistics.median(scans), statistics.median(rebuilds)
    return {
        "backend": database.backend,
        "events": replayed,
        "scanned_rows": rows,
        "rebuild_events_per_s": rebuild_rate,
        "scan_rows_per_s": scan_rate,
        "ratio": rebuild_rate / scan_rate,
        "rebuild_peak_rss_growth_mb": max(growth),
        "repeats": repeats,
    }


def as_of(
    long: Database,
    long_plan: HistoryPlan,
    short: Database,
    short_plan: HistoryPlan,
    iterations: int,
    warmup: int,
) -> dict[str, Any]:
    """``masters_as_of`` the middle of each history, long and short log alternating."""
    registries = {"long": Registry(long.url), "short": Registry(short.url)}
    moments = {
        "long": dt.datetime.fromtimestamp(long_plan.moment(0.5), tz=dt.UTC),
        "short": dt.datetime.fromtimestamp(short_plan.moment(0.5), tz=dt.UTC),
    }
    try:
        for key, registry in registries.items():
            found = registry.masters_as_of(moments[key])
            assert len(found) == long_plan.masters, found
        samples = alternate(
            {
                key: functools.partial(registry.masters_as_of, moments[key])
                for key, registry in registries.items()
            },
            iterations,
            warmup,
            budget=30.0,
        )
    finally:
        for registry in registries.values():
            registry.close()
    result: dict[str, Any] = {
        "backend": long.backend,
        "events": long_plan.events,
        "short_events": short_plan.events,
        "masters": long_plan.masters,
        "long": summary(samples["long"]),
        "short": summary(samples["short"]),
    }
    result["growth_ratio"] = result["long"]["median_ms"] / result["short"]["median_ms"]
    return result


def storage(database: Database) -> dict[str, Any]:
    """Bytes on disk per event: the log table and its texts with their indexes, and
    (SQLite) the file."""
    engine = sa.create_engine(database.url)
    try:
        with engine.connect() as conn:
            count = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {EVENTS_TABLE}").scalar_one())
            if database.backend == "sqlite":
                table_bytes, parts = _sqlite_sizes(conn)
            elif database.backend == "postgresql":
                table_bytes, parts = _postgres_sizes(conn)
            else:
                table_bytes, parts = _mysql_sizes(conn)
    finally:
        engine.dispose()
    result = {
        "backend": database.backend,
        "events": count,
        "bytes_per_event": table_bytes / count,
        "parts_bytes_per_event": {name: size / count for name, size in parts.items()},
    }
    if database.backend == "mysql":  # the parts are pages, whole; the total is on disk
        result["pages_bytes_per_event"] = sum(parts.values()) / count
    if database.path is not None:
        result["file_bytes_per_event"] = os.path.getsize(database.path) / count
    return result


def _sqlite_sizes(conn: sa.Connection) -> tuple[int, dict[str, int]]:
    names = (
        conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE tbl_name IN (?, ?) "
            "AND type IN ('table', 'index')",
            (EVENTS_TABLE, TEXTS_TABLE),
        )
        .scalars()
        .all()
    )
    parts = {
        name: int(
            conn.exec_driver_sql("SELECT SUM(pgsize) FROM dbstat WHERE name = ?", (name,)).scalar()
            or 0
        )
        for name in names
    }
    return sum(parts.values()), parts


def _postgres_sizes(conn: sa.Connection) -> tuple[int, dict[str, int]]:
    parts = {}
    for table in (EVENTS_TABLE, TEXTS_TABLE):
        rows = conn.exec_driver_sql(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_index i ON i.indexrelid = c.oid WHERE i.indrelid = %(t)s::regclass "
            "UNION ALL SELECT %(t)s || ' heap+toast', pg_table_size(%(t)s::regclass)",
            {"t": table},
        ).all()
        parts.update({str(name): int(size) for name, size in rows})
    return sum(parts.values()), parts


def _mysql_sizes(conn: sa.Connection) -> tuple[int, dict[str, int]]:
    """The bytes the log's tables take on disk (their files' allocated blocks: InnoDB
    compresses the log's pages, revision ``0012_mariadb_page_compression``) and, as the
    parts, InnoDB's pages of each table's data and indexes, whole."""
    parts = {}
    disk = 0
    for table in (EVENTS_TABLE, TEXTS_TABLE):
        conn.exec_driver_sql(f"ANALYZE TABLE {table}").all()
        row = conn.exec_driver_sql(
            "SELECT data_length, index_length FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            (table,),
        ).one()
        parts.update({f"{table} data": int(row[0]), f"{table} indexes": int(row[1])})
        disk += _mysql_allocated(conn, table) or int(row[0]) + int(row[1])
    return disk, parts


def _mysql_allocated(conn: sa.Connection, table: str) -> int | None:
    """The blocks the file of ``table`` holds on disk once its changed pages are written
    (``FLUSH TABLES … FOR EXPORT``); None when the table has no file of its own."""
    conn.exec_driver_sql(f"FLUSH TABLES {table} FOR EXPORT")
    conn.exec_driver_sql("UNLOCK TABLES")
    found = conn.exec_driver_sql(
        "SELECT allocated_size FROM information_schema.innodb_sys_tablespaces "
        "WHERE name = CONCAT(DATABASE(), '/', %s)",
        (table,),
    ).scalar()
    return None if found is None else int(found)
