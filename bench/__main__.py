"""``python -m bench``: run the benchmark, print the table, write the JSON (and the docs)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from bench import independent
from bench.config import FULL, QUICK
from bench.databases import BACKENDS, Backend, server_url
from bench.docs_page import write_page
from bench.harness import quiet_logging, run_on_reactor
from bench.report import lines, machine, text_table, write_json
from bench.run import SECTIONS, run, stamp

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="mastertrail against Buildbot's own masters connector and eventsourcing.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated: sqlite, postgresql, mysql (default: all configured)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench-results",
        help="directory for the JSON, the log and the SQLite files",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="page to rewrite with the table (default: docs/performance.rst "
        "after a full run of every backend; never after --quick)",
    )
    parser.add_argument("--no-docs", action="store_true", help="leave the docs alone")
    parser.add_argument("--fresh", action="store_true", help="regenerate the cached long log")
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        metavar="N",
        help="the long log's length on every backend, instead of the run's (a stated scale)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)}); "
        "the docs are rewritten only after all of them",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = QUICK if args.quick else FULL
    if args.events is not None:
        if args.events < 100:
            print("bench: error: --events must be at least 100", file=sys.stderr)
            return 2
        config = attrs.evolve(config, history_events=dict.fromkeys(BACKENDS, args.events))
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    wanted = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(BACKENDS))
    if unknown:
        print(f"bench: error: unknown backend(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        print(f"bench: error: unknown section(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    backends, skipped = [], {}
    for name in wanted:
        url = None if name == "sqlite" else server_url(name)
        if name != "sqlite" and url is None:
            skipped[name] = "no server URL configured"
            continue
        backends.append(Backend(name, out / "work" / name, url))
    for backend in backends:
        backend.workdir.mkdir(parents=True, exist_ok=True)
    log_path = out / "mastertrail.log"
    log_path.write_text("")
    quiet_logging(log_path)
    started, began = stamp(), time.monotonic()
    versions = {b.name: b.server_version() for b in backends if b.name != "sqlite"}

    def document(sections: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        return {
            "date": started,
            "duration_s": round(time.monotonic() - began, 1),
            "partial": partial,
            "quick": args.quick,
            "machine": machine(versions),
            "config": {
                "masters": list(config.masters),
                "iterations": config.iterations,
                "warmup": config.warmup,
                "history_events": {b.name: config.history(b.name) for b in backends},
                "core_iterations": config.core_iterations,
                "as_of_iterations": config.as_of_iterations,
                "rebuild_repeats": config.rebuild_repeats,
                "independent": attrs.asdict(independent.plan_for(config.quick)),
                "sections": list(only),
            },
            "skipped": skipped,
            **sections,
        }

    def checkpoint(sections: dict[str, Any]) -> None:
        write_json(document(sections, partial=True), out)

    signal.signal(signal.SIGTERM, _terminate)
    try:
        sections = run_on_reactor(
            lambda reactor: run(
                reactor, backends, config, out, fresh=args.fresh, checkpoint=checkpoint, only=only
            )
        )
    except KeyboardInterrupt:
        print(f"bench: interrupted; what was measured is in {out / 'latest.json'}", file=sys.stderr)
        return 130
    finally:
        for backend in backends:
            backend.drop_all()
        shutil.rmtree(out / "work", ignore_errors=True)
    results = document(sections, partial=False)
    rows = list(lines(results))
    path = write_json(results, out)
    print(text_table(rows))
    for name, reason in skipped.items():
        print(f"{name}: skipped ({reason})")
    print(f"results: {path}")
    docs = args.docs
    complete = not skipped and len(backends) == len(BACKENDS) and set(only) == set(SECTIONS)
    if docs is None and not args.quick and complete:
        docs = ROOT / "docs" / "performance.rst"
    if docs is not None and not args.no_docs:
        write_page(docs, results, rows)
        print(f"docs: {docs}")
    return 0


def _terminate(_signal: int, _frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C, and the benchmark's databases are dropped. The
    reactor's loop swallows exceptions, so it is also asked to stop."""
    from twisted.internet import reactor as installed

    reactor: Any = installed
    reactor.callFromThread(reactor.stop)
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
