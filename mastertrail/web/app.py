"""The Flask application: the page, the JSON API, the timeline and ``/metrics``. Every
route only reads; the registry is shared by the requests (SQLAlchemy's pool)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import flask

from eventstore import RegistryError
from mastertrail.registry import Registry
from mastertrail.timeline import build_timeline
from mastertrail.timeline_svg import render_svg
from mastertrail.trail import trail_rows
from mastertrail.web.fleet import assemble, read_fleet
from mastertrail.web.metrics import exposition
from mastertrail.when import SPELLINGS, parse_when
from projections.model import MasterModel

#: The window of the page's timeline when none is asked for.
DEFAULT_WINDOW = dt.timedelta(hours=24)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

#: Standalone, the page needs nothing from elsewhere; inside Buildbot it is Buildbot's page.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(registry: Registry) -> flask.Flask:
    """The read-only web application over ``registry``."""
    return build_app(lambda: registry)


def build_app(source: Callable[[], Registry]) -> flask.Flask:
    """The application over the registry ``source()`` returns at each request (a dashboard
    opens its registry on the first request, when its buildmaster is known)."""
    app = flask.Flask(__name__)

    @app.after_request
    def secure(response: flask.Response) -> flask.Response:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    @app.route("/")
    @app.route("/index.html")
    def index() -> flask.Response:
        return _page(source())

    @app.route("/metrics")
    def metrics() -> flask.Response:
        body = exposition(read_fleet(source()))
        return flask.Response(body, content_type=PROMETHEUS_TEXT)

    @app.route("/api/masters")
    def api_masters() -> flask.Response:
        registry = source()
        as_of = flask.request.args.get("as_of", "").strip()
        if as_of:
            try:
                found = registry.masters_as_of(parse_when(as_of, now=_now(registry)))
            except (ValueError, RegistryError):
                return _json({"error": f"as_of must be {SPELLINGS}"}, status=400)
        else:
            found = registry.get_masters()
        return _json([_master_json(master) for master in found])

    @app.route("/api/masters/<int:master_id>/history")
    def api_history(master_id: int) -> flask.Response:
        events = source().history(master_id)
        if not events:
            return _json({"error": f"no master has id {master_id}"}, status=404)
        return _json([event.to_json() for event in events])

    @app.route("/timeline.svg")
    def timeline_svg() -> flask.Response:
        title = flask.request.args.get("title") or None
        return flask.Response(_timeline(source(), title), content_type="image/svg+xml")

    return app


def _page(registry: Registry) -> flask.Response:
    args = flask.request.args
    now = _now(registry)
    fleet = read_fleet(registry)
    as_of_text = args.get("as_of", "").strip()
    as_of_rows, as_of_error = None, None
    if as_of_text:
        try:
            when = parse_when(as_of_text, now=now)
            past = registry.masters_as_of(when)
            when_at = when if isinstance(when, dt.datetime) else now
            as_of_rows = assemble(past, {}, now=when_at, position=0, verification=None).rows
        except (ValueError, RegistryError):
            as_of_error = f"{as_of_text!r} is not a moment: use {SPELLINGS}."
    names = {row.master.name for row in fleet.rows}
    chosen, trail = None, None
    master_arg = args.get("master", "")
    if master_arg.isascii() and master_arg.isdigit():
        chosen = next((r.master for r in fleet.rows if r.master.id == int(master_arg)), None)
        if chosen is not None:
            trail = trail_rows(registry.history(chosen.id), chosen.name, names)
    html = flask.render_template(
        "index.html",
        fleet=fleet,
        as_of=as_of_text,
        as_of_rows=as_of_rows,
        as_of_error=as_of_error,
        chosen=chosen,
        trail=trail,
        timeline=_timeline(registry, None),
        spellings=SPELLINGS,
    )
    return flask.Response(html, status=400 if as_of_error else 200)


def _timeline(registry: Registry, title: str | None) -> str:
    """The last 24 hours, or the whole log when it is younger: read from the fleet as it
    stood at the window's start and the events since, never the older log."""
    now = _now(registry)
    since = now - DEFAULT_WINDOW
    first = next(registry.events(limit=1), None)
    if first is not None and first.recorded_at > since:
        since = first.recorded_at
    position = registry.position_at(since - dt.timedelta(microseconds=1))  # before it
    before = registry.masters_as_of(position) if position else []
    picture = build_timeline(registry.events(after=position), since=since, until=now, fleet=before)
    return render_svg(picture, title=title)


def _now(registry: Registry) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(registry.clock()), dt.UTC)


def _master_json(master: MasterModel) -> dict[str, Any]:
    from mastertrail.cli.render import master_json

    return master_json(master)


def _json(value: Any, *, status: int = 200) -> flask.Response:
    """JSON whose ``<``, ``>`` and ``&`` are escaped (``\\u003c``...), so no text of the
    database can read as markup even where the JSON is embedded or sniffed."""
    text = json.dumps(value, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return flask.Response(text, status=status, content_type="application/json")


__all__ = ["build_app", "create_app"]
