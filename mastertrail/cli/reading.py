"""Commands that read: ``masters``, ``history``, ``log`` and ``timeline``."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path

import click

from eventstore import RecordedEvent
from mastertrail.cli.app import WHEN, Runtime, cli, json_option
from mastertrail.cli.render import ProgressCallback
from mastertrail.registry import Registry
from mastertrail.trail import trail_rows
from mastertrail.when import When

pass_runtime = click.make_pass_decorator(Runtime)

#: The longest pause between two polls of ``log --follow``: a day.
MAX_INTERVAL = 86_400.0


@cli.command()
@click.option("--active", is_flag=True, help="Only the active masters.")
@click.option("--as-of", "as_of", type=WHEN, help="The masters as they stood at WHEN.")
@json_option
@pass_runtime
def masters(runtime: Runtime, active: bool, as_of: When | None, json_flag: bool) -> None:
    """The masters: now, or as of a past moment."""
    registry = runtime.registry()
    if as_of is None:
        found = registry.get_masters(active=True if active else None)
        title = "masters"
    else:
        found = [m for m in registry.masters_as_of(as_of) if m.active or not active]
        title = f"masters as of {_describe(as_of)}"
    runtime.output(json_flag).masters(found, title=title)


@cli.command()
@click.argument("master")
@click.option("--since", type=WHEN, help="Events recorded at or after WHEN.")
@click.option("--until", type=WHEN, help="Events recorded at or before WHEN.")
@click.option(
    "--compact/--full",
    default=None,
    help="Fold runs of check-ins into one row and read each stop (the table's default), or "
    "show every event with all its fields (the default of --json).",
)
@json_option
@pass_runtime
def history(
    runtime: Runtime,
    master: str,
    since: When | None,
    until: When | None,
    compact: bool | None,
    json_flag: bool,
) -> None:
    """The audit trail of MASTER (a name or an id): every event of its stream.

    The table folds runs of check-ins and says how each stop happened, in 80 columns;
    --full shows every event with all its fields. --json prints every event (as the web
    API does); --compact --json one object per row of the compact table.
    """
    registry = runtime.registry()
    master_id, name = resolve_master(registry, master)
    check_window(registry, since, until, now=runtime.now())
    events = registry.history(
        master_id,
        since=since if isinstance(since, dt.datetime) else None,
        until=until if isinstance(until, dt.datetime) else None,
    )
    events = [
        event
        for event in events
        if (not isinstance(since, int) or event.position >= since)
        and (not isinstance(until, int) or event.position <= until)
    ]
    output = runtime.output(json_flag)
    title = f"history of {name} (id {master_id})"
    if compact if compact is not None else not output.json_mode:
        names = {master.name for master in registry.get_masters()}
        output.trail(trail_rows(events, name, names), title=title, name=name)
    else:
        output.events(events, title=title)


@cli.command(name="log")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    metavar="POS",
    help="Start after position POS.",
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Stop after N events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01, max=MAX_INTERVAL),
    callback=lambda _ctx, _param, value: _finite(value),
    metavar="SECONDS",
    default=1.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@json_option
@pass_runtime
def log_command(
    runtime: Runtime,
    after: int,
    limit: int | None,
    follow: bool,
    interval: float,
    json_flag: bool,
) -> None:
    """The whole log in position order, one event a line; --follow tails it."""
    registry = runtime.registry()
    output = runtime.output(json_flag)
    printed = 0
    try:
        while True:
            remaining = None if limit is None else limit - printed
            for event in registry.events(after=after, limit=remaining):
                output.event_line(event)
                after, printed = event.position, printed + 1
            if not follow or (limit is not None and printed >= limit):
                return
            runtime.sleep(interval)
    except KeyboardInterrupt:
        return  # the way to stop --follow


@cli.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The picture to write: FILE.svg or FILE.png.",
)
@click.option("--since", type=WHEN, help="Start of the window (default: the first event).")
@click.option("--until", type=WHEN, help="End of the window (default: the last event).")
@click.option("--title", help="Title of the picture.")
@json_option
@pass_runtime
def timeline(
    runtime: Runtime,
    out: Path,
    since: When | None,
    until: When | None,
    title: str | None,
    json_flag: bool,
) -> None:
    """Draw the masters' activity: one lane per master, active intervals as bars, marks
    for registration, clean stop, expiry (naming who expired it), adoption and reset."""
    from mastertrail.timeline import build_timeline, draw_timeline

    if out.suffix.lower() not in (".svg", ".png"):
        raise click.BadParameter("the picture must be a .svg or .png file", param_hint="--out")
    if not out.parent.is_dir():
        raise click.BadParameter(f"there is no directory {out.parent}", param_hint="--out")
    registry = runtime.registry()
    start, end = check_window(registry, since, until, now=runtime.now())
    output = runtime.output(json_flag)
    with output.progress("reading the log") as progress:
        picture = build_timeline(_counting(registry.events(), progress), since=start, until=end)
    draw_timeline(picture, out, title=title)
    marks = sum(len(lane.marks) for lane in picture.lanes)
    if output.json_mode:
        output.json({"out": str(out), "lanes": len(picture.lanes), "marks": marks})
    else:
        output.say(f"wrote {out}: {len(picture.lanes)} masters, {marks} marks")


def resolve_master(registry: Registry, text: str) -> tuple[int, str]:
    """The id and name of the master named ``text``, or numbered ``text``; looking it up
    never registers anything."""
    every = registry.get_masters()
    for master in every:
        if master.name == text:
            return master.id, master.name
    if text.isascii() and text.isdigit():
        found = registry.get_master(int(text))
        if found is not None:
            return found.id, found.name
        if registry.history(int(text)):
            return int(text), f"master {text}"
    raise click.BadParameter(f"no master is named or numbered {text!r}", param_hint="MASTER")


def time_of(registry: Registry, when: When | None, option: str) -> dt.datetime | None:
    """``when`` as a time: a position stands for the time of the event there (``@0``, before
    the first event, for no bound at the start)."""
    if when is None or isinstance(when, dt.datetime):
        return when
    if when == 0 and option == "--since":
        return None
    event = next(registry.events(after=max(when - 1, 0), limit=1), None)
    if event is None or event.position != when:
        raise click.BadParameter(f"the log has no position {when}", param_hint=option)
    return event.recorded_at


def check_window(
    registry: Registry, since: When | None, until: When | None, *, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The times of a ``--since``/``--until`` window; one that ends before it starts, or
    starts after ``now`` (or after the log's last position), is bad input."""
    start, end = time_of(registry, since, "--since"), time_of(registry, until, "--until")
    if start is not None and start > now:
        raise click.BadParameter(
            f"the window starts in the future ({_describe(start)}, now is {_describe(now)})",
            param_hint="--since",
        )
    inverted = (
        since > until
        if isinstance(since, int) and isinstance(until, int)
        else start is not None and end is not None and start > end
    )
    if inverted:
        raise click.BadParameter("the window ends before it starts", param_hint="--until")
    return start, end


def _finite(seconds: float) -> float:
    if math.isnan(seconds):
        raise click.BadParameter("must be a number of seconds, not nan", param_hint="--interval")
    return seconds


def _counting(
    events: Iterator[RecordedEvent], progress: ProgressCallback
) -> Iterator[RecordedEvent]:
    done = 0
    for done, event in enumerate(events, start=1):
        if done % 10_000 == 0:
            progress(done, 0)
        yield event
    progress(done, 0)


def _describe(when: When) -> str:
    if isinstance(when, int):
        return f"position {when}"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC"
