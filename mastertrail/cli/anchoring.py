"""``anchor``: where the log ends now, as one JSON line to keep outside the database
(``verify --anchors FILE`` checks them)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mastertrail.cli.app import Runtime, cli

pass_runtime = click.make_pass_decorator(Runtime)


@cli.command()
@click.option(
    "--to",
    "to",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Append the anchor to FILE (one JSON line) instead of printing it.",
)
@pass_runtime
def anchor(runtime: Runtime, to: Path | None) -> None:
    """Print an anchor of the log (its last position and the hash there, as one JSON
    line), or append it to FILE. Kept where the database's users cannot write, anchors
    reveal a later rewrite of the log: `verify --anchors FILE`."""
    taken = runtime.registry().anchor()
    line = taken.to_json()
    if to is None:
        click.echo(line)
        return
    append_line(to, line)
    runtime.output().say(f"anchored position {taken.position} in {to}")


def append_line(path: Path, line: str) -> None:
    """Append ``line`` to ``path`` and sync it to disk; a file that cannot be written is
    bad input."""
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        raise click.BadParameter(
            f"cannot append to {path}: {error.strerror or error}", param_hint="--to"
        ) from error
