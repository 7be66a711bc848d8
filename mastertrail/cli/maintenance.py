"""Commands that write or check: ``upgrade``, ``expire``, ``rebuild``, ``verify`` (with
``--anchors``), ``adopt`` and ``replay``."""

from __future__ import annotations

from pathlib import Path

import click

from eventstore import SchemaMissing, current_revision, reading, translate_errors
from mastertrail.cli import replay as sandbox
from mastertrail.cli.app import WHEN, Runtime, cli, json_option, open_registry, redact
from mastertrail.cli.render import Output
from mastertrail.registry import Registry, VerifyReport
from mastertrail.when import When
from projections.model import MasterModel

pass_runtime = click.make_pass_decorator(Runtime)


@cli.command()
@json_option
@pass_runtime
def upgrade(runtime: Runtime, json_flag: bool) -> None:
    """Create or migrate the schema (log and view); adopts rows that have no history. Says
    what it did: created, migrated (from which revision), adopted (which masters)."""
    registry = runtime.registry(create=True)
    before = schema_revision(registry)
    adopted = registry.upgrade()
    after = schema_revision(registry)
    output = runtime.output(json_flag)
    db = redact(runtime.db)
    if output.json_mode:
        output.json(
            {
                "upgraded": True,
                "db": db,
                "created": before is None,
                "migrated_from": before if before not in (None, after) else None,
                "revision": after,
                "adopted": [master.name for master in adopted],
            }
        )
    if before is None:
        output.say(f"created the schema of {db} (revision {after})")
    elif before != after:
        output.say(f"migrated the schema of {db} from revision {before} to {after}")
    else:
        output.say(f"the schema of {db} was up to date (revision {after})")
    if adopted:
        names = ", ".join(master.name for master in adopted)
        output.say(f"adopted {len(adopted)} master(s) found without history: {names}")


def schema_revision(registry: Registry) -> str | None:
    """The schema revision of the registry's database (None: no schema yet)."""
    with translate_errors(), reading(registry.engine) as conn:
        return current_revision(conn)


#: Buildbot's own expiry timeout: a buildmaster expires a master silent for 10 minutes.
BUILDBOT_TIMEOUT = 600


@cli.command()
@click.option(
    "--timeout",
    type=click.IntRange(min=0),
    default=BUILDBOT_TIMEOUT,
    show_default=True,
    metavar="S",
    help="Expire active masters silent for more than S seconds.",
)
@click.option(
    "--force",
    is_flag=True,
    help=f"Allow a timeout below Buildbot's {BUILDBOT_TIMEOUT} s.",
)
@json_option
@pass_runtime
def expire(runtime: Runtime, timeout: int, force: bool, json_flag: bool) -> None:
    """Deactivate the active masters that stopped checking in; you are recorded as the
    actor (see --actor).

    Only the record changes: the builds a dead master was running and the build requests
    it claimed are cleaned up only when a buildmaster expires it, never after this command
    (see the operator's guide). Below Buildbot's 600 s it could expire a master that
    buildmasters still count alive, so it needs --force.
    """
    registry = runtime.registry()  # bad --db or --actor first: one line either way
    if timeout < BUILDBOT_TIMEOUT:
        warning = (
            f"a timeout of {timeout} s is below Buildbot's {BUILDBOT_TIMEOUT} s: it can "
            "expire a master that buildmasters still count alive, and leaves its builds "
            "'building' and its claims held, which no buildmaster cleans up afterwards"
        )
        if not force:
            raise click.UsageError(f"{warning}; pass --force to do it anyway")
        click.echo(f"mastertrail expire: warning: {warning}", err=True)
    expired = registry.expire_masters(timeout=timeout)
    output = runtime.output(json_flag)
    if expired:
        output.masters(expired, title=f"expired {len(expired)} master(s)")
    else:
        output.say(f"no active master has been silent for more than {timeout} s")


@cli.command()
@json_option
@pass_runtime
def rebuild(runtime: Runtime, json_flag: bool) -> None:
    """Rebuild the masters view from the log (rows are updated or restored, never deleted)."""
    output = runtime.output(json_flag)
    with output.progress("replaying the log") as progress:
        replayed = runtime.registry().rebuild(progress=progress)
    if output.json_mode:
        output.json({"events_replayed": replayed})
    output.say(f"rebuilt the view from {replayed} events")


@cli.command()
@click.option(
    "--anchors",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also check the anchors of FILE (JSON lines, as `anchor --to FILE` appends).",
)
@json_option
@click.pass_context
def verify(ctx: click.Context, anchors: Path | None, json_flag: bool) -> None:
    """Check the log's hash chain (and the anchors of FILE) and compare the view with a
    fresh fold of the log. Exits 1 when anything is wrong."""
    runtime = ctx.find_object(Runtime)
    assert runtime is not None
    output = runtime.output(json_flag)
    with output.progress("verifying the log") as progress:
        report = runtime.registry().verify(progress=progress, anchors=anchors)
    show_report(output, report)
    if not report.ok:
        ctx.exit(1)


@cli.command()
@json_option
@pass_runtime
def adopt(runtime: Runtime, json_flag: bool) -> None:
    """Import an existing Buildbot database: record every masters row that has no history
    with an adoption event (creating the log's tables first when they are missing)."""
    registry = runtime.registry()
    output = runtime.output(json_flag)
    with output.progress("adopting masters"):
        adopted = _adopt(registry)
    if adopted:
        output.masters(adopted, title=f"adopted {len(adopted)} master(s)")
    else:
        output.say("every master already has a history; nothing to adopt")


@cli.command()
@click.option("--until", required=True, type=WHEN, help="Copy the log up to WHEN (inclusive).")
@click.option(
    "--into", "into", required=True, metavar="URL", help="An empty database to copy into."
)
@json_option
@pass_runtime
def replay(runtime: Runtime, until: When, into: str, json_flag: bool) -> None:
    """Copy the log up to WHEN into another, empty database and build its view there: a
    sandbox for debugging. The source is only read."""
    source = runtime.registry()
    if redact(into) == redact(runtime.db):
        raise click.BadParameter("must name another database than --db", param_hint="--into")
    target = open_registry(into, clock=runtime.clock, actor=runtime.actor, create=True)
    output = runtime.output(json_flag)
    try:
        with output.progress("copying the log") as progress:
            result = sandbox.replay(source, target, until=until, progress=progress)
    finally:
        target.close()
    if output.json_mode:
        output.json(
            {
                "into": redact(into),
                "events": result.events,
                "until_position": result.until_position,
                "masters": result.masters,
                "ok": result.report.ok,
            }
        )
    else:
        output.say(
            f"copied {result.events} events (up to position {result.until_position}) into "
            f"{redact(into)}; its view holds {result.masters} master(s)"
        )
        show_report(output, result.report)


def show_report(output: Output, report: VerifyReport) -> None:
    """A verify report: one JSON object, or a verdict and its problems."""
    if output.json_mode:
        output.json(
            {
                "ok": report.ok,
                "events_checked": report.events_checked,
                "anchors_checked": report.anchors_checked,
                "problems": [
                    {
                        "kind": p.kind,
                        "detail": p.detail,
                        "position": p.position,
                        "master_id": p.master_id,
                    }
                    for p in report.problems
                ],
            }
        )
        return
    if report.ok:
        held = f", {report.anchors_checked} anchor(s) hold" if report.anchors_checked else ""
        output.say(
            f"verified: {report.events_checked} events, hash chain intact{held}, view matches"
        )
        return
    output.say(f"verify found {len(report.problems)} problem(s):")
    for problem in report.problems:
        output.say(f"  {problem}")


def _adopt(registry: Registry) -> list[MasterModel]:
    try:
        return registry.adopt()
    except SchemaMissing:
        # No log yet: creating it records every row found, as adoption events; but only in
        # a database that holds Buildbot's masters table (decided before writing anything).
        if not sandbox.holds_masters_table(registry):
            raise click.UsageError(
                "the database holds no Buildbot masters table, so there is nothing to adopt "
                "(it was left as it was; `mastertrail upgrade` starts a new registry)"
            ) from None
        registry.upgrade()
    adopted = [e.master_id for e in registry.events() if e.type == "master.adopted"]
    masters = [registry.get_master(master_id) for master_id in adopted]
    return [master for master in masters if master is not None]
