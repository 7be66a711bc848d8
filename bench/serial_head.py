"""A model of the fleet's heartbeat on PostgreSQL: why eight masters appending at once
cost more than eight masters updating their own rows.

Not a section of ``make bench``, and not mastertrail's code: plain psycopg on a database
of its own, with a head row, a log table with the log's three indexes and a ``masters``
table. Each contender runs in 1 or :data:`FLEET` processes at once, every process making
:data:`CALLS` calls back to back after :data:`WARM` untimed ones; the result is the median
of every call. The contenders, alternated in order from one round to the next:

- ``append``: mastertrail's shape. ``BEGIN`` with the lock wait (one simple query), one
  statement that moves the head (its row lock orders every append), inserts the event
  chained on the head's hash and updates the master's row, then ``COMMIT``: three round
  trips, the head's lock held from the statement to the end of the commit;
- ``append, no flush wait``: the same with ``synchronous_commit = off``, so the commit
  does not wait for the log's flush while it holds the head's lock;
- ``append, autocommit``: the statement alone, which commits itself: one round trip, and
  the head's lock is released without waiting for the client's ``COMMIT``;
- ``update``: Buildbot's shape, ``BEGIN``, read the master's row, update it, ``COMMIT``;
- ``update, no flush wait``.

Run: ``python -m bench.serial_head [--rounds N]`` with ``MASTERTRAIL_BENCH_POSTGRES_URL``
or ``MASTERTRAIL_TEST_POSTGRES_URL`` naming the server (see ``docs/performance.rst``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.databases import server_url

FLEET = 8
CALLS = 300
WARM = 20

APPEND = (
    "WITH moved AS (UPDATE head SET position = position + 1, "
    "hash = sha256(hash || %(tail)s::bytea) WHERE id = 1 RETURNING position, hash), "
    "appended AS (INSERT INTO log (position, master_id, version, recorded_at, hash, data) "
    "SELECT position, %(master)s, %(version)s, %(at)s, hash, '{}' FROM moved RETURNING 1), "
    "viewed AS (UPDATE masters SET last_active = %(at)s WHERE id = %(master)s RETURNING 1) "
    "SELECT count(*) FROM moved"
)
BEGIN = b"BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = 5000"
NO_FLUSH_WAIT = b"; SET LOCAL synchronous_commit = off"

Call = Callable[[psycopg.Connection[Any], int, int], None]


def _append(begin: bytes | None) -> Call:
    def call(conn: psycopg.Connection[Any], master: int, n: int) -> None:
        if begin is not None:
            conn.pgconn.exec_(begin)
        params = {"tail": str(n).encode(), "master": master, "version": n, "at": n}
        conn.execute(APPEND, params).fetchone()
        if begin is not None:
            conn.commit()

    return call


def _update(no_flush_wait: bool) -> Call:
    def call(conn: psycopg.Connection[Any], master: int, n: int) -> None:
        if no_flush_wait:
            conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SELECT active FROM masters WHERE id = %s", (master,)).fetchone()
        conn.execute("UPDATE masters SET last_active = %s WHERE id = %s", (n, master))
        conn.commit()

    return call


#: Each contender: its call, and whether its connection is in autocommit.
CONTENDERS: dict[str, tuple[Call, bool]] = {
    "append": (_append(BEGIN), False),
    "append, no flush wait": (_append(BEGIN + NO_FLUSH_WAIT), False),
    "append, autocommit": (_append(None), True),
    "update": (_update(False), False),
    "update, no flush wait": (_update(True), False),
}


def create(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql in (
            "CREATE TABLE head (id int PRIMARY KEY, position bigint NOT NULL, hash bytea)",
            "INSERT INTO head VALUES (1, 0, '\\x00')",
            "CREATE TABLE log (position bigint PRIMARY KEY, master_id int NOT NULL, "
            "version int NOT NULL, recorded_at bigint NOT NULL, hash bytea NOT NULL, "
            "data text NOT NULL, UNIQUE (master_id, version, position))",
            "CREATE INDEX log_recorded_at ON log (recorded_at, position)",
            "CREATE TABLE masters (id int PRIMARY KEY, active boolean, last_active bigint)",
            f"INSERT INTO masters SELECT g, true, 0 FROM generate_series(1, {FLEET}) g",
        ):
            conn.execute(sql)


def master(
    dsn: str, name: str, number: int, start: Barrier, out: Queue[list[float]], base: int
) -> None:
    """One process: ``CALLS`` timed calls of contender ``name`` as master ``number``."""
    call, autocommit = CONTENDERS[name]
    with psycopg.connect(dsn, autocommit=autocommit) as conn:
        for n in range(base, base + WARM):
            call(conn, number, n)
        start.wait()
        times = []
        for n in range(base + WARM, base + WARM + CALLS):
            began = time.perf_counter()
            call(conn, number, n)
            times.append(time.perf_counter() - began)
    out.put(times)


def median_ms(dsn: str, name: str, processes: int, base: int) -> float:
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=master, args=(dsn, name, number + 1, start, out, base))
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    times = [t for _ in workers for t in out.get(timeout=300)]
    for worker in workers:
        worker.join()
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = server_url("postgresql")
    if url is None:
        raise SystemExit("no PostgreSQL server configured (MASTERTRAIL_BENCH_POSTGRES_URL)")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"mastertrail_serial_head_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    dsn = sa.make_url(url).set(drivername="postgresql", database=name)
    conninfo = dsn.render_as_string(hide_password=False)
    try:
        create(conninfo)
        base = 0
        for number in range(args.rounds):
            for processes in (1, FLEET):
                order = list(CONTENDERS) if number % 2 == 0 else list(reversed(CONTENDERS))
                found = {}
                for contender in order:
                    found[contender] = median_ms(conninfo, contender, processes, base)
                    base += WARM + CALLS
                shown = ", ".join(f"{key} {found[key]:.3f}" for key in CONTENDERS)
                print(
                    f"round {number + 1}, {processes} process(es), median ms: {shown}; "
                    f"append / update {found['append'] / found['update']:.2f}x, "
                    f"autocommit / update {found['append, autocommit'] / found['update']:.2f}x",
                    flush=True,
                )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()
