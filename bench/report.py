"""The results as rows of one table (printed, and put into the documentation), with the
issue's targets checked against the ratios of the same run."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from bench.databases import LABELS

#: Thresholds from the performance issue.
MAX_RATIO = 1.0
MIN_REBUILD_RATIO = 0.5
MAX_AS_OF_MS = 20.0
MAX_AS_OF_GROWTH = 1.5
MAX_BYTES = 100.0
#: Thresholds from the retention issue.
MAX_HOT_MB = 50.0
MAX_SEGMENT_BYTES = 10.0
MIN_ARCHIVE_RATIO = 0.5
MAX_HEARTBEAT_P99_RATIO = 2.0
MAX_ARCHIVED_AS_OF_MS = 50.0
MIN_VERIFY_RATIO = 0.5

PACKAGES = (
    "mastertrail",
    "buildbot",
    "twisted",
    "sqlalchemy",
    "eventsourcing",
    "psycopg",
    "pymysql",
)


@attrs.frozen
class Line:
    """One line of the results table."""

    benchmark: str
    database: str
    case: str
    ours: str
    anchor: str
    ratio: str
    target: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "-"}[self.met]

    def cells(self) -> list[str]:
        return [
            self.benchmark,
            self.database,
            self.case,
            self.ours,
            self.anchor,
            self.ratio,
            self.target,
            self.verdict,
        ]


HEADER = ["Benchmark", "Database", "Case", "mastertrail", "Anchor", "Ratio", "Target", "Verdict"]


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['median_ms']:.2f} / {summary['p99_ms']:.2f} ms"


def _events(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1_000_000 else f"{count:,}"


def lines(results: dict[str, Any]) -> Iterator[Line]:
    """Every result as a table line, in section order."""
    for item in [*results["connector"], *results["long_history"]]:
        history = item["history_events"]
        case = f"{item['operation']}, {item['masters']} masters"
        case += f", {_events(history)} events" if history else ", no history"
        yield Line(
            "connector" if not history else "connector, long log",
            LABELS[item["backend"]],
            case,
            _ms(item["mastertrail"]),
            _ms(item["buildbot"]),
            f"{item['ratio']:.2f}x",
            f"<= {MAX_RATIO:.1f}x Buildbot",
            item["ratio"] <= MAX_RATIO,
        )
    for item in results.get("independent", []):
        spread = f"{item['ratio_min']:.2f}-{item['ratio_max']:.2f} over rounds"
        yield Line(
            "independent harness",
            LABELS[item["backend"]],
            f"{item['operation']}, {item['masters']} masters, {item['load']}",
            f"{item['mastertrail']['median_ms']:.2f} ms",
            f"{item['buildbot']['median_ms']:.2f} ms",
            f"{item['ratio']:.2f}x ({spread})",
            f"<= {MAX_RATIO:.1f}x Buildbot",
            item["ratio"] <= MAX_RATIO,
        )
    for item in results.get("fleet", []):
        spread = f"{item['ratio_min']:.2f}-{item['ratio_max']:.2f} over rounds"
        yield Line(
            "fleet",
            LABELS[item["backend"]],
            f"{item['operation']}, {item['masters']} masters at once, a process each",
            f"{item['mastertrail']['median_ms']:.2f} ms",
            f"{item['buildbot']['median_ms']:.2f} ms",
            f"{item['ratio']:.2f}x ({spread})",
            f"<= {MAX_RATIO:.1f}x Buildbot",
            item["ratio"] <= MAX_RATIO,
        )
    for item in results.get("floor", []):
        floors = [("its statements, bare driver", "mastertrail", item)]
        if "shared" in item:
            floors.append(("after another master's write", "mastertrail_shared", item["shared"]))
        for case, ours, floor in floors:
            yield Line(
                "heartbeat floor",
                LABELS[item["backend"]],
                case,
                _ms(floor[ours]),
                _ms(floor["buildbot"]),
                f"{floor['ratio']:.2f}x",
                "(the database's share)",
                None,
            )
    for item in results["core"]:
        yield Line(
            "core heartbeat",
            LABELS[item["backend"]],
            "set_master_state vs get + save",
            _ms(item["mastertrail"]),
            _ms(item["eventsourcing"]),
            f"{item['ratio']:.2f}x",
            f"<= {MAX_RATIO:.1f}x eventsourcing",
            item["ratio"] <= MAX_RATIO,
        )
        yield Line(
            "core heartbeat",
            LABELS[item["backend"]],
            "vs save of a held aggregate",
            _ms(item["mastertrail"]),
            _ms(item["eventsourcing_save_only"]),
            f"{item['ratio_save_only']:.2f}x",
            "(floor, no target)",
            None,
        )
    for item in results["rebuild"]:
        yield Line(
            "rebuild",
            LABELS[item["backend"]],
            f"{_events(item['events'])} events, +{item['rebuild_peak_rss_growth_mb']:.0f} MB peak",
            f"{item['rebuild_events_per_s']:,.0f} ev/s",
            f"{item['scan_rows_per_s']:,.0f} rows/s scan",
            f"{item['ratio']:.2f}x",
            f">= {MIN_REBUILD_RATIO}x raw scan",
            item["ratio"] >= MIN_REBUILD_RATIO,
        )
    for item in results["as_of"]:
        yield Line(
            "masters_as_of",
            LABELS[item["backend"]],
            f"mid-log, {_events(item['events'])} vs {_events(item['short_events'])} events",
            _ms(item["long"]),
            _ms(item["short"]) + " (short)",
            f"{item['growth_ratio']:.2f}x",
            f"< {MAX_AS_OF_MS:.0f} ms, <= {MAX_AS_OF_GROWTH}x short",
            item["long"]["median_ms"] < MAX_AS_OF_MS and item["growth_ratio"] <= MAX_AS_OF_GROWTH,
        )
    for item in results["storage"]:
        sqlite = item["backend"] == "sqlite"
        file_part = f", file {item['file_bytes_per_event']:.0f} B" if sqlite else ""
        yield Line(
            "storage",
            LABELS[item["backend"]],
            f"{_events(item['events'])} events{file_part}",
            f"{item['bytes_per_event']:.0f} B/event",
            "-",
            "-",
            f"<= {MAX_BYTES:.0f} B/event",
            item["bytes_per_event"] <= MAX_BYTES,
        )
    for item in results.get("archive", []):
        yield from archive_lines(item)


def archive_lines(item: dict[str, Any]) -> Iterator[Line]:
    """The lines of one run of the archive section."""
    database = LABELS[item["backend"]]
    sqlite = item["backend"] == "sqlite"
    log = f"{_events(item['events'])} events, {_events(item['archived_events'])} archived"
    hot_mb = item["hot_bytes_after"] / 1e6
    yield Line(
        "archive",
        database,
        f"hot table + indexes, {log}",
        f"{hot_mb:.1f} MB",
        f"{item['hot_bytes_before'] / 1e6:.1f} MB before",
        f"{item['hot_bytes_after'] / item['hot_bytes_before']:.2f}x",
        f"<= {MAX_HOT_MB:.0f} MB (SQLite, a year)" if sqlite else "(no target)",
        hot_mb <= MAX_HOT_MB if sqlite else None,
    )
    yield Line(
        "archive",
        database,
        f"segment files, {item['segments']} segments",
        f"{item['segment_bytes_per_event']:.2f} B/event",
        "-",
        "-",
        f"<= {MAX_SEGMENT_BYTES:.0f} B/check-in",
        item["segment_bytes_per_event"] <= MAX_SEGMENT_BYTES,
    )
    yield Line(
        "archive",
        database,
        "archive vs rebuild, same events",
        f"{item['archive_events_per_s']:,.0f} ev/s",
        f"{item['rebuild_events_per_s']:,.0f} ev/s rebuild",
        f"{item['archive_ratio']:.2f}x",
        f">= {MIN_ARCHIVE_RATIO}x rebuild",
        item["archive_ratio"] >= MIN_ARCHIVE_RATIO,
    )
    yield Line(
        "archive",
        database,
        "heartbeat of another process while archiving",
        _ms(item["heartbeat_archiving"]),
        _ms(item["heartbeat_quiet"]) + " (alone)",
        f"{item['heartbeat_p99_ratio']:.2f}x p99",
        f"p99 <= {MAX_HEARTBEAT_P99_RATIO:.0f}x alone",
        item["heartbeat_p99_ratio"] <= MAX_HEARTBEAT_P99_RATIO,
    )
    after, before = item["as_of_after"], item["as_of_before"]
    yield Line(
        "archive",
        database,
        "masters_as_of inside the archive",
        _ms(after["archived"]),
        _ms(before["archived"]) + " (hot, before)",
        f"{after['archived']['median_ms'] / before['archived']['median_ms']:.2f}x",
        f"< {MAX_ARCHIVED_AS_OF_MS:.0f} ms",
        after["archived"]["median_ms"] < MAX_ARCHIVED_AS_OF_MS,
    )
    yield Line(
        "archive",
        database,
        "masters_as_of in the hot log",
        _ms(after["hot"]),
        _ms(before["hot"]) + " (before)",
        f"{item['as_of_hot_ratio']:.2f}x",
        f"< {MAX_AS_OF_MS:.0f} ms, unchanged",
        after["hot"]["median_ms"] < MAX_AS_OF_MS,
    )
    yield Line(
        "archive",
        database,
        f"verify, hot + segments, {_events(item['verify_events'])} events",
        f"{item['verify_events_per_s']:,.0f} ev/s",
        f"{item['rebuild_events_per_s']:,.0f} ev/s rebuild",
        f"{item['verify_ratio']:.2f}x",
        f">= {MIN_VERIFY_RATIO}x rebuild",
        item["verify_ratio"] >= MIN_VERIFY_RATIO,
    )


def text_table(rows: list[Line]) -> str:
    """The table for a terminal."""
    cells = [HEADER, *[row.cells() for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    rendered = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)


def rst_table(rows: list[Line]) -> str:
    """The table as a reStructuredText list-table."""
    out = [".. list-table::", "   :header-rows: 1", ""]
    for line in [HEADER, *[row.cells() for row in rows]]:
        out.append(f"   * - {_rst_cell(line[0])}")
        out.extend(f"     - {_rst_cell(cell)}" for cell in line[1:])
    return "\n".join(out)


def _rst_cell(text: str) -> str:
    return text.replace("*", r"\*").replace("|", r"\|") or "-"


def machine(versions: dict[str, str]) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            models = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as info:
            memory = round(int(info.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "absent"
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
        "databases": {"sqlite": sqlite3.sqlite_version, **versions},
        "packages": packages,
    }


def machine_line(info: dict[str, Any]) -> str:
    databases = ", ".join(f"{LABELS[k]} {v}" for k, v in info["databases"].items())
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['os']}; "
        f"Python {info['python']}; {databases}"
    )


def write_json(results: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "latest.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return path
