"""``mastertrail serve``: where it listens, what it serves, and its bad input."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mastertrail import Registry
from mastertrail.cli import Runtime, cli
from mastertrail.cli import serve as serve_module
from mastertrail.cli.serve import parse_listen


class FakeServer:
    """Records what serve asked for, and answers one request through the real app."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        self.host, self.port, self.app = host, port, app
        self.closed = False

    def serve_forever(self) -> None:
        response = self.app.test_client().get("/api/masters")
        assert response.status_code == 200
        raise KeyboardInterrupt  # as Ctrl-C does

    def server_close(self) -> None:
        self.closed = True


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/serve.sqlite"
    registry = Registry(url)
    registry.upgrade()
    registry.close()
    return url


class TestServe:
    def test_listens_on_localhost_by_default(
        self, database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --listen it binds 127.0.0.1:8020, serves the app, and stops on Ctrl-C."""
        made: list[FakeServer] = []

        def fake(host: str, port: int, app: Any) -> FakeServer:
            made.append(FakeServer(host, port, app))
            return made[-1]

        monkeypatch.setattr(serve_module, "make_server", fake)
        result = CliRunner().invoke(cli, ["--db", database, "serve"], obj=Runtime())
        assert result.exit_code == 0, result.output
        assert (made[0].host, made[0].port, made[0].closed) == ("127.0.0.1", 8020, True)
        assert "serving http://127.0.0.1:8020/" in result.output

    def test_listen_elsewhere_when_told(
        self, database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--listen HOST:PORT chooses the address, IPv6 in brackets."""
        made: list[FakeServer] = []
        monkeypatch.setattr(
            serve_module,
            "make_server",
            lambda h, p, a: made.append(FakeServer(h, p, a)) or made[-1],
        )
        runner = CliRunner()
        assert (
            runner.invoke(cli, ["--db", database, "serve", "--listen", "[::1]:9000"]).exit_code == 0
        )
        assert (made[0].host, made[0].port) == ("::1", 9000)

    @pytest.mark.parametrize("listen", ["8020", "host:", ":80", "h:99999", "h:\uff18\uff10"])
    def test_bad_listen_is_bad_input(self, listen: str) -> None:
        """An address that is not HOST:PORT is refused."""
        with pytest.raises(Exception, match="is not HOST:PORT"):
            parse_listen(listen)

    def test_a_port_in_use_is_one_line(self, database: str) -> None:
        """A port that cannot be bound ends with exit 2 and one line."""
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = CliRunner().invoke(
                cli, ["--db", database, "serve", "--listen", f"127.0.0.1:{port}"]
            )
        assert result.exit_code == 2
        assert "cannot listen on" in result.output

    def test_serves_for_real(self, database: str) -> None:
        """The real server answers /metrics over HTTP."""
        from mastertrail.web import create_app
        from tests.browser_support import serving

        registry = Registry(database)
        with serving(create_app(registry)) as url, urllib.request.urlopen(f"{url}/metrics") as r:
            assert b"mastertrail_log_position 0.0" in r.read()
        registry.close()
