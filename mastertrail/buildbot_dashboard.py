"""The mastertrail page inside a buildmaster's web UI, through Buildbot's
``buildbot-wsgi-dashboards`` plugin (``pip install 'mastertrail[buildbot]'``)::

    c['www']['plugins']['wsgi_dashboards'] = [mastertrail.buildbot.dashboard()]

The application reads the buildmaster's own database (its ``db_url``) with an engine of
its own, in the web server's threads, and answers only users whom the www's
authorization lets read the masters (Buildbot's data API endpoint ``masters``).
"""

from __future__ import annotations

import threading
from typing import Any

import flask

from mastertrail.registry import Registry
from mastertrail.web.app import build_app

NAME = "mastertrail"
CAPTION = "Masters trail"
SESSION_COOKIES = ("TWISTED_SESSION", "TWISTED_SECURE_SESSION")


def dashboard(
    *,
    db_url: str | None = None,
    name: str = NAME,
    caption: str = CAPTION,
    order: int = 20,
    icon: str = "share-alt",
) -> dict[str, Any]:
    """The entry of ``c['www']['plugins']['wsgi_dashboards']``: the page at
    ``/plugins/wsgi_dashboards/<name>/index.html``, in Buildbot's menu as ``caption``.
    ``db_url`` defaults to the buildmaster's own database."""
    lock = threading.Lock()
    opened: list[Registry] = []

    def registry() -> Registry:
        with lock:
            if not opened:
                url = db_url or _master_db_url(app)
                opened.append(Registry(url, actor=f"{name}-dashboard"))
            return opened[0]

    app = build_app(registry)

    @app.before_request
    def authorize() -> flask.Response | None:
        api = getattr(app, "buildbot_api", None)
        if api is None:  # not (yet) hosted by a buildmaster: nothing to ask
            return None
        if not _allowed(api, flask.request.cookies):
            return flask.Response("forbidden by the www's authorization\n", status=403)
        return None

    return {"name": name, "caption": caption, "app": app, "order": order, "icon": icon}


def _master_db_url(app: flask.Flask) -> str:
    db = app.buildbot_api.master.config.db  # type: ignore[attr-defined]
    return str(db["db_url"] if isinstance(db, dict) else db.db_url)  # a DBConfig since 4.0


def _allowed(api: Any, cookies: Any) -> bool:
    """Whether the user of the request's Buildbot session may read the masters."""
    from buildbot.www import auth
    from buildbot.www.authz import Forbidden
    from twisted.internet import reactor
    from twisted.internet.threads import blockingCallFromThread

    www = api.master.www
    authz = getattr(www, "authz", None) or www.master.config.www.get("authz")
    if authz is None:
        return True
    user_info = auth.build_anonymous_user_info()
    for cookie, token in cookies.items():
        if cookie.startswith(SESSION_COOKIES):
            try:
                user_info = auth.parse_user_info_from_token(token, www.site.session_secret)
            except KeyError:
                continue
            break
    try:
        blockingCallFromThread(reactor, authz.assertUserAllowed, ("masters",), "get", {}, user_info)
    except Forbidden:
        return False
    return True


__all__ = ["CAPTION", "NAME", "dashboard"]
