"""``archive``: move the log's oldest events into sealed segment files, or list them."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from eventstore import Segment, archive_directory, list_segments
from mastertrail.cli.app import WHEN, Runtime, cli, json_option
from mastertrail.cli.render import Output, when_text
from mastertrail.when import When

pass_runtime = click.make_pass_decorator(Runtime)


@cli.command()
@click.option(
    "--before",
    type=WHEN,
    help="Archive the events recorded before WHEN (@POSITION: those below it).",
)
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="The directory the segment files go to (created if missing).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be archived; write nothing.")
@click.option("--list", "list_", is_flag=True, help="List the sealed segments and stop.")
@json_option
@pass_runtime
def archive(
    runtime: Runtime,
    before: When | None,
    to: Path | None,
    dry_run: bool,
    list_: bool,
    json_flag: bool,
) -> None:
    """Move the events before WHEN out of the log into sealed segment files in DIR (a
    master's newest too: its stream goes on from there). Every reading answers as before;
    `verify` checks the segments too. With --list, list the sealed segments."""
    registry = runtime.registry()
    output = runtime.output(json_flag)
    if list_:
        if before is not None or to is not None or dry_run:
            raise click.UsageError("--list takes no --before, --to or --dry-run")
        show_segments(output, list_segments(registry.engine))
        return
    if before is None or to is None:
        raise click.UsageError("archive needs --before WHEN and --to DIR (or --list)")
    with output.progress("archiving the log"):
        report = registry.archive(before=before, to=to, dry_run=dry_run)
    if output.json_mode:
        output.json(
            {
                "segments": report.segments,
                "events": report.events,
                "bytes": report.bytes,
                "through": report.through,
                "dry_run": report.dry_run,
                "to": str(to),
            }
        )
    verb, holds = ("would seal", "would then hold") if dry_run else ("sealed", "holds")
    per_event = f", {report.bytes / report.events:.1f} bytes an event" if report.events else ""
    output.say(
        f"{verb} {report.events} events in {report.segments} segment(s) of {report.bytes} "
        f"bytes{per_event} in {to}; the archive {holds} positions 1..{report.through}"
        if report.through
        else "nothing to archive"
    )


def show_segments(output: Output, segments: list[Segment]) -> None:
    """The sealed segments as a table, or one JSON object each."""
    moved = archive_directory(None)
    if output.json_mode:
        for segment in segments:
            path = segment.path(moved)
            output.json(
                {
                    "first_position": segment.first_position,
                    "last_position": segment.last_position,
                    "count": segment.count,
                    "first_recorded_at": segment.first_recorded_at.isoformat(),
                    "last_recorded_at": segment.last_recorded_at.isoformat(),
                    "previous_hash": segment.previous_hash,
                    "last_hash": segment.last_hash,
                    "sha256": segment.file_sha256,
                    "path": str(path),
                    "present": path.is_file(),
                }
            )
        return
    table = Table(title="archive segments", title_justify="left")
    for column in ("positions", "events"):
        table.add_column(column, justify="right")
    for column in ("first recorded (UTC)", "last recorded (UTC)", "file"):
        table.add_column(column, overflow="fold")
    for segment in segments:
        path = segment.path(moved)
        table.add_row(
            f"{segment.first_position}..{segment.last_position}",
            str(segment.count),
            when_text(segment.first_recorded_at),
            when_text(segment.last_recorded_at),
            str(path) if path.is_file() else f"{path} [red](missing)[/]",
        )
    if not segments:
        table.caption = "nothing archived"
    output.console.print(table)
