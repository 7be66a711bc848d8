"""Bad input, across the API, the Buildbot component and the command line: each kind gets
a typed error (a RegistryError that is also a TypeError or ValueError where the input is
at fault) or a one-line message with exit status 2, and the log and the view are byte for
byte what they were.

The API and command-line cases run against one small fleet per backend; every case dumps
the tables before and after itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

import eventstore
from eventstore import (
    InvalidArgument,
    InvalidArgumentType,
    NewEvent,
    RegistryError,
    SchemaMissing,
    SchemaTooNew,
    StoreUnavailable,
    UnknownEventType,
    UnsupportedSchemaVersion,
)
from mastertrail import Registry
from mastertrail.cli import Runtime, cli
from tests.conftest import BACKENDS, FakeClock, Server
from tests.reliability_support import dump, own_database

T0 = 1_700_000_000.0
NAIVE = dt.datetime(2023, 11, 14, 22, 13, 20)
AWARE = NAIVE.replace(tzinfo=dt.UTC)
HUGE = 2**80
UNREACHABLE = {
    "postgresql": "postgresql+psycopg://root@127.0.0.1:1/mastertrail",
    "mysql": "mysql+pymysql://root@127.0.0.1:1/mastertrail",
}


@attrs.frozen
class Fleet:
    """Two masters with a history on one backend: ``alpha`` active, ``bravo`` expired."""

    backend: str
    url: str
    registry: Registry
    clock: FakeClock
    alpha: int
    bravo: int


@pytest.fixture(scope="module", params=BACKENDS)
def fleet(
    request: pytest.FixtureRequest,
    servers: dict[str, Server | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """A small fleet on a database of its own per backend, shared by the cases."""
    backend = str(request.param)
    with own_database(backend, servers, tmp_path_factory.mktemp("fleet")) as url:
        clock = FakeClock(T0)
        registry = Registry(url, clock=clock, actor="tester")
        registry.upgrade()
        alpha = registry.find_master_id("alpha:/srv")
        bravo = registry.find_master_id("bravo:/srv")
        registry.set_master_state(alpha, True)
        registry.set_master_state(bravo, True)
        clock.advance(1000)
        registry.set_master_state(alpha, True)
        registry.expire_masters(timeout=600)
        yield Fleet(backend, url, registry, clock, alpha, bravo)
        registry.close()


@contextlib.contextmanager
def unchanged(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet; fails unless its tables are byte for byte the same at the end."""
    before = dump(fleet.registry.engine)
    yield fleet
    assert dump(fleet.registry.engine) == before


# Known gaps outside the store, each to be removed once fixed (strict: a fix makes it fail).

# -- the API ---------------------------------------------------------------------------------

Call = Callable[[Registry, Fleet], object]

API_CASES: list[Any] = [
    # names
    pytest.param(lambda r, f: r.find_master_id(None), InvalidArgumentType, id="name-none"),
    pytest.param(
        lambda r, f: r.find_master_id(b"alpha:/srv"), InvalidArgumentType, id="name-bytes"
    ),
    pytest.param(lambda r, f: r.find_master_id(42), InvalidArgumentType, id="name-int"),
    pytest.param(lambda r, f: r.find_master_id(""), InvalidArgument, id="name-empty"),
    pytest.param(lambda r, f: r.find_master_id("m" * 1025), InvalidArgument, id="name-long"),
    pytest.param(lambda r, f: r.find_master_id("m" * 10**7), InvalidArgument, id="name-10MB"),
    pytest.param(lambda r, f: r.find_master_id("a\nb"), InvalidArgument, id="name-newline"),
    pytest.param(lambda r, f: r.find_master_id("a\x00b"), InvalidArgument, id="name-nul"),
    pytest.param(lambda r, f: r.find_master_id("a\x1b[2Jb"), InvalidArgument, id="name-escape"),
    pytest.param(lambda r, f: r.find_master_id("a\u2028b"), InvalidArgument, id="name-linesep"),
    pytest.param(lambda r, f: r.find_master_id("a\ud800b"), InvalidArgument, id="name-surrogate"),
    # master ids
    pytest.param(lambda r, f: r.set_master_state(True, True), InvalidArgumentType, id="id-bool"),
    pytest.param(lambda r, f: r.set_master_state("1", True), InvalidArgumentType, id="id-str"),
    pytest.param(lambda r, f: r.set_master_state(1.0, True), InvalidArgumentType, id="id-float"),
    pytest.param(lambda r, f: r.set_master_state(None, True), InvalidArgumentType, id="id-none"),
    pytest.param(lambda r, f: r.set_master_state(0, True), InvalidArgument, id="id-zero"),
    pytest.param(lambda r, f: r.set_master_state(-1, True), InvalidArgument, id="id-negative"),
    pytest.param(lambda r, f: r.set_master_state(2**31, True), InvalidArgument, id="id-past-int"),
    pytest.param(lambda r, f: r.set_master_state(HUGE, False), InvalidArgument, id="id-huge"),
    pytest.param(lambda r, f: r.get_master(False), InvalidArgumentType, id="get-id-bool"),
    pytest.param(lambda r, f: r.get_master(-7), InvalidArgument, id="get-id-negative"),
    pytest.param(lambda r, f: r.history(HUGE), InvalidArgument, id="history-id-huge"),
    # the active flag
    pytest.param(lambda r, f: r.set_master_state(f.alpha, 1), InvalidArgumentType, id="active-int"),
    pytest.param(
        lambda r, f: r.set_master_state(f.alpha, None), InvalidArgumentType, id="active-none"
    ),
    pytest.param(
        lambda r, f: r.set_master_state(f.alpha, "false"), InvalidArgumentType, id="active-str"
    ),
    pytest.param(lambda r, f: r.get_masters(active="yes"), InvalidArgumentType, id="filter-str"),
    # ordering and paging
    pytest.param(lambda r, f: r.get_masters(order="name"), InvalidArgumentType, id="order-str"),
    pytest.param(lambda r, f: r.get_masters(order=(1,)), InvalidArgumentType, id="order-int"),
    pytest.param(lambda r, f: r.get_masters(order=("rowid",)), InvalidArgument, id="order-unknown"),
    pytest.param(
        lambda r, f: r.get_masters(order=("name; DROP TABLE masters",)),
        InvalidArgument,
        id="order-injection",
    ),
    pytest.param(lambda r, f: r.get_masters(limit=-1), InvalidArgument, id="limit-negative"),
    pytest.param(lambda r, f: r.get_masters(limit=True), InvalidArgumentType, id="limit-bool"),
    pytest.param(lambda r, f: r.get_masters(limit=HUGE), InvalidArgument, id="limit-huge"),
    pytest.param(lambda r, f: r.get_masters(offset="2"), InvalidArgumentType, id="offset-str"),
    pytest.param(lambda r, f: r.get_masters(offset=HUGE), InvalidArgument, id="offset-huge"),
    # expiry
    pytest.param(lambda r, f: r.expire_masters(timeout=-1), InvalidArgument, id="timeout-negative"),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=math.nan), InvalidArgument, id="timeout-nan"
    ),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=math.inf), InvalidArgument, id="timeout-inf"
    ),
    pytest.param(lambda r, f: r.expire_masters(timeout=10**12), InvalidArgument, id="timeout-huge"),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=True), InvalidArgumentType, id="timeout-bool"
    ),
    pytest.param(
        lambda r, f: r.expire_masters(timeout="600"), InvalidArgumentType, id="timeout-str"
    ),
    pytest.param(lambda r, f: r.expire_masters(timeout=0, by=""), InvalidArgument, id="by-empty"),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=0, by="a\x00"), InvalidArgument, id="by-nul"
    ),
    pytest.param(lambda r, f: r.expire_masters(timeout=0, by=7), InvalidArgumentType, id="by-int"),
    # times and positions
    pytest.param(lambda r, f: r.history(f.alpha, since=NAIVE), InvalidArgument, id="since-naive"),
    pytest.param(lambda r, f: r.history(f.alpha, until=NAIVE), InvalidArgument, id="until-naive"),
    pytest.param(
        lambda r, f: r.history(f.alpha, since="2023-11-14"), InvalidArgumentType, id="since-str"
    ),
    pytest.param(
        lambda r, f: r.history(f.alpha, until=AWARE.date()), InvalidArgumentType, id="until-date"
    ),
    pytest.param(lambda r, f: r.masters_as_of(NAIVE), InvalidArgument, id="as-of-naive"),
    pytest.param(lambda r, f: r.masters_as_of("@3"), InvalidArgumentType, id="as-of-str"),
    pytest.param(lambda r, f: r.masters_as_of(-1), InvalidArgument, id="as-of-negative"),
    pytest.param(lambda r, f: r.masters_as_of(True), InvalidArgumentType, id="as-of-bool"),
    pytest.param(lambda r, f: r.masters_as_of(2.5), InvalidArgumentType, id="as-of-float"),
    pytest.param(lambda r, f: r.masters_as_of(HUGE), InvalidArgument, id="as-of-huge"),
    pytest.param(lambda r, f: list(r.events(after=-1)), InvalidArgument, id="after-negative"),
    pytest.param(lambda r, f: list(r.events(after=HUGE)), InvalidArgument, id="after-huge"),
    pytest.param(lambda r, f: list(r.events(after=None)), InvalidArgumentType, id="after-none"),
    pytest.param(lambda r, f: list(r.events(limit=-5)), InvalidArgument, id="events-limit"),
]

CLOCK_CASES: list[Any] = [
    pytest.param(lambda: math.nan, InvalidArgument, id="nan"),
    pytest.param(lambda: math.inf, InvalidArgument, id="inf"),
    pytest.param(lambda: -1.0, InvalidArgument, id="before-epoch"),
    pytest.param(lambda: "1700000000", InvalidArgumentType, id="str"),
    pytest.param(lambda: None, InvalidArgumentType, id="none"),
    pytest.param(lambda: True, InvalidArgumentType, id="bool"),
    pytest.param(
        lambda: 1e300,
        InvalidArgument,
        id="huge",
    ),
    pytest.param(
        lambda: 2.0**31,
        InvalidArgument,
        id="past-2038",
    ),
]

CLOCKED_CALLS: list[Call] = [
    lambda r, f: r.find_master_id("new:/srv"),
    lambda r, f: r.set_master_state(f.alpha, True),
    lambda r, f: r.set_master_state(f.bravo, True),
    lambda r, f: r.expire_masters(timeout=0),
    lambda r, f: r.set_all_masters_active_long_time_ago(),
]


class TestApiBadInput:
    @pytest.mark.parametrize(("call", "error"), API_CASES)
    def test_is_a_typed_error_and_writes_nothing(
        self, fleet: Fleet, call: Call, error: type[RegistryError]
    ) -> None:
        """The bad argument raises its typed error (also the matching builtin) and leaves
        the log and the view as they were."""
        with unchanged(fleet), pytest.raises(error) as raised:
            call(fleet.registry, fleet)
        assert isinstance(raised.value, RegistryError)
        assert isinstance(raised.value, TypeError | ValueError)

    @pytest.mark.parametrize(("reading", "error"), CLOCK_CASES)
    def test_a_bad_clock_reading_is_a_typed_error_and_writes_nothing(
        self, fleet: Fleet, reading: Callable[[], object], error: type[RegistryError]
    ) -> None:
        """A clock returning something that is not POSIX seconds a view row can hold makes
        every writing command raise a typed error, writing nothing."""
        registry = Registry(fleet.registry.engine, clock=reading, actor="tester")  # type: ignore[arg-type]
        for call in CLOCKED_CALLS:
            with unchanged(fleet), pytest.raises(error):
                call(registry, fleet)

    def test_unknown_master_ids_write_nothing(self, fleet: Fleet) -> None:
        """An id no master has: set_master_state returns False and get_master None, as
        Buildbot's connector does, and nothing is written."""
        registry = fleet.registry
        with unchanged(fleet):
            assert registry.set_master_state(999, True) is False
            assert registry.set_master_state(2**31 - 1, False) is False
            assert registry.get_master(999) is None
            assert registry.history(999) == []

    @pytest.mark.parametrize(
        ("options", "error"),
        [
            pytest.param({"clock": "now"}, InvalidArgumentType, id="clock-str"),
            pytest.param({"actor": 5}, InvalidArgumentType, id="actor-int"),
            pytest.param(
                {"actor": ""},
                InvalidArgument,
                id="actor-empty",
            ),
            pytest.param(
                {"actor": "ops\x00"},
                InvalidArgument,
                id="actor-nul",
            ),
        ],
    )
    def test_bad_registry_options_are_typed_errors(
        self, fleet: Fleet, options: dict[str, Any], error: type[RegistryError]
    ) -> None:
        """A clock that is not callable and an actor that is not a printable name are
        refused when the registry is made."""
        with pytest.raises(error):
            Registry(fleet.registry.engine, **options)


class TestBadDatabaseUrl:
    @pytest.mark.parametrize(
        ("url", "error"),
        [
            pytest.param(None, InvalidArgumentType, id="none"),
            pytest.param(42, InvalidArgumentType, id="int"),
            pytest.param("", InvalidArgument, id="empty"),
            pytest.param("masters.sqlite", InvalidArgument, id="a-path"),
            pytest.param("oracle://scott@db/orcl", InvalidArgument, id="unsupported"),
            pytest.param("postgresql+nosuchdriver://db/x", InvalidArgument, id="no-driver"),
        ],
    )
    def test_an_unusable_url_is_bad_input(self, url: object, error: type[RegistryError]) -> None:
        """A URL that is not one, or names a database mastertrail does not run on, is
        refused when the registry is made."""
        with pytest.raises(error):
            Registry(url)  # type: ignore[arg-type]

    def test_a_database_that_does_not_exist_is_unavailable(
        self, backend: str, servers: dict[str, Server | str], tmp_path: Path
    ) -> None:
        """A URL naming a database that does not exist (a SQLite file in a missing
        directory) raises StoreUnavailable on first use, and creates nothing."""
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/missing/masters.sqlite"
        else:
            server = servers[backend]
            if isinstance(server, str):
                pytest.skip(server)
            url = server.admin_url.set(database=f"missing_{uuid.uuid4().hex[:8]}").render_as_string(
                hide_password=False
            )
        registry = Registry(url)
        with pytest.raises(StoreUnavailable):
            registry.get_masters()
        with pytest.raises(StoreUnavailable):
            registry.find_master_id("alpha:/srv")
        registry.close()
        assert not (tmp_path / "missing").exists()

    @pytest.mark.parametrize("backend", ["postgresql", "mysql"])
    def test_a_server_that_does_not_answer_is_unavailable(self, backend: str) -> None:
        """A URL naming a port where no server listens raises StoreUnavailable."""
        registry = Registry(UNREACHABLE[backend])
        with pytest.raises(StoreUnavailable):
            registry.get_masters()
        registry.close()


OPERATIONS: list[Any] = [
    pytest.param(lambda r: r.find_master_id("alpha:/srv"), id="find_master_id"),
    pytest.param(lambda r: r.set_master_state(1, True), id="set_master_state"),
    pytest.param(lambda r: r.get_master(1), id="get_master"),
    pytest.param(lambda r: r.get_masters(), id="get_masters"),
    pytest.param(lambda r: r.set_all_masters_active_long_time_ago(), id="housekeeping"),
    pytest.param(lambda r: r.expire_masters(), id="expire_masters"),
    pytest.param(lambda r: r.adopt(), id="adopt"),
    pytest.param(lambda r: r.history(1), id="history"),
    pytest.param(lambda r: list(r.events()), id="events"),
    pytest.param(lambda r: r.masters_as_of(1), id="masters_as_of"),
    pytest.param(lambda r: r.rebuild(), id="rebuild"),
    pytest.param(lambda r: r.verify(), id="verify"),
]


class TestDatabaseWithoutTheSchema:
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_every_operation_says_schema_missing(
        self, db_url: str, clock: FakeClock, operation: Callable[[Registry], object]
    ) -> None:
        """On an empty database every operation raises SchemaMissing and creates nothing."""
        registry = Registry(db_url, clock=clock, actor="tester")
        with pytest.raises(SchemaMissing, match="mastertrail upgrade"):
            operation(registry)
        assert sa.inspect(registry.engine).get_table_names() == []
        registry.close()


@pytest.fixture
def newer_schema(registry: Registry) -> Iterator[Registry]:
    """A database whose schema revision is one this mastertrail does not know (a newer
    one's), holding a master; a fresh registry on it."""
    master_id = registry.find_master_id("alpha:/srv")
    registry.set_master_state(master_id, True)
    with registry.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE mastertrail_alembic_version SET version_num = '9999_future'")
    fresh = Registry(registry.engine, actor="tester")
    before = dump(registry.engine)
    yield fresh
    assert dump(registry.engine) == before


class TestNewerSchemaRevision:
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_every_operation_says_schema_too_new(
        self, newer_schema: Registry, operation: Callable[[Registry], object]
    ) -> None:
        """A log written by a newer schema revision is refused by every operation with
        SchemaTooNew, and left as it was."""
        with pytest.raises(SchemaTooNew, match="newer mastertrail"):
            operation(newer_schema)

    def test_upgrade_refuses_to_downgrade(self, newer_schema: Registry) -> None:
        """upgrade on a newer revision raises a typed error instead of touching it."""
        with pytest.raises(RegistryError):
            newer_schema.upgrade()


def append_raw(registry: Registry, master_id: int, type_name: str, schema_version: int) -> None:
    """Append an event this mastertrail cannot read, as a newer one would write it."""
    with registry.engine.begin() as conn:
        version = eventstore.stream_version(conn, master_id)
        eventstore.append(
            conn,
            master_id,
            version,
            [
                NewEvent(
                    event_id=uuid.uuid4(),
                    type=type_name,
                    schema_version=schema_version,
                    data={"last_active": int(T0), "galaxy": "far away"},
                    metadata={"actor": "future", "reason": "heartbeat"},
                    recorded_at=int(T0 * 1_000_000) + 1,
                )
            ],
        )


UNREADABLE: list[Any] = [
    pytest.param("master.teleported", 1, UnknownEventType, id="unknown-type"),
    pytest.param("master.checked_in", 3, UnsupportedSchemaVersion, id="newer-schema-version"),
]


class TestEventsOfANewerVersion:
    @pytest.mark.parametrize(("type_name", "schema_version", "error"), UNREADABLE)
    def test_folding_them_is_a_typed_error(
        self,
        registry: Registry,
        type_name: str,
        schema_version: int,
        error: type[RegistryError],
    ) -> None:
        """An event of a type or schema version this mastertrail cannot read makes every
        operation that folds it (rebuild, verify, masters_as_of) raise its typed error,
        leaves the tables as they were, and the raw reads still work."""
        master_id = registry.find_master_id("alpha:/srv")
        registry.set_master_state(master_id, True)
        append_raw(registry, master_id, type_name, schema_version)
        before = dump(registry.engine)
        for operation in (registry.rebuild, registry.verify, lambda: registry.masters_as_of(3)):
            with pytest.raises(error):
                operation()
        assert registry.masters_as_of(2)[0].active
        assert [e.type for e in registry.history(master_id)][-1] == type_name
        assert len(list(registry.events())) == 3
        assert [m.id for m in registry.get_masters()] == [master_id]
        assert dump(registry.engine) == before


# -- the command line ------------------------------------------------------------------------


def invoke(fleet: Fleet, *args: str) -> Result:
    """``mastertrail ARGS`` in-process on the fleet's clock."""
    return CliRunner().invoke(cli, list(args), obj=Runtime(clock=fleet.clock))


def assert_one_line_exit_2(result: Result) -> None:
    """Exit status 2 with one line on stderr and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output


CLI_CASES: list[Any] = [
    pytest.param(("masters", "--as-of", "last tuesday"), id="when-words"),
    pytest.param(("masters", "--as-of", "@-1"), id="when-negative-position"),
    pytest.param(("masters", "--as-of", "@x"), id="when-bad-position"),
    pytest.param(("masters", "--as-of", "2024-13-45T00:00"), id="when-bad-date"),
    pytest.param(("masters", "--as-of", f"@{HUGE}"), id="when-huge-position"),
    pytest.param(("masters", "--as-of", "99999999d ago"), id="when-before-epoch"),
    pytest.param(("history", "nosuch:/srv"), id="history-unknown-name"),
    pytest.param(("history", ""), id="history-empty-name"),
    pytest.param(("history", "alpha:/srv\x00"), id="history-nul"),
    pytest.param(("history", "0"), id="history-id-zero"),
    pytest.param(("history", str(HUGE)), id="history-id-huge"),
    pytest.param(
        ("history", "\u00b2"),
        id="history-superscript-digit",
    ),
    pytest.param(("history", "alpha:/srv", "--since", "soon"), id="history-bad-since"),
    pytest.param(("log", "--after", "-1"), id="log-after-negative"),
    pytest.param(("log", "--after", "abc"), id="log-after-text"),
    pytest.param(("log", "--after", str(HUGE)), id="log-after-huge"),
    pytest.param(("log", "--limit", "0"), id="log-limit-zero"),
    pytest.param(("expire", "--timeout", "-5"), id="expire-negative"),
    pytest.param(("expire", "--timeout", "ten"), id="expire-text"),
    pytest.param(("expire", "--timeout", str(10**12)), id="expire-huge"),
    pytest.param(
        ("--actor", "", "expire", "--timeout", "0", "--force"),
        id="actor-empty",
    ),
    pytest.param(
        ("--actor", "ops\x00", "expire", "--timeout", "0", "--force"),
        id="actor-nul",
    ),
    pytest.param(("timeline", "--out", "picture.txt"), id="timeline-bad-suffix"),
    pytest.param(("replay", "--until", "whenever", "--into", "sqlite://"), id="replay-bad-until"),
    pytest.param(("masters", "--no-such-option"), id="unknown-option"),
    pytest.param(("no-such-command",), id="unknown-command"),
]


class TestCliBadInput:
    @pytest.mark.parametrize("args", CLI_CASES)
    def test_is_one_line_and_exit_2(self, fleet: Fleet, args: tuple[str, ...]) -> None:
        """The bad argument ends the command with one line on stderr and status 2, and
        leaves the log and the view as they were."""
        with unchanged(fleet):
            assert_one_line_exit_2(invoke(fleet, "--db", fleet.url, *args))

    def test_replay_into_itself_is_refused(self, fleet: Fleet) -> None:
        """replay --into the very database it reads is bad input."""
        with unchanged(fleet):
            result = invoke(
                fleet, "--db", fleet.url, "replay", "--until", "@2", "--into", fleet.url
            )
            assert_one_line_exit_2(result)

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("nonsense", id="not-a-url"),
            pytest.param("oracle://scott@db/orcl", id="unsupported"),
            pytest.param("sqlite:///{tmp}/missing.sqlite", id="sqlite-missing-file"),
            pytest.param("sqlite:///{tmp}/no/such/dir.sqlite", id="sqlite-missing-dir"),
            pytest.param(UNREACHABLE["postgresql"], id="postgresql-unreachable"),
            pytest.param(UNREACHABLE["mysql"], id="mysql-unreachable"),
            pytest.param("postgresql+psycopg://root@127.0.0.1:5432/{missing}", id="pg-no-db"),
            pytest.param("mysql+pymysql://root@127.0.0.1:3306/{missing}", id="mysql-no-db"),
        ],
    )
    def test_an_unusable_database_is_one_line_and_exit_2(
        self, url: str, tmp_path: Path, clock: FakeClock, servers: dict[str, Server | str]
    ) -> None:
        """--db naming no usable database ends every command with one line and status 2,
        creating nothing."""
        for backend in ("postgresql", "mysql"):
            if url.startswith(backend) and isinstance(servers[backend], str):
                pytest.skip(str(servers[backend]))
        url = url.format(tmp=tmp_path, missing=f"missing_{uuid.uuid4().hex[:8]}")
        for command in (["masters"], ["log"], ["verify"], ["expire"]):
            result = CliRunner().invoke(cli, ["--db", url, *command], obj=Runtime(clock=clock))
            assert_one_line_exit_2(result)
        assert list(tmp_path.iterdir()) == []

    def test_a_database_without_the_schema_is_one_line_and_exit_2(
        self, db_url: str, clock: FakeClock
    ) -> None:
        """--db naming a database with no mastertrail schema says to run upgrade, with
        status 2, and creates nothing."""
        for command in (["masters"], ["history", "1"], ["log"], ["verify"], ["rebuild"]):
            result = CliRunner().invoke(cli, ["--db", db_url, *command], obj=Runtime(clock=clock))
            assert_one_line_exit_2(result)
            assert "upgrade" in result.stderr
        engine = sa.create_engine(db_url)
        assert sa.inspect(engine).get_table_names() == []
        engine.dispose()

    def test_a_newer_schema_is_one_line_and_exit_2(
        self, newer_schema: Registry, db_url: str, clock: FakeClock
    ) -> None:
        """--db naming a database of a newer schema revision ends with status 2 and one
        line, and leaves it as it was."""
        for command in (["masters"], ["log"], ["verify"], ["rebuild"], ["expire"], ["upgrade"]):
            result = CliRunner().invoke(cli, ["--db", db_url, *command], obj=Runtime(clock=clock))
            assert_one_line_exit_2(result)


# -- the Buildbot component ------------------------------------------------------------------

buildbot = pytest.importorskip("buildbot")

from buildbot.db import masters as buildbot_masters  # noqa: E402
from buildbot.test.fake import fakemaster  # noqa: E402
from buildbot.test.reactor import TestReactorMixin  # noqa: E402
from twisted.internet import defer  # noqa: E402
from twisted.python import failure  # noqa: E402
from twisted.trial import unittest  # noqa: E402

import mastertrail.buildbot  # noqa: E402

COMPONENT_CASES: list[tuple[str, Callable[[Any, int], Any], type[Exception]]] = [
    ("name None", lambda c, i: c.findMasterId(None), InvalidArgumentType),
    ("name bytes", lambda c, i: c.findMasterId(b"some:master"), InvalidArgumentType),
    ("name empty", lambda c, i: c.findMasterId(""), InvalidArgument),
    ("name NUL", lambda c, i: c.findMasterId("some:\x00master"), InvalidArgument),
    ("name newline", lambda c, i: c.findMasterId("some:\nmaster"), InvalidArgument),
    ("name huge", lambda c, i: c.findMasterId("m" * 100_000), InvalidArgument),
    ("id bool", lambda c, i: c.setMasterState(True, True), InvalidArgumentType),
    ("id str", lambda c, i: c.setMasterState(str(i), True), InvalidArgumentType),
    ("id negative", lambda c, i: c.setMasterState(-i, True), InvalidArgument),
    ("id huge", lambda c, i: c.setMasterState(2**63, True), InvalidArgument),
    ("active str", lambda c, i: c.setMasterState(i, "yes"), InvalidArgumentType),
    ("active None", lambda c, i: c.setMasterState(i, None), InvalidArgumentType),
    ("getMaster float", lambda c, i: c.getMaster(float(i)), InvalidArgumentType),
    ("getMaster zero", lambda c, i: c.getMaster(0), InvalidArgument),
]


@pytest.fixture(autouse=True)
def _buildbot_database(
    request: pytest.FixtureRequest, servers: dict[str, Server | str], tmp_path: Path
) -> None:
    """Give a component test case a fresh database URL for its backend."""
    case = request.instance
    if not isinstance(case, ComponentBadInput):
        return
    if case.backend == "sqlite":
        case.db_url = f"sqlite:///{tmp_path}/state.sqlite"
        return
    server = servers[case.backend]
    if isinstance(server, str):
        pytest.skip(server)
    server.reset()
    case.db_url = server.url


class ComponentBadInput(TestReactorMixin):
    """The Buildbot component, in a fake master with a real database, given bad input."""

    backend = "sqlite"
    db_url = ""

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.reactor.advance(T0)
        self.patch(
            buildbot_masters,
            "MastersConnectorComponent",
            mastertrail.buildbot.MastersConnectorComponent,
        )
        self.master = yield fakemaster.make_master(self, wantDb=True, db_url=self.db_url)

    @defer.inlineCallbacks
    def test_each_bad_call_fails_with_a_typed_error_and_writes_nothing(self) -> Any:
        """Every bad argument fails the Deferred with its typed error (a RegistryError and
        the matching builtin) and leaves the log and masters table as they were; an
        unknown id is False, writing nothing."""
        component = self.master.db.masters
        master_id = yield component.findMasterId("some:master")
        yield component.setMasterState(master_id, True)
        engine = component._registry.engine
        before = dump(engine)
        for description, call, error in COMPONENT_CASES:
            outcome = yield defer.maybeDeferred(call, component, master_id).addBoth(
                lambda result: result.value if isinstance(result, failure.Failure) else result
            )
            assert isinstance(outcome, error), (description, outcome)
            assert isinstance(outcome, RegistryError), description
            assert dump(engine) == before, description
        assert (yield component.setMasterState(999, True)) is False
        assert (yield component.getMaster(999)) is None
        assert dump(engine) == before
        # Buildbot's DB pool also logs each error it hands back ("Got fatal Exception on DB").
        self.flushLoggedErrors(RegistryError)


class TestComponentBadInputSQLite(ComponentBadInput, unittest.TestCase):
    backend = "sqlite"


class TestComponentBadInputPostgreSQL(ComponentBadInput, unittest.TestCase):
    backend = "postgresql"


class TestComponentBadInputMariaDB(ComponentBadInput, unittest.TestCase):
    backend = "mysql"
