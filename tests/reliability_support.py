"""What the reliability tests share: sizes (larger under ``MASTERTRAIL_SOAK=1``), real
processes started with 'spawn', waiting with a deadline, and a dump of the log and the view
to compare byte for byte."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

# Where the reliability tests have always found it; it lives beside the other database
# fixtures.
from tests.conftest import own_database as own_database

#: ``make soak`` sets this: the same tests, with more processes, calls and trials.
SOAK = os.environ.get("MASTERTRAIL_SOAK", "") == "1"

SPAWN: SpawnContext = multiprocessing.get_context("spawn")

#: Seconds a multi-process step may take before the test fails instead of hanging (never
#: reached when healthy; it only turns a hang into a failure).
DEADLINE = 600.0 if SOAK else 240.0

#: The tables mastertrail writes: the log, its head row, its schema version, and the view.
TABLES = ("mastertrail_events", "mastertrail_head", "mastertrail_alembic_version", "masters")


def sized(normal: int, soak: int) -> int:
    """``normal`` in ``make test``, ``soak`` under ``make soak``."""
    return soak if SOAK else normal


def quiet_logging() -> None:
    """Keep a worker process's structlog lines (one per command) out of the test output."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of mastertrail's tables, in primary-key order, as plain values."""
    found = set(sa.inspect(engine).get_table_names())
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name in TABLES:
            if name not in found:
                continue
            rows = conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY 1")).all()
            tables[name] = [tuple(_plain(value) for value in row) for row in rows]
        conn.rollback()
    return tables


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytes | memoryview | bytearray) else value


def wait_until(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``check`` until it is true; fail the test naming ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def get(results: multiprocessing.Queue[Any], what: str, timeout: float = DEADLINE) -> Any:
    """The next report on ``results``; fail the test naming ``what`` after ``timeout``."""
    try:
        return results.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no report from {what} within {timeout:.0f} s")


def stop_all(processes: list[SpawnProcess]) -> None:
    """Kill and reap whatever is still running (a test that failed half-way)."""
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join(10)
