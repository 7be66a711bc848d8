"""Anchors kept outside the database reveal a rewrite of the log that re-chains every
hash, which ``verify`` alone then calls clean."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from mastertrail import (
    Anchor,
    AnchorInvalid,
    InvalidArgument,
    InvalidArgumentType,
    Registry,
    RegistryError,
)
from tests.conftest import FakeClock
from tests.tamper_support import rechain, tamper, three_masters

EVENTS = "mastertrail_events"
T0 = dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)


@pytest.fixture
def fleet(registry: Registry, clock: FakeClock) -> Registry:
    """The three masters of :func:`tests.tamper_support.three_masters`, positions 1-12."""
    return three_masters(registry, clock)


def written(**changes: object) -> str:
    """The JSON of a well-formed anchor with ``changes`` (None removes a field)."""
    fields: dict[str, object] = {
        "position": 12,
        "hash": "a" * 64,
        "recorded_at": "2023-11-14T22:13:20+00:00",
    }
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not None})


def anchor_at(registry: Registry, position: int) -> Anchor:
    """The anchor that would have been taken when the log ended at ``position``."""
    event = next(registry.events(after=position - 1, limit=1))
    return Anchor(position=position, hash=event.hash, recorded_at=event.recorded_at)


class TestAnchor:
    def test_an_anchor_is_the_last_position_and_its_hash(
        self, fleet: Registry, clock: FakeClock
    ) -> None:
        """anchor() names the log's last event by position and hash, at the clock's time."""
        taken = fleet.anchor()
        last = list(fleet.events())[-1]
        assert (taken.position, taken.hash) == (12, last.hash)
        assert taken.recorded_at == dt.datetime.fromtimestamp(clock.now, dt.UTC)

    def test_json_round_trips(self, fleet: Registry) -> None:
        """to_json is one line that from_json reads back to an equal anchor."""
        taken = fleet.anchor()
        line = taken.to_json()
        assert "\n" not in line
        assert set(json.loads(line)) == {"position", "hash", "recorded_at"}
        assert Anchor.from_json(line) == taken

    def test_an_empty_log_anchors_at_position_0(self, registry: Registry) -> None:
        """The anchor of an empty log is position 0 with the genesis hash, which holds."""
        taken = registry.anchor()
        assert (taken.position, taken.hash) == (0, "0" * 64)
        assert registry.verify(anchors=[taken]).ok

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("not json", id="not-json"),
            pytest.param("[12]", id="not-an-object"),
            pytest.param(written(recorded_at=None), id="field-missing"),
            pytest.param(written(x=1), id="field-extra"),
            pytest.param(written(position=True), id="position-bool"),
            pytest.param(written(position=-1), id="position-negative"),
            pytest.param(written(position="12"), id="position-text"),
            pytest.param(written(hash="A" * 64), id="hash-uppercase"),
            pytest.param(written(hash="abc"), id="hash-short"),
            pytest.param(written(recorded_at="2023-11-14T22:13:20"), id="time-naive"),
            pytest.param(written(recorded_at="yesterday"), id="time-not-iso"),
            pytest.param(written(position=0), id="position-0-not-genesis"),
        ],
    )
    def test_a_malformed_anchor_is_a_typed_value_error(self, text: str) -> None:
        """Anything to_json does not write raises AnchorInvalid, a RegistryError and a
        ValueError (the well-formed line itself is read)."""
        assert Anchor.from_json(written()).position == 12
        with pytest.raises(AnchorInvalid) as raised:
            Anchor.from_json(text)
        assert isinstance(raised.value, RegistryError)
        assert isinstance(raised.value, ValueError)


class TestVerifyWithAnchors:
    def test_anchors_of_an_untouched_log_hold(self, fleet: Registry, tmp_path: Path) -> None:
        """Anchors given as a list, a path string or a Path all hold on the log they were
        taken from, and are counted."""
        anchors = [anchor_at(fleet, 4), anchor_at(fleet, 9), fleet.anchor()]
        path = tmp_path / "anchors.jsonl"
        path.write_text("".join(a.to_json() + "\n" for a in anchors) + "\n")
        for given in (anchors, str(path), path):
            report = fleet.verify(anchors=given)
            assert report.ok, report.problems
            assert report.anchors_checked == 3

    def test_a_rewrite_rechained_by_dml_is_caught_by_an_anchor_taken_before(
        self, fleet: Registry
    ) -> None:
        """Bravo's stop moved an hour back with the guards dropped, and every hash and the
        head recomputed: verify calls it clean, an anchor taken after the stop does not;
        one taken before it proves nothing about it."""
        before, after = anchor_at(fleet, 9), fleet.anchor()
        rechain(
            fleet.engine,
            f"UPDATE {EVENTS} SET recorded_at = recorded_at - 3600000000 WHERE position = 10",
        )
        assert fleet.verify().ok
        report = fleet.verify(anchors=[before, after])
        assert [(p.kind, p.position) for p in report.problems] == [("anchor", 12)]
        assert "no longer carries" in report.problems[0].detail

    def test_a_dml_only_rewrite_is_caught(self, fleet: Registry, backend: str) -> None:
        """On PostgreSQL a superuser can switch the triggers off for a session and rewrite
        with DML alone, dropping nothing: verify calls the re-chained log clean, the anchor
        does not, and the guards are still there afterwards."""
        if backend != "postgresql":
            pytest.skip("only PostgreSQL lets a session switch the triggers off")
        taken = fleet.anchor()
        rechain(
            fleet.engine,
            f"UPDATE {EVENTS} SET recorded_at = recorded_at - 3600000000 WHERE position = 10",
            dml_only=True,
        )
        assert fleet.verify().ok
        report = fleet.verify(anchors=[taken])
        assert [(p.kind, p.position) for p in report.problems] == [("anchor", 12)]
        with pytest.raises(sa.exc.DBAPIError), fleet.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {EVENTS} SET data = data WHERE position = 1")

    def test_a_tail_replaced_with_the_triggers_dropped_is_caught(
        self, fleet: Registry, clock: FakeClock
    ) -> None:
        """The events from bravo's stop on deleted and the head moved back, then new ones
        appended by mastertrail itself (bravo checks in instead): a consistent log that
        verify calls clean, but position 12 no longer carries the anchored hash."""
        anchors = [anchor_at(fleet, 9), fleet.anchor()]
        rechain(fleet.engine, f"DELETE FROM {EVENTS} WHERE position >= 10")
        fleet.rebuild()
        later = Registry(fleet.engine, clock=clock, actor="tester")
        for master_id in (2, 1, 3):
            later.set_master_state(master_id, True)
        assert fleet.verify().ok
        report = fleet.verify(anchors=anchors)
        assert [(p.kind, p.position) for p in report.problems] == [("anchor", 12)]

    def test_a_log_cut_back_is_caught(self, fleet: Registry) -> None:
        """The last two events deleted and the head moved back: verify calls the shorter
        log clean, the anchor is past its end."""
        taken = fleet.anchor()
        rechain(fleet.engine, f"DELETE FROM {EVENTS} WHERE position > 10")
        fleet.rebuild()
        assert fleet.verify().ok
        report = fleet.verify(anchors=[taken])
        assert [(p.kind, p.position) for p in report.problems] == [("anchor", 12)]
        assert "past the end of the log" in report.problems[0].detail

    def test_anchors_are_checked_when_the_chain_is_broken_too(self, fleet: Registry) -> None:
        """A row changed without re-chaining is a chain problem, and the anchors past it
        are still checked."""
        taken = fleet.anchor()
        rechain(fleet.engine)  # the guards dropped, every hash recomputed as it was
        assert fleet.verify(anchors=[taken]).ok
        tamper(fleet.engine, f"DELETE FROM {EVENTS} WHERE position = 12")
        kinds = [p.kind for p in fleet.verify(anchors=[taken]).problems]
        assert kinds[0] == "chain"
        assert "anchor" in kinds

    def test_a_malformed_anchors_file_names_its_line(self, fleet: Registry, tmp_path: Path) -> None:
        """A line that is not an anchor raises AnchorInvalid naming the file and line; a
        file that cannot be read InvalidArgument; neither writes anything."""
        path = tmp_path / "anchors.jsonl"
        path.write_text(fleet.anchor().to_json() + "\n\n{broken\n")
        with pytest.raises(AnchorInvalid, match=r"anchors\.jsonl:3"):
            fleet.verify(anchors=path)
        with pytest.raises(InvalidArgument):
            fleet.verify(anchors=tmp_path / "missing.jsonl")

    @pytest.mark.parametrize("anchors", [42, [None], ["{}"], b"anchors.jsonl"])
    def test_anchors_of_the_wrong_type(self, fleet: Registry, anchors: object) -> None:
        """Anything but Anchors or a path raises InvalidArgumentType."""
        with pytest.raises(InvalidArgumentType):
            fleet.verify(anchors=anchors)  # type: ignore[arg-type]
