"""What the archive reading tests share: a log with every kind of event, and every reading
of it taken as plain values, so that the readings before and after archiving compare with
``==``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import attrs
import pytest

from eventstore import SegmentFile
from mastertrail import Registry
from mastertrail.cli.replay import replay
from mastertrail.web import create_app
from projections import name_hash
from projections.view import masters as masters_table
from tests.cli_support import make_invoke
from tests.conftest import FakeClock
from tests.registry_support import changesource_masters, link_metadata, scheduler_masters

T0 = 1_700_000_000
ALPHA, BRAVO, CHARLIE, DELTA, ECHO = (
    "alpha:/srv/master",
    "bravo:/srv/master",
    "charlie:/srv/master",
    "delta:/srv/master",
    "écho:/srv/mäster",
)
#: Rounds of check-ins; a round is a minute.
ROUNDS = 40


@attrs.frozen
class Fleet:
    """The masters of :func:`build_log` by name, and the times that matter."""

    ids: dict[str, int]
    end: float  # the clock when the log was written


def at(offset: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T0 + offset, dt.UTC)


def _link(registry: Registry, master_id: int, number: int) -> None:
    with registry.engine.begin() as conn:
        conn.execute(scheduler_masters.insert().values(schedulerid=number, masterid=master_id))
        conn.execute(
            changesource_masters.insert().values(changesourceid=number, masterid=master_id)
        )


def build_log(registry: Registry, clock: FakeClock) -> Fleet:
    """Forty minutes of a fleet: alpha checks in every minute; bravo stops cleanly (its
    links removed) and starts again; charlie falls silent and alpha expires it; delta, a
    row written before the log, is adopted; every master is reset long ago once; écho
    registers late. Several events share a second."""
    clock.now = T0
    with registry.engine.begin() as conn:
        link_metadata.create_all(conn)
    alpha = Registry(registry.engine, clock=clock, actor=ALPHA)
    ids = {name: registry.find_master_id(name) for name in (ALPHA, BRAVO, CHARLIE)}
    for number, name in enumerate((ALPHA, BRAVO, CHARLIE), start=1):
        registry.set_master_state(ids[name], True)
        _link(registry, ids[name], number)
    for round_ in range(1, ROUNDS + 1):
        clock.now = T0 + 60 * round_
        alpha.set_master_state(ids[ALPHA], True)
        if round_ <= 5 or round_ > 12:
            registry.set_master_state(ids[BRAVO], True)
        if round_ == 6:
            registry.set_master_state(ids[BRAVO], False)
        if round_ == 12:
            _link(registry, ids[BRAVO], 4)
        if round_ <= 3:
            registry.set_master_state(ids[CHARLIE], True)
        if round_ == 15:
            assert [m.name for m in alpha.expire_masters(timeout=600)] == [CHARLIE]
        if round_ == 18:
            with registry.engine.begin() as conn:
                conn.execute(
                    masters_table.insert().values(
                        id=50,
                        name=DELTA,
                        name_hash=name_hash(DELTA),
                        active=1,
                        last_active=T0 + 60 * round_ - 30,
                    )
                )
            registry.adopt()
            ids[DELTA] = 50
        if round_ == 24:
            registry.set_all_masters_active_long_time_ago()
        if round_ == 25:
            assert {m.name for m in alpha.expire_masters(timeout=600)} >= {DELTA}
        if round_ == 30:
            ids[ECHO] = registry.find_master_id(ECHO)
        if round_ > 30:
            clock.advance(0.5)
            registry.set_master_state(ids[ECHO], True)
    return Fleet(ids, clock.now)


#: Times the readings ask about: before the log, inside it (on events and between them),
#: and after it.
MOMENTS = tuple(at(offset) for offset in (-1, 0, 59, 60, 61.5, 359, 700, 901, 1500, 1830.5, 9999))


def readings(registry: Registry, fleet: Fleet, workdir: Path, *cli_args: str) -> dict[str, Any]:
    """Every reading of the log, as values: the API's, the command line's (``cli_args``
    before the command, e.g. ``--archive DIR``), the web application's and a replay's.

    ``verify`` comes first (it records its result, which the page shows) and ``rebuild``
    next, so that taking the readings twice shows the same page."""
    values: dict[str, Any] = {}
    report = registry.verify()
    values["verify"] = (report.ok, report.events_checked, [str(p) for p in report.problems])
    values["rebuild"] = registry.rebuild()
    values["view"] = registry.get_masters()
    values.update(api_readings(registry, fleet))
    values.update(cli_readings(registry, fleet, workdir, *cli_args))
    values.update(web_readings(registry, fleet))
    values.update(replay_readings(registry, workdir))
    return values


def api_readings(registry: Registry, fleet: Fleet) -> dict[str, Any]:
    """The Python API's readings of the log."""
    every = list(registry.events())
    last = every[-1].position
    values: dict[str, Any] = {"events": every}
    for after in (0, 1, 7, last // 2, last - 1, last, last + 5):
        for limit in (None, 1, 3, 1000):
            values[f"events after {after} limit {limit}"] = list(
                registry.events(after=after, limit=limit)
            )
    for name, master_id in fleet.ids.items():
        values[f"history {name}"] = registry.history(master_id)
        for since, until in ((MOMENTS[3], MOMENTS[7]), (MOMENTS[6], None), (None, MOMENTS[4])):
            values[f"history {name} {since} {until}"] = registry.history(
                master_id, since=since, until=until
            )
    values["history unknown"] = registry.history(999)
    for position in range(last + 2):
        values[f"as of @{position}"] = registry.masters_as_of(position)
    for when in MOMENTS:
        values[f"as of {when}"] = registry.masters_as_of(when)
        values[f"position at {when}"] = registry.position_at(when)
    values["latest"] = registry.latest_events(count=2)
    values["latest 5"] = registry.latest_events(count=5)
    values["log position"] = registry.log_position()
    return values


def cli_readings(registry: Registry, fleet: Fleet, workdir: Path, *cli_args: str) -> dict[str, Any]:
    """What the commands that read print (and the picture ``timeline`` draws)."""
    invoke = make_invoke(FakeClock(fleet.end))
    url = registry.engine.url.render_as_string(hide_password=False)
    last = registry.log_position()
    commands: list[tuple[str, ...]] = [
        ("masters", "--json"),
        ("masters",),
        ("masters", "--as-of", "@3", "--json"),
        ("masters", "--as-of", f"@{last // 2}"),
        ("masters", "--as-of", at(700).isoformat(), "--active", "--json"),
        ("masters", "--as-of", "25 minutes ago", "--json"),
        ("log", "--json"),
        ("log",),
        ("log", "--after", "5", "--limit", "9", "--json"),
        ("history", BRAVO),
        ("history", BRAVO, "--full"),
        ("history", CHARLIE, "--json"),
        ("history", str(fleet.ids[DELTA]), "--since", "@10", "--until", f"@{last - 3}"),
        ("history", ALPHA, "--since", at(300).isoformat(), "--until", "30 minutes ago"),
        ("verify", "--json"),
    ]
    values: dict[str, Any] = {}
    for command in commands:
        result = invoke("--db", url, *cli_args, *command)
        values[f"cli {' '.join(command)}"] = (result.exit_code, result.stdout, result.stderr)
    for suffix in ("svg", "png"):
        picture = workdir / f"timeline.{suffix}"
        picture.unlink(missing_ok=True)
        result = invoke("--db", url, *cli_args, "timeline", "--out", str(picture), "--json")
        values[f"cli timeline {suffix}"] = (
            result.exit_code,
            result.stdout,
            picture.read_bytes() if picture.exists() else None,
        )
    window = ("--since", "@8", "--until", at(1500).isoformat())
    picture = workdir / "window.svg"
    picture.unlink(missing_ok=True)
    result = invoke("--db", url, *cli_args, "timeline", "--out", str(picture), *window)
    values["cli timeline window"] = (result.exit_code, result.stdout, picture.read_bytes())
    return values


def web_readings(registry: Registry, fleet: Fleet) -> dict[str, Any]:
    """The web application's pages and answers."""
    client = create_app(registry).test_client()
    paths = [
        "/",
        "/index.html",
        "/metrics",
        "/api/masters",
        "/api/masters?as_of=@5",
        f"/api/masters?as_of={at(901):%Y-%m-%dT%H:%M:%SZ}",
        "/timeline.svg",
        "/?as_of=@9",
        "/?as_of=20+minutes+ago",
    ]
    for master_id in fleet.ids.values():
        paths.append(f"/api/masters/{master_id}/history")
        paths.append(f"/?master={master_id}")
    values = {}
    for path in paths:
        response = client.get(path)
        values[f"web {path}"] = (response.status_code, response.get_data(as_text=True))
    return values


def replay_readings(registry: Registry, workdir: Path) -> dict[str, Any]:
    """What a replay into an empty SQLite sandbox copies, up to a position and a time."""
    values: dict[str, Any] = {}
    for label, until in (("position", 17), ("time", at(1200)), ("all", 10**6)):
        path = workdir / f"sandbox-{label}.sqlite"
        path.unlink(missing_ok=True)
        sandbox = Registry(f"sqlite:///{path}", clock=registry.clock, actor="sandbox")
        try:
            result = replay(registry, sandbox, until=until)
            values[f"replay {label}"] = (
                result.events,
                result.until_position,
                result.masters,
                result.report.ok,
                list(sandbox.events()),
                sandbox.get_masters(),
            )
        finally:
            sandbox.close()
    return values


def hot_rows(registry: Registry) -> int:
    """The rows left in the log's table."""
    with registry.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM mastertrail_events").scalar_one())


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The names of the readings that differ (or exist on one side only)."""
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def segment_files_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first position of every segment file decompressed from here on, in order."""
    found: list[int] = []
    read = SegmentFile._read

    def counting(self: SegmentFile, text: str) -> None:
        read(self, text)
        found.append(self.header.first_position)

    monkeypatch.setattr(SegmentFile, "_read", counting)
    return found
