"""The model of eight masters at the log's head (``python -m bench.serial_head``) runs on
both servers and reports every contender, alone and eight at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import Server

CONTENDERS = {
    "postgresql": [
        "append",
        "append, no flush wait",
        "append, autocommit",
        "update",
        "update, no flush wait",
    ],
    "mysql": ["block", "block, commit inside", "update"],
}
ENV = {"postgresql": "MASTERTRAIL_BENCH_POSTGRES_URL", "mysql": "MASTERTRAIL_BENCH_MYSQL_URL"}


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_the_model_reports_each_contender(backend: str, servers: dict[str, Server | str]) -> None:
    server = servers[backend]
    if isinstance(server, str):
        pytest.skip(server)
    url = server.admin_url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "bench.serial_head", "--backend", backend, "--rounds", "1",
         "--calls", "5"],
        env={**os.environ, ENV[backend]: url},
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert [line.split(",")[1].strip() for line in lines] == ["1 process(es)", "8 process(es)"]
    for line in lines:
        timed = dict(re.findall(r"(\w[\w ,]*?) (\d+\.\d{3})(?:,|;)", line.split(": ", 1)[1]))
        assert sorted(timed) == sorted(CONTENDERS[backend]), line
        assert all(float(ms) > 0 for ms in timed.values())
    assert "mastertrail_serial_head" not in _databases(server)  # dropped


def _databases(server: Server) -> str:
    with server.admin.connect() as conn:
        if server.backend == "postgresql":
            rows = conn.exec_driver_sql("SELECT datname FROM pg_database").scalars()
        else:
            rows = conn.exec_driver_sql("SHOW DATABASES").scalars()
        return " ".join(str(row) for row in rows)
