"""The ``mastertrail`` command line: operators' and developers' tools on the registry.

``main`` is the console script; ``cli`` the click group (for click's test runner).
"""

from mastertrail.cli import anchoring, archiving, demo, maintenance, reading, serve
from mastertrail.cli.app import Runtime, cli

__all__ = ["Runtime", "cli", "main"]

# The command modules register themselves on the group when imported.
_COMMANDS = (anchoring, archiving, demo, maintenance, reading, serve)


def main() -> None:
    """Run the command line (the ``mastertrail`` console script)."""
    cli()
