"""Database URLs as a Buildbot ``master.cfg`` writes its ``db_url``: parsed as Buildbot 4.3
parses them (``buildbot/db/enginestrategy.py``), and used through the CLI on the real
servers."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import eventstore
from eventstore.errors import InvalidArgument
from eventstore.urls import parse_db_url
from tests.cli_support import Invoke, assert_failed_cleanly, json_lines, make_invoke
from tests.conftest import FakeClock


@pytest.fixture
def invoke(clock: FakeClock) -> Invoke:
    """``mastertrail ARGS`` in-process on the injected clock."""
    return make_invoke(clock)


def buildbot_form(db_url: str, drivername: str, query: str) -> str:
    """The test database's URL with Buildbot's driver-less scheme and ``query``."""
    url = sa.make_url(db_url).set(drivername=drivername)
    return url.render_as_string(hide_password=False) + query


class TestParseDbUrl:
    def test_basedir_is_substituted_and_serialize_access_dropped(self) -> None:
        """%(basedir)s in a SQLite path is the base directory; serialize_access is Buildbot's."""
        parsed = parse_db_url("sqlite:///%(basedir)s/state.sqlite?serialize_access=1", basedir="/m")
        assert parsed.url.database == "/m/state.sqlite"
        assert dict(parsed.url.query) == {}

    def test_basedir_defaults_to_the_current_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a base directory, %(basedir)s is where the command runs."""
        monkeypatch.chdir(tmp_path)
        assert parse_db_url("sqlite:///%(basedir)s/s.sqlite").url.database == f"{tmp_path}/s.sqlite"

    @pytest.mark.parametrize(
        ("url", "driver"),
        [
            ("mysql://u@h/db", "mysql+pymysql"),
            ("mariadb://u@h/db", "mariadb+pymysql"),
            ("postgresql://u@h/db", "postgresql+psycopg"),
            ("mysql+pymysql://u@h/db", "mysql+pymysql"),
        ],
    )
    def test_a_url_without_a_driver_gets_the_installed_one(self, url: str, driver: str) -> None:
        """Buildbot's driver-less schemes use the drivers mastertrail's extras install."""
        assert parse_db_url(url).url.drivername == driver

    def test_buildbot_mysql_options(self) -> None:
        """max_idle becomes pool_recycle; storage_engine, charset=utf8 are taken off the URL."""
        parsed = parse_db_url(
            "mysql://u@h/db?max_idle=300&storage_engine=InnoDB&use_unicode=True&charset=utf8"
            "&ssl_check_hostname=false"
        )
        assert parsed.pool_recycle == 300
        assert dict(parsed.url.query) == {"use_unicode": "True", "ssl_check_hostname": "false"}
        assert parse_db_url("mysql://u@h/db").pool_recycle == 3600

    @pytest.mark.parametrize(
        "query",
        [
            "max_idle=soon",
            "storage_engine=In%20noDB",
            "use_unicode=False",
            "charset=latin1",
            "max_idle=1&max_idle=2",
        ],
    )
    def test_what_buildbot_refuses_is_bad_input(self, query: str) -> None:
        """Options Buildbot's engine strategy would refuse raise InvalidArgument."""
        with pytest.raises(InvalidArgument):
            parse_db_url(f"mysql://u:secret@h/db?{query}")

    def test_a_stray_percent_in_a_path_is_bad_input(self) -> None:
        """A '%' other than %(basedir)s or %% cannot be substituted, as in Buildbot."""
        with pytest.raises(InvalidArgument, match="basedir"):
            parse_db_url("sqlite:///%(home)s/state.sqlite")

    def test_an_explicit_driver_that_is_missing_names_that_driver(self) -> None:
        """mysql+mysqldb without MySQLdb does not send the operator to the wrong extra."""
        with pytest.raises(InvalidArgument, match="'mysqldb'") as error:
            eventstore.create_engine("mysql+mysqldb://u@h/db")
        assert "mastertrail[mysql]" not in str(error.value)


class TestBuildbotUrlsThroughTheCli:
    @pytest.mark.parametrize("backend", ["mysql"])
    @pytest.mark.parametrize(
        ("drivername", "query"),
        [
            ("mysql", ""),
            ("mysql", "?storage_engine=InnoDB"),
            ("mysql", "?max_idle=300"),
            ("mysql", "?max_idle=300&storage_engine=InnoDB&use_unicode=True&charset=utf8"),
            ("mariadb", ""),
        ],
    )
    def test_mysql_forms_on_the_real_server(
        self, db_url: str, invoke: Invoke, drivername: str, query: str
    ) -> None:
        """A master.cfg's MySQL db_url works as --db: upgrade, a write and a read."""
        url = buildbot_form(db_url, drivername, query)
        for args in (["upgrade"], ["expire"], ["masters", "--json"]):
            result = invoke("--db", url, *args)
            assert result.exit_code == 0, result.output
        assert json_lines(result) == []

    @pytest.mark.parametrize("backend", ["postgresql"])
    def test_postgresql_form_on_the_real_server(self, db_url: str, invoke: Invoke) -> None:
        """postgresql:// without a driver, as Buildbot's docs write it, works as --db."""
        url = buildbot_form(db_url, "postgresql", "")
        assert invoke("--db", url, "upgrade").exit_code == 0
        result = invoke("--db", url, "masters", "--json")
        assert result.exit_code == 0, result.output

    def test_sqlite_basedir_form(
        self, tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """sqlite:///%(basedir)s/state.sqlite?serialize_access=1 names state.sqlite here."""
        monkeypatch.chdir(tmp_path)
        url = "sqlite:///%(basedir)s/state.sqlite?serialize_access=1"
        assert invoke("--db", url, "upgrade").exit_code == 0
        assert (tmp_path / "state.sqlite").is_file()
        assert invoke("--db", url, "masters", "--json").exit_code == 0

    def test_max_idle_that_is_no_number_exits_two(self, invoke: Invoke) -> None:
        """A max_idle Buildbot could not read is one line and exit 2, not a traceback."""
        line = assert_failed_cleanly(
            invoke("--db", "mysql://root@127.0.0.1:1/x?max_idle=soon", "masters"), 2
        )
        assert "max_idle must be a whole number" in line
