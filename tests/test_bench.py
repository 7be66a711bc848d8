"""The benchmark's smoke run: ``python -m bench --quick`` on SQLite, in a temporary
directory. Only the shape of its output is checked, never its timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mastertrail import Registry

pytest.importorskip("buildbot")
pytest.importorskip("eventsourcing")

from bench.connector import SHARED  # after the skips: it needs Buildbot

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "connector",
    "long_history",
    "floor",
    "core",
    "rebuild",
    "as_of",
    "storage",
    "independent",
    "fleet",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The output directory and the printed table of one quick SQLite run."""
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--backends", "sqlite", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout


@pytest.fixture(scope="module")
def results(quick_run: tuple[Path, str]) -> dict[str, Any]:
    return json.loads((quick_run[0] / "latest.json").read_text())


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


class TestQuickRun:
    def test_every_section_has_results(self, results: dict[str, Any]) -> None:
        """The JSON holds a non-empty list of SQLite results for every section."""
        for section in SECTIONS:
            assert results[section], section
            assert {item["backend"] for item in results[section]} == {"sqlite"}

    def test_connector_sections_compare_both_components(self, results: dict[str, Any]) -> None:
        """Every connector operation has positive times for both components and a ratio,
        with and without the long log."""
        operations = {"heartbeat", SHARED, "findMasterId", "getMaster", "getMasters"}
        for section in ("connector", "long_history"):
            assert {item["operation"] for item in results[section]} == operations
            for item in results[section]:
                for side in ("mastertrail", "buildbot"):
                    assert positive(item[side]["median_ms"])
                    assert positive(item[side]["p99_ms"])
                    assert 0 < item[side]["n"] <= results["config"]["iterations"]
                assert positive(item["ratio"])
                assert positive(item["p99_ratio"])
        assert {item["masters"] for item in results["connector"]} == set(
            results["config"]["masters"]
        )
        assert all(positive(item["history_events"]) for item in results["long_history"])

    def test_a_heartbeat_between_another_masters_reads_first(self, results: dict[str, Any]) -> None:
        """On SQLite, mastertrail's heartbeat after its own write sends one statement fewer
        than after another master's (the read, where SQLite cannot chain); the other
        master's writes are not counted, and Buildbot's heartbeat sends the same statements
        either way."""
        for section in ("connector", "long_history"):
            by_operation = {
                item["operation"]: item["round_trips"]
                for item in results[section]
                if item["masters"] == 10
            }
            alone, shared = by_operation["heartbeat"], by_operation[SHARED]
            ours = shared["mastertrail"]["statements"] - alone["mastertrail"]["statements"]
            assert ours == 1, section
            assert shared["buildbot"] == alone["buildbot"], section

    def test_core_heartbeat_against_the_library(self, results: dict[str, Any]) -> None:
        """The core heartbeat has positive times for mastertrail and the library and ratios."""
        (item,) = results["core"]
        for side in ("mastertrail", "eventsourcing", "eventsourcing_save_only"):
            assert positive(item[side]["median_ms"])
        assert positive(item["ratio"])
        assert positive(item["ratio_save_only"])

    def test_rebuild_as_of_and_storage(self, results: dict[str, Any]) -> None:
        """Rebuild and scan rates, masters_as_of times and bytes per event are positive."""
        (rebuild,) = results["rebuild"]
        assert positive(rebuild["rebuild_events_per_s"])
        assert positive(rebuild["scan_rows_per_s"])
        assert positive(rebuild["ratio"])
        assert rebuild["events"] >= results["config"]["history_events"]["sqlite"]
        (as_of,) = results["as_of"]
        assert positive(as_of["long"]["median_ms"])
        assert positive(as_of["short"]["median_ms"])
        (storage,) = results["storage"]
        assert positive(storage["bytes_per_event"])
        assert positive(storage["file_bytes_per_event"])

    def test_archive_section(self, results: dict[str, Any]) -> None:
        """The archive section archived most of the long log into segments, timed the
        heartbeats of another process beside it, and read through it afterwards."""
        (item,) = results["archive"]
        events = results["config"]["history_events"]["sqlite"]
        assert events / 2 < item["archived_events"] < events
        assert item["segments"] >= 1
        assert item["hot_bytes_after"] < item["hot_bytes_before"]
        for key in ("segment_bytes_per_event", "archive_events_per_s", "verify_events_per_s"):
            assert positive(item[key]), key
        assert item["verify_events"] >= events
        for side in ("heartbeat_quiet", "heartbeat_archiving"):
            assert item[side]["n"] > 0, side
            assert positive(item[side]["p99_ms"]), side
        for reading in ("as_of_before", "as_of_after"):
            assert positive(item[reading]["archived"]["median_ms"]), reading
            assert positive(item[reading]["hot"]["median_ms"]), reading

    def test_table_is_printed(self, quick_run: tuple[Path, str]) -> None:
        """The printed table has a line for every benchmark."""
        table = quick_run[1]
        for name in (
            "connector",
            "fleet",
            "core heartbeat",
            "rebuild",
            "masters_as_of",
            "storage",
            "archive",
        ):
            assert name in table

    def test_floor_compares_the_bare_statements_of_both_heartbeats(
        self, results: dict[str, Any]
    ) -> None:
        """The bare-driver floor times mastertrail's heartbeat statements, after its own
        write and after another master's (which wrote a log that verifies, or the run would
        have failed), against Buildbot's."""
        (item,) = results["floor"]
        ours, anchor = item["mastertrail"], item["buildbot"]
        assert ours["median_ms"] > 0
        assert anchor["median_ms"] > 0
        assert item["ratio"] == pytest.approx(ours["median_ms"] / anchor["median_ms"])
        shared = item["shared"]
        assert shared["buildbot"] == anchor
        assert shared["ratio"] == pytest.approx(
            shared["mastertrail_shared"]["median_ms"] / anchor["median_ms"]
        )

    def test_page_lists_the_statements_per_call(
        self, results: dict[str, Any], tmp_path: Path
    ) -> None:
        """The docs page written from a run lists, per operation, the statements and commits
        counted on each side, as measured (the heartbeat writes, so it commits)."""
        from bench.docs_page import write_page
        from bench.report import lines

        page = tmp_path / "performance.rst"
        write_page(page, results, list(lines(results)))
        text = page.read_text()
        heartbeat = next(
            line for line in text.splitlines() if line.startswith("* SQLite, ``heartbeat``")
        )
        item = next(
            i for i in results["connector"] if i["operation"] == "heartbeat" and i["masters"] == 10
        )
        ours = item["round_trips"]["mastertrail"]
        assert f"mastertrail {ours['statements']:g} statements, 1 commit;" in heartbeat
        assert "Cases near 1.0x" in text

    @pytest.mark.parametrize(
        ("events", "title"),
        [
            (5_256_000, "A full run, measured on"),
            (
                1_000_000,
                "A full run at a stated scale (``--events``, 1,000,000 events on every "
                "database), measured on",
            ),
        ],
    )
    def test_page_says_the_scale_of_the_run(
        self, results: dict[str, Any], tmp_path: Path, events: int, title: str
    ) -> None:
        """A full run at another length of the long log than a year says so, and how long."""
        from bench.docs_page import write_page
        from bench.report import lines

        config = dict(results["config"], history_events=dict.fromkeys(("sqlite",), events))
        run = dict(results, quick=False, config=config)
        page = tmp_path / "performance.rst"
        write_page(page, run, list(lines(run)))
        assert title in page.read_text()

    def test_page_lists_the_bytes_of_each_part_of_the_log(
        self, results: dict[str, Any], tmp_path: Path
    ) -> None:
        """The page breaks the storage down by table and index, as measured, and the parts
        add up to the total."""
        from bench.docs_page import write_page
        from bench.report import lines

        page = tmp_path / "performance.rst"
        write_page(page, results, list(lines(results)))
        text = page.read_text()
        item = next(i for i in results["storage"] if i["backend"] == "sqlite")
        line = next(line for line in text.splitlines() if line.startswith("* SQLite ("))
        parts = item["parts_bytes_per_event"]
        assert f"``mastertrail_events`` {parts['mastertrail_events']:.1f}" in line
        assert f"{item['bytes_per_event']:.0f} in all" in line
        assert sum(parts.values()) == pytest.approx(item["bytes_per_event"])

    def test_independent_harness_in_rounds_quiet_and_loaded(self, results: dict[str, Any]) -> None:
        """The independent harness measures every case of the issue quiet and beside the
        background writer, both contenders in every round, the writer having written."""
        from bench.independent import CASES, LOADED, QUICK, QUIET

        items = results["independent"]
        for load in (QUIET, LOADED):
            found = [(i["operation"], i["masters"]) for i in items if i["load"] == load]
            assert found == list(CASES)
        for item in items:
            assert len(item["round_medians_ms"]) == item["rounds"] == QUICK.rounds
            assert item["ratio_min"] <= item["ratio_max"]
            assert positive(item["mastertrail"]["median_ms"])
            assert positive(item["buildbot"]["median_ms"])
            if item["load"] == LOADED:
                assert item["background_tx_per_s"] >= 0
            else:
                assert "background_tx_per_s" not in item
        # The writer wrote while the cases ran: a quick case on a busy machine may take
        # less time than one of its transactions, so over all of them.
        loaded = [i["background_tx_per_s"] for i in items if i["load"] == LOADED]
        assert positive(sum(loaded))

    def test_fleet_of_masters_at_once(self, results: dict[str, Any]) -> None:
        """The fleet section times every operation of both fleets of masters, each master a
        process of its own, in alternating rounds, with the fleets' throughput."""
        from bench.fleet import OPERATIONS, QUICK

        items = results["fleet"]
        assert [item["operation"] for item in items] == list(OPERATIONS)
        for item in items:
            assert item["masters"] == QUICK.masters
            assert len(item["round_medians_ms"]) == item["rounds"] == QUICK.rounds
            assert item["ratio_min"] <= item["ratio_max"]
            for side in ("mastertrail", "buildbot"):
                assert positive(item[side]["median_ms"])
                assert positive(item["calls_per_s"][side])
            assert len(item["load_average"]) == 3

    def test_storage_breakdown_adds_up(self, results: dict[str, Any]) -> None:
        """The storage section splits every table and index of the log into its records,
        the cells' and pages' own bytes and the unused ones, adding up to its part of the
        total."""
        (item,) = results["storage"]
        breakdown = item["breakdown"]
        assert set(breakdown) == set(item["parts_bytes_per_event"])
        for name, part in breakdown.items():
            found = part["payload"] + part["cells_and_pages"] + part["unused"]
            assert found == pytest.approx(part["bytes"]), name
            assert part["bytes"] == pytest.approx(item["parts_bytes_per_event"][name]), name
        assert breakdown["mastertrail_events"]["payload"] > 32  # the hash at least

    def test_cached_history_verifies(self, quick_run: tuple[Path, str]) -> None:
        """The generated long log, cached for later runs, has an intact hash chain and a
        view equal to a fold of the log."""
        (cached,) = quick_run[0].glob("history-*.sqlite")
        registry = Registry(f"sqlite:///{cached}")
        try:
            report = registry.verify()
            assert report.ok, report.problems
            assert report.events_checked == results_events(quick_run[0])
            assert len(registry.get_masters(active=True)) == 10
        finally:
            registry.close()


def results_events(out: Path) -> int:
    return int(json.loads((out / "latest.json").read_text())["config"]["history_events"]["sqlite"])


class TestConfig:
    def test_the_full_run_writes_a_year_on_every_database(self) -> None:
        """The full run's long log is a year of ten masters checking in every minute on
        SQLite, PostgreSQL and MariaDB alike."""
        from bench.config import FULL
        from bench.databases import BACKENDS

        assert {FULL.history(name) for name in BACKENDS} == {10 * 60 * 24 * 365}


class TestIndependentHarness:
    def test_the_result_is_the_median_of_the_round_medians(self) -> None:
        """Each contender's result is the median of its round medians, and the spread is
        the range of the rounds' own ratios, not of the medians' ratio."""
        from bench.independent import ANCHOR, OURS, round_ratio_summary

        rounds = [
            {OURS: 0.002, ANCHOR: 0.001},
            {OURS: 0.001, ANCHOR: 0.004},
            {OURS: 0.003, ANCHOR: 0.002},
        ]
        found = round_ratio_summary(rounds)
        assert found[OURS]["median_ms"] == pytest.approx(2.0)
        assert found[ANCHOR]["median_ms"] == pytest.approx(2.0)
        assert found["ratio"] == pytest.approx(1.0)
        assert found["ratio_min"] == pytest.approx(0.25)
        assert found["ratio_max"] == pytest.approx(2.0)

    def test_an_unknown_section_is_refused(self, tmp_path: Path) -> None:
        """``--only`` with a section the benchmark does not have exits 2, measuring
        nothing."""
        result = subprocess.run(
            [sys.executable, "-m", "bench", "--quick", "--only", "independent,nonsense"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2
        assert "nonsense" in result.stderr
