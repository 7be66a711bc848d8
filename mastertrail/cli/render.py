"""How the command line prints: rich tables for people, one JSON object per line for
scripts, and progress bars only when stdout is a terminal."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from eventstore import RecordedEvent
from mastertrail.trail import TrailRow
from projections.model import MasterModel

#: Width of tables written to a file or a pipe (a terminal uses its own width).
PIPE_WIDTH = 160

ProgressCallback = Callable[[int, int], None]


def master_json(master: MasterModel) -> dict[str, Any]:
    """The JSON object of a master."""
    return {
        "id": master.id,
        "name": master.name,
        "active": master.active,
        "last_active": master.last_active.isoformat(),
    }


def when_text(when: dt.datetime, *, micros: bool = False) -> str:
    """A UTC time for a table cell."""
    return when.astimezone(dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%S.%f" if micros else "%Y-%m-%d %H:%M:%S"
    )


def event_summary(event: RecordedEvent) -> str:
    """The data of an event that a reader cares about, in a few words (``last_active``
    only where it is not the time of the event itself)."""
    parts = []
    if "name" in event.data:
        parts.append(f"name={event.data['name']}")
    if "active" in event.data:
        parts.append(f"active={event.data['active']}")
    if event.data.get("timeout") is not None:
        parts.append(f"timeout={event.data['timeout']}s")
    for field in ("schedulers", "changesources"):  # the links a deactivation removed
        ids = event.data.get(field)
        if isinstance(ids, list) and ids:
            parts.append(f"{field}={','.join(str(i) for i in ids)}")
    seconds = event.data.get("last_active")
    if isinstance(seconds, int) and seconds != int(event.recorded_at.timestamp()):
        parts.append(f"last_active={when_text(dt.datetime.fromtimestamp(seconds, dt.UTC))}")
    return " ".join(parts)


class Output:
    """Prints a command's results in the mode the user asked for."""

    def __init__(self, *, json_mode: bool, console: Console | None = None) -> None:
        self.json_mode = json_mode
        self.console = console or Console(highlight=False, soft_wrap=False)
        if console is None and not self.console.is_terminal:
            self.console.width = PIPE_WIDTH

    # -- scripts -------------------------------------------------------------------------------

    def json(self, value: dict[str, Any]) -> None:
        """One JSON object on one line of stdout."""
        click.echo(json.dumps(value, ensure_ascii=False))

    # -- people --------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A line for people (nothing in JSON mode)."""
        if not self.json_mode:
            self.console.print(text, markup=False, highlight=False)

    def heading(self, text: str) -> None:
        """A section heading for people."""
        if not self.json_mode:
            self.console.rule(text, style="bold")

    def masters(self, masters: Sequence[MasterModel], *, title: str | None = None) -> None:
        """Masters as a table, or one JSON object each."""
        if self.json_mode:
            for master in masters:
                self.json(master_json(master))
            return
        table = Table(title=title, title_justify="left")
        table.add_column("id", justify="right")
        table.add_column("name", overflow="fold")
        table.add_column("active")
        table.add_column("last active (UTC)")
        for master in masters:
            table.add_row(
                str(master.id),
                master.name,
                "[green]yes[/]" if master.active else "[dim]no[/]",
                when_text(master.last_active),
            )
        if not masters:
            table.caption = "no masters"
        self.console.print(table)

    def events(
        self, events: Sequence[RecordedEvent], *, title: str | None = None, compact: bool = False
    ) -> None:
        """One master's events as a table (runs of check-ins folded into one row when
        ``compact``), or one JSON object each."""
        if self.json_mode:
            for event in events:
                self.json(event.to_json())
            return
        table = Table(title=title, title_justify="left")
        for column in ("position", "version"):
            table.add_column(column, justify="right")
        for column in ("recorded (UTC)", "event", "reason", "by", "details"):
            table.add_column(column, overflow="fold")
        for group in _runs(events) if compact else [[event] for event in events]:
            first, last = group[0], group[-1]
            if len(group) == 1:
                cells = (str(first.position), str(first.version), when_text(first.recorded_at))
                kind, details = first.type, event_summary(first)
            else:
                cells = (
                    f"{first.position}…{last.position}",
                    f"{first.version}…{last.version}",
                    f"{when_text(first.recorded_at)} … {when_text(last.recorded_at)}",
                )
                kind, details = f"{first.type} ({len(group)} times)", event_summary(last)
            table.add_row(
                *cells,
                kind,
                str(first.metadata.get("reason", "")),
                str(first.metadata.get("actor", "")),
                details,
                end_section=False,
            )
        if not events:
            table.caption = "no events"
        self.console.print(table)

    def trail(
        self, rows: Sequence[TrailRow], *, title: str | None = None, name: str | None = None
    ) -> None:
        """A master's trail, runs of check-ins folded and each stop read, in a table that
        fits 80 columns (times and positions never cut), or one JSON object per row; an
        actor other than the master ``name`` itself is named."""
        if self.json_mode:
            for row in rows:
                self.json(
                    {
                        **row.first.to_json(),
                        "count": row.count,
                        "last_position": row.last.position,
                        "last_recorded_at": row.last.recorded_at.isoformat(),
                        "summary": row.what,
                    }
                )
            return
        table = Table(title=title, title_justify="left")
        table.add_column("position", justify="right", no_wrap=True)
        table.add_column("recorded (UTC)", no_wrap=True)
        table.add_column("what happened", overflow="fold", ratio=1)
        for row in rows:
            what = row.what
            if row.count > 1:
                what += f", the last at {when_text(row.last.recorded_at)}"
            elif row.actor not in ("", name) and row.first.type != "master.deactivated":
                what += f" (by {row.actor})"
            table.add_row(row.positions, when_text(row.first.recorded_at), what)
        if not rows:
            table.caption = "no events"
        self.console.print(table)

    def event_line(self, event: RecordedEvent) -> None:
        """One event of the log as one line (streamed, so no table), or as JSON."""
        if self.json_mode:
            self.json(event.to_json())
            return
        self.console.print(
            f"{event.position:>8}  {when_text(event.recorded_at, micros=True)}  "
            f"master {event.master_id:<4} v{event.version:<6} {event.type:<27} "
            f"{event.metadata.get('reason', '')!s:<10} {event.metadata.get('actor', '')}  "
            f"{event_summary(event)}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    @contextlib.contextmanager
    def progress(self, description: str) -> Iterator[ProgressCallback]:
        """A ``progress(done, total)`` callback drawing a bar while the block runs (a total
        of 0 means unknown), on a terminal only; elsewhere it does nothing."""
        if not self.console.is_terminal:
            yield _ignore
            return
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total or None)

            yield update


def _ignore(_done: int, _total: int) -> None:
    return None


def _runs(events: Sequence[RecordedEvent]) -> list[list[RecordedEvent]]:
    """Consecutive check-ins grouped; every other event alone."""
    runs: list[list[RecordedEvent]] = []
    for event in events:
        if runs and event.type == "master.checked_in" and runs[-1][-1].type == event.type:
            runs[-1].append(event)
        else:
            runs.append([event])
    return runs


__all__ = ["PIPE_WIDTH", "Output", "ProgressCallback", "event_summary", "master_json", "when_text"]
