"""A real buildmaster serving the mastertrail page through Buildbot's own web server
(``buildbot-wsgi-dashboards``), and the trail of a master killed and restarted."""

from __future__ import annotations

import os
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mastertrail import Registry
from mastertrail.web import create_app
from tests.browser_support import dump_dom, need_chromium, screenshot
from tests.test_buildbot_real import (
    MASTER_CFG,
    create_master,
    master_name,
    masters_started,  # noqa: F401 (a fixture)
    start,
    stop,
    wait_until,
)
from tests.test_web_browser import Page

pytest.importorskip("buildbot_wsgi_dashboards")
pytestmark = pytest.mark.slow

WWW = """
import mastertrail.buildbot
c['www'] = {{
    'port': 'tcp:{port}:interface=127.0.0.1',
    'plugins': {{'wsgi_dashboards': [mastertrail.buildbot.dashboard()]}},
}}
"""


LOCKED = """
from buildbot.plugins import util
c['www']['auth'] = util.UserPasswordAuth({'admin': 'secret'})
c['www']['authz'] = util.Authz(
    allowRules=[util.AnyEndpointMatcher(role='admins', defaultDeny=True)],
    roleMatchers=[util.RolesFromUsername(roles=['admins'], usernames=['admin'])],
)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def with_dashboard(basedir: Path, db_url: str, extra: str = "") -> str:
    """Add the www with the dashboard to the master's configuration; its base URL."""
    port = free_port()
    config = MASTER_CFG.format(db_url=db_url) + WWW.format(port=port) + extra
    (basedir / "master.cfg").write_text(config)
    return f"http://127.0.0.1:{port}"


class TestDashboardInBuildbot:
    def test_the_page_through_buildbots_www(
        self,
        tmp_path: Path,
        masters_started: list[Path],  # noqa: F811
    ) -> None:
        """Buildbot's web server serves the page and /metrics of its own database under
        /plugins/wsgi_dashboards/mastertrail/, and lists the dashboard in its config; a
        clean `buildbot stop` reads as a clean stop."""
        db_url = f"sqlite:///{tmp_path}/state.sqlite"
        basedir = create_master(tmp_path / "master", db_url)
        base = with_dashboard(basedir, db_url)
        masters_started.append(basedir)
        start(basedir)
        name = master_name(basedir)
        status, page = fetch(f"{base}/plugins/wsgi_dashboards/mastertrail/index.html")
        assert status == 200, page
        assert name in page
        assert 'class="mt-state">active<' in page
        status, metrics = fetch(f"{base}/plugins/wsgi_dashboards/mastertrail/metrics")
        assert status == 200
        assert f'mastertrail_master_active{{master="{name}"}} 1.0' in metrics
        status, config = fetch(f"{base}/config")
        assert "Masters trail" in config
        # In a browser: Buildbot's own UI shows the entry and the page inside it.
        need_chromium()
        ui = Page(dump_dom(tmp_path / "profile", f"{base}/#/mastertrail"))
        assert "Masters trail" in ui.visible
        assert [row[:2] for row in ui.rows["fleet"][1:]] == [[f"{name} #1", "active"]]
        screenshot(
            tmp_path / "profile-shot",
            f"{base}/#/mastertrail",
            tmp_path / "mastertrail-in-buildbot.png",
            width=1280,
            height=800,
        )
        stop(basedir)
        registry = Registry(db_url)
        (master,) = registry.get_masters()
        page = create_app(registry).test_client().get(f"/?master={master.id}").get_data(True)
        assert "deactivated: stopped cleanly" in page
        registry.close()

    def test_follows_the_www_authorization(
        self,
        tmp_path: Path,
        masters_started: list[Path],  # noqa: F811
    ) -> None:
        """Where the www's authz lets only admins read, an anonymous visitor gets a 403
        from the page and from /metrics, as from Buildbot's own masters endpoint."""
        db_url = f"sqlite:///{tmp_path}/state.sqlite"
        basedir = create_master(tmp_path / "master", db_url)
        base = with_dashboard(basedir, db_url, LOCKED)
        masters_started.append(basedir)
        start(basedir)
        assert fetch(f"{base}/api/v2/masters")[0] == 403
        for path in ("index.html", "metrics", "api/masters"):
            status, body = fetch(f"{base}/plugins/wsgi_dashboards/mastertrail/{path}")
            assert status == 403, body
            assert master_name(basedir) not in body
        stop(basedir)

    def test_a_killed_master_is_found_dead_at_restart(
        self,
        tmp_path: Path,
        masters_started: list[Path],  # noqa: F811
    ) -> None:
        """After kill -9 and a restart, the trail says the master was found dead, not
        stopped cleanly, and the page says so."""
        db_url = f"sqlite:///{tmp_path}/state.sqlite"
        basedir = create_master(tmp_path / "master", db_url)
        base = with_dashboard(basedir, db_url)
        masters_started.append(basedir)
        start(basedir)
        os.kill(int((basedir / "twistd.pid").read_text()), signal.SIGKILL)
        wait_until(lambda: not (basedir / "twistd.pid").exists() or not _alive(basedir))
        (basedir / "twistd.pid").unlink(missing_ok=True)
        start(basedir)
        registry = Registry(db_url)
        (master,) = registry.get_masters()
        kinds = [e.type for e in registry.history(master.id)]
        found = len(kinds) - 1 - kinds[::-1].index("master.deactivated")
        assert kinds[found : found + 2] == ["master.deactivated", "master.activated"], kinds
        status, page = fetch(
            f"{base}/plugins/wsgi_dashboards/mastertrail/index.html?master={master.id}"
        )
        assert status == 200
        assert "deactivated: found dead at restart after" in page
        registry.close()
        stop(basedir)


def _alive(basedir: Path) -> bool:
    try:
        os.kill(int((basedir / "twistd.pid").read_text()), 0)
    except (ProcessLookupError, FileNotFoundError, ValueError):
        return False
    return True
