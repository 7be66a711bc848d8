"""``mastertrail demo``: a simulated day of a fleet of masters, shown."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path

import click
import sqlalchemy as sa

from mastertrail import demo as simulation
from mastertrail.cli.app import Runtime, cli
from mastertrail.cli.maintenance import show_report
from mastertrail.cli.render import when_text
from mastertrail.trail import trail_rows

pass_runtime = click.make_pass_decorator(Runtime)


@cli.command()
@click.option(
    "--timeline",
    "timeline_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to draw the timeline (.svg or .png; default: NAME-timeline.svg beside the "
    "database file).",
)
@click.option(
    "--replace", is_flag=True, help="Replace the database file even if the demo did not write it."
)
@click.pass_context
def demo(ctx: click.Context, timeline_path: Path | None, replace: bool) -> None:
    """Run a simulated fleet of masters through a simulated day, in seconds, then show the
    current view, one master's audit trail, the view as of a past moment, the result of
    verify, and the activity timeline.

    The database must be a SQLite file, e.g. --db sqlite:///demo.sqlite. The demo starts
    afresh every time: a file left by an earlier demo is replaced; a file holding anything
    else is refused, unless --replace is given.
    """
    runtime = ctx.find_object(Runtime)
    assert runtime is not None
    path = sqlite_file(runtime.db)
    picture = timeline_path or path.with_name(f"{path.stem}-timeline.svg")
    if picture.suffix.lower() not in (".svg", ".png"):
        raise click.BadParameter("the picture must be a .svg or .png file", param_hint="--timeline")
    if path.exists():
        if not replace and not simulation.is_demo_database(path):
            raise click.UsageError(
                f"{path} holds data the demo did not write; choose another --db, or pass "
                "--replace to overwrite it"
            )
        simulation.remove_database(path)

    output = runtime.output()
    with output.progress("simulating a day of the fleet") as progress:
        day = simulation.simulate_day(runtime.db, end=runtime.clock(), progress=progress)
    registry = runtime.registry()
    output.say(
        f"Simulated {len(day.fleet)} masters from {when_text(day.start)} to "
        f"{when_text(day.end)} UTC into {path}."
    )
    output.heading("The fleet now")
    output.masters(registry.get_masters(), title="masters")
    output.heading(f"Audit trail of {day.crashed}")
    master_id = next(m.id for m in registry.get_masters() if m.name == day.crashed)
    names = {master.name for master in registry.get_masters()}
    trail = trail_rows(registry.history(master_id), day.crashed, names)
    output.trail(trail, title="check-ins folded", name=day.crashed)
    output.heading(f"The fleet as of {when_text(day.past_moment)} UTC")
    output.masters(registry.masters_as_of(day.past_moment), title="masters then")
    output.heading("verify")
    report = registry.verify()
    show_report(output, report)

    from mastertrail.timeline import build_timeline, draw_timeline

    draw_timeline(build_timeline(registry.events()), picture)
    output.heading("timeline")
    output.say(f"wrote {picture}")
    command = f"{program_name()} --db {shlex.quote(runtime.db)}"
    tries = [
        f"history {shlex.quote(day.crashed)}",
        "masters --as-of '12h ago'",
        f"log --after {max(report.events_checked - 10, 0)}",
        "verify",
    ]
    if importlib.util.find_spec("flask") is not None:  # the [web] extra
        tries.append("serve    # the page at http://127.0.0.1:8020/")
    output.say("Next, try:\n" + "\n".join(f"  {command} {line}" for line in tries))
    if not report.ok:
        ctx.exit(1)


def program_name(argv0: str | None = None) -> str:
    """How to run this program again as it was run: ``mastertrail`` when that name on PATH
    is this program, else the path it was run by (``.venv/bin/mastertrail``)."""
    path = Path(argv0 if argv0 is not None else sys.argv[0])
    found = shutil.which(path.name)
    if found is not None and Path(found).resolve() == path.resolve():
        return path.name
    if path.exists():
        return shlex.quote(os.path.relpath(path) if path.is_absolute() else str(path))
    return "python -m mastertrail"


def sqlite_file(url: str) -> Path:
    """The file of a SQLite URL; any other database is bad input for the demo."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise click.BadParameter(str(error), param_hint="--db") from error
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        raise click.BadParameter(
            "the demo runs on a SQLite file, e.g. --db sqlite:///demo.sqlite", param_hint="--db"
        )
    return Path(database)
