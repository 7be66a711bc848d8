"""``verify`` re-chains the archive: a damaged, missing, reordered or substituted segment,
a forged header and a gap before the hot log are problems it names."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import lzma
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import eventstore
from eventstore import archive_seal, archive_verify
from eventstore.archive import list_segments
from eventstore.archive_format import file_name
from eventstore.archive_verify import verify_segments
from mastertrail import Registry
from projections.snapshots import fold_snapshots
from tests.archive_support import segment_files_read
from tests.cli_support import make_invoke
from tests.conftest import FakeClock
from tests.tamper_support import drop_guards

SEGMENTS = "mastertrail_archive_segments"


@pytest.fixture
def archived(
    registry: Registry, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    """Three masters, 33 events; positions 1-20 archived in four segments of five."""
    monkeypatch.setattr(archive_seal, "SEGMENT_EVENTS", 5)
    ids = [registry.find_master_id(f"{name}:/srv") for name in ("alpha", "bravo", "charlie")]
    for round_ in range(10):
        clock.advance(60)
        for master_id in ids:
            registry.set_master_state(master_id, round_ != 4 or master_id != ids[1])
    report = registry.archive(before=21, to=tmp_path)
    assert report.through == 20
    return registry


def recompress(path: Path, edit: object) -> None:
    """Rewrite the segment file at ``path``, its lines passed through ``edit``."""
    lines = lzma.decompress(path.read_bytes()).decode().splitlines()
    lines = edit(lines)  # type: ignore[operator]
    path.write_bytes(lzma.compress(("\n".join(lines) + "\n").encode()))


def record_digest(registry: Registry, first: int, path: Path) -> None:
    """Set the recorded SHA-256 of the segment starting at ``first`` to that of ``path``,
    as someone with raw access to the database could."""
    with registry.engine.begin() as conn:
        drop_guards(conn, (SEGMENTS,))
        conn.execute(
            sa.text(f"UPDATE {SEGMENTS} SET file_sha256 = :d WHERE first_position = :f"),
            {"d": hashlib.sha256(path.read_bytes()).digest(), "f": first},
        )


def problems(registry: Registry) -> list[str]:
    report = registry.verify()
    assert not report.ok
    return [str(p) for p in report.problems]


@pytest.fixture(params=["one process", "processes"])
def checking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Segments checked by the verifying process alone, or by two processes (as a long
    archive's are): every problem is named alike."""
    if request.param == "processes":
        monkeypatch.setattr(archive_verify, "PARALLEL_FROM", 2)
        monkeypatch.setattr(archive_verify, "SERVED_FROM", 2)
        monkeypatch.setattr(archive_verify, "PROCESSES", 2)
    else:
        monkeypatch.setattr(archive_verify, "PROCESSES", 1)
    return str(request.param)


@pytest.mark.usefixtures("checking")
class TestVerifySegments:
    def test_an_intact_archive_verifies(self, archived: Registry) -> None:
        """Every segment re-chains, the hot log chains on from the last."""
        report = verify_segments(archived.engine, fold=fold_snapshots)
        assert (report.ok, report.segments, report.checked) == (True, 4, 20)
        assert eventstore.verify_chain(archived.engine).ok

    def test_a_flipped_byte(self, archived: Registry, tmp_path: Path) -> None:
        """A file with one byte changed is named."""
        path = tmp_path / file_name(6, 10)
        blob = bytearray(path.read_bytes())
        blob[40] ^= 0x01
        path.write_bytes(bytes(blob))
        found = problems(archived)
        assert any("archive" in p and file_name(6, 10) in p and "SHA-256" in p for p in found)

    def test_a_missing_segment(self, archived: Registry, tmp_path: Path) -> None:
        """A segment whose file is gone is named."""
        (tmp_path / file_name(11, 15)).unlink()
        found = problems(archived)
        assert any(file_name(11, 15) in p and "missing" in p for p in found), found

    def test_reordered_segments(self, archived: Registry, tmp_path: Path) -> None:
        """Two segments' files swapped, their recorded digests made to match, do not
        describe the segments recorded."""
        a, b = tmp_path / file_name(1, 5), tmp_path / file_name(6, 10)
        swap = tmp_path / "swap"
        a.rename(swap)
        b.rename(a)
        swap.rename(b)
        record_digest(archived, 1, a)
        record_digest(archived, 6, b)
        found = problems(archived)
        assert any(file_name(1, 5) in p for p in found)
        assert any(file_name(6, 10) in p for p in found)

    def test_a_substituted_event(self, archived: Registry, tmp_path: Path) -> None:
        """An event changed inside a segment, the file recompressed and its digest
        recorded, breaks the segment's chain."""
        path = tmp_path / file_name(16, 20)

        def later(lines: list[str]) -> list[str]:
            event = json.loads(lines[3])
            event[1] += 1_000_000
            lines[3] = json.dumps(event, separators=(",", ":"))
            return lines

        recompress(path, later)
        record_digest(archived, 16, path)
        found = problems(archived)
        assert any(file_name(16, 20) in p and "damaged" in p for p in found), found

    def test_a_forged_header_state(self, archived: Registry, tmp_path: Path) -> None:
        """A header whose masters' states are not the fold of the events before it (what
        masters_as_of would start from) is named."""
        path = tmp_path / file_name(11, 15)

        def renamed(lines: list[str]) -> list[str]:
            header = json.loads(lines[0])
            header["masters"][0]["name"] = "mallory:/srv"
            lines[0] = json.dumps(header, separators=(",", ":"))
            return lines

        recompress(path, renamed)
        record_digest(archived, 11, path)
        found = problems(archived)
        assert any(file_name(11, 15) in p and "states" in p for p in found), found

    def test_a_gap_before_the_hot_log(self, archived: Registry) -> None:
        """A segment's record removed leaves the hot log starting after a gap."""
        with archived.engine.begin() as conn:
            drop_guards(conn, (SEGMENTS,))
            conn.exec_driver_sql(f"DELETE FROM {SEGMENTS} WHERE first_position = 16")
        found = problems(archived)
        assert any("chain: position 16" in p and "missing" in p for p in found), found

    def test_the_cli_exits_1_naming_it(
        self, archived: Registry, tmp_path: Path, db_url: str, clock: FakeClock
    ) -> None:
        """``mastertrail verify`` exits 1 and names the missing segment."""
        (tmp_path / file_name(1, 5)).unlink()
        result = make_invoke(clock)("--db", db_url, "verify")
        assert result.exit_code == 1, result.output
        assert file_name(1, 5) in result.output
        assert list_segments(archived.engine)[0].file_name == file_name(1, 5)


class TestVerifyBesideArchiving:
    def test_segments_sealed_while_it_runs_are_no_gap(
        self, archived: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Events archived after the chain's check began, before it read them, are not
        reported missing: the hot log chains on from the segment that now holds them."""
        from eventstore import chain

        reading = chain._rows

        def archive_first(*args: object) -> object:
            archived.archive(before=31, to=tmp_path)
            return reading(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(chain, "_rows", archive_first)
        report = eventstore.verify_chain(archived.engine)
        assert report.ok, report.problems
        assert list_segments(archived.engine)[-1].last_position == 30


class TestSegmentsAreReadOnce:
    @pytest.fixture
    def opened(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """The first position of every segment file read from here on."""
        return segment_files_read(monkeypatch)

    def test_verify_reads_each_segment_once(self, archived: Registry, opened: list[int]) -> None:
        """The fold compared with the view starts where the archive ends, from the states
        the segments' check folded: no segment is read a second time for it."""
        report = archived.verify()
        assert report.ok, report.problems
        assert report.events_checked == 33
        assert sorted(opened) == [1, 6, 11, 16]

    def test_a_master_all_in_the_archive_is_compared_with_the_view(
        self, registry: Registry, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A master whose every event is archived is in the fold the view is compared
        with: its row verifies as it is, and a change to it is named."""
        monkeypatch.setattr(archive_seal, "SEGMENT_EVENTS", 5)
        quiet = registry.find_master_id("quiet:/srv")
        clock.advance(60)
        registry.set_master_state(quiet, True)
        busy = registry.find_master_id("busy:/srv")
        for _ in range(12):
            clock.advance(60)
            registry.set_master_state(busy, True)
        assert registry.archive(before=11, to=tmp_path).through == 10
        assert registry.verify().ok
        with registry.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE masters SET last_active = last_active + 1 WHERE id = :id"),
                {"id": quiet},
            )
        report = registry.verify()
        assert [(p.kind, p.master_id) for p in report.problems] == [("view", quiet)]


class TestCheckedInProcesses:
    @pytest.fixture
    def a_thread(self) -> Iterator[None]:
        """Another thread running, as in a buildmaster: the checking processes must not be
        forked from this one."""
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    @pytest.mark.usefixtures("a_thread")
    def test_beside_other_threads_they_start_from_a_server(
        self, archived: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With another thread alive the processes start from a server process, and name a
        damaged segment as the verifying process alone does."""
        monkeypatch.setattr(archive_verify, "SERVED_FROM", 2)
        assert archive_verify._context().get_start_method() == "forkserver"
        path = tmp_path / file_name(6, 10)
        blob = bytearray(path.read_bytes())
        blob[40] ^= 0x01
        path.write_bytes(bytes(blob))
        pools: list[str] = []
        real = concurrent.futures.ProcessPoolExecutor

        def pool(*args: Any, mp_context: Any, **kwargs: Any) -> Any:
            pools.append(mp_context.get_start_method())
            return real(*args, mp_context=mp_context, **kwargs)

        monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", pool)
        alone = verify_segments(archived.engine, fold=fold_snapshots, processes=1)
        shared = verify_segments(archived.engine, fold=fold_snapshots, processes=2)
        assert pools == ["forkserver"]
        assert shared == alone
        assert [p.position for p in shared.problems] == [6]
