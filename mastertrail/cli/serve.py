"""``mastertrail serve``: the page, the JSON API and ``/metrics`` on a local web server."""

from __future__ import annotations

from typing import Any

import click

from mastertrail.cli.app import Runtime, cli

DEFAULT_LISTEN = "127.0.0.1:8020"

pass_runtime = click.make_pass_decorator(Runtime)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8020`` for an IPv6 address) as a host and a port."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--listen")
    return host, int(port)


def make_server(host: str, port: int, app: Any) -> Any:
    """A threaded WSGI server for ``app`` (werkzeug's, which Flask brings)."""
    from werkzeug.serving import make_server as werkzeug_server

    return werkzeug_server(host, port, app, threaded=True)


@cli.command()
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen; only this machine by default.",
)
@pass_runtime
def serve(runtime: Runtime, listen: str) -> None:
    """Serve the web page, the JSON API (/api/masters) and Prometheus metrics (/metrics)
    of the database, read-only, until interrupted."""
    host, port = parse_listen(listen)
    try:
        from mastertrail.web import create_app
    except ImportError as error:
        raise click.UsageError(
            f"serve needs the web extra: pip install 'mastertrail[web]' ({error})"
        ) from error
    registry = runtime.registry()
    registry.get_masters()  # a database without a schema fails here, not at the first request
    try:
        server = make_server(host, port, create_app(registry))
    except OSError as error:
        raise click.UsageError(f"cannot listen on {listen}: {error.strerror or error}") from error
    except SystemExit as error:  # werkzeug reports a port in use and exits
        raise click.UsageError(f"cannot listen on {listen}: the address is in use") from error
    output = runtime.output()
    output.say(f"serving http://{listen}/ (metrics at /metrics); Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["DEFAULT_LISTEN", "parse_listen", "serve"]
