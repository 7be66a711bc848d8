"""The activity timeline: lanes, intervals and marks folded from the log, and the picture."""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from mastertrail import DecodeError, RecordedEvent, Registry
from mastertrail.timeline import (
    Lane,
    Timeline,
    build_timeline,
    draw_timeline,
    labelled_expiries,
    shorten,
)
from projections import name_hash
from projections.view import masters as masters_table
from tests.conftest import FakeClock

T0 = 1_700_000_000
SVG = "{http://www.w3.org/2000/svg}"
ALPHA, BRAVO, CHARLIE, DELTA = (f"{n}:/srv/master" for n in ("alpha", "bravo", "charlie", "delta"))


def at(offset: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T0 + offset, dt.UTC)


@attrs.frozen
class Story:
    """A log with every kind of mark, and the ids of its masters."""

    events: list[RecordedEvent]
    ids: dict[str, int]

    def position(self, name: str, kind: str, nth: int = 0) -> int:
        found = [e for e in self.events if e.master_id == self.ids[name] and e.type == kind]
        return found[nth].position


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    """alpha, bravo and charlie start at T0; bravo stops at +120; charlie falls silent after
    +60 and alpha expires it at +1000; delta is adopted at +1500; everything is reset long ago
    at +2000, and alpha checks in again at +2100."""
    clock = FakeClock(T0)
    tester = Registry(f"sqlite:///{tmp_path}/timeline.sqlite", clock=clock, actor="tester")
    tester.upgrade()
    alpha = Registry(tester.engine, clock=clock, actor=ALPHA)
    ids = {name: tester.find_master_id(name) for name in (ALPHA, BRAVO, CHARLIE)}
    for name in (ALPHA, BRAVO, CHARLIE):
        tester.set_master_state(ids[name], True)
    clock.advance(60)
    for name in (ALPHA, BRAVO, CHARLIE):
        tester.set_master_state(ids[name], True)
    clock.advance(60)
    tester.set_master_state(ids[BRAVO], False)
    clock.now = T0 + 1000
    tester.set_master_state(ids[ALPHA], True)
    assert [m.name for m in alpha.expire_masters(timeout=600)] == [CHARLIE]
    clock.now = T0 + 1500
    with tester.engine.begin() as conn:
        conn.execute(
            masters_table.insert().values(
                id=50, name=DELTA, name_hash=name_hash(DELTA), active=1, last_active=T0 + 1400
            )
        )
    tester.adopt()
    ids[DELTA] = 50
    clock.now = T0 + 2000
    tester.set_all_masters_active_long_time_ago()
    clock.now = T0 + 2100
    tester.set_master_state(ids[ALPHA], True)
    yield Story(list(tester.events()), ids)
    tester.close()


def lane_of(timeline: Timeline, master_id: int) -> Lane:
    return next(lane for lane in timeline.lanes if lane.master_id == master_id)


class TestBuildTimeline:
    def test_one_lane_per_master_in_id_order(self, story: Story) -> None:
        """Every master of the log gets exactly one lane, by id, named as registered."""
        timeline = build_timeline(story.events)
        assert [lane.master_id for lane in timeline.lanes] == sorted(story.ids.values())
        assert [lane.name for lane in timeline.lanes] == [ALPHA, BRAVO, CHARLIE, DELTA]

    def test_marks_sit_on_the_events_that_made_them(self, story: Story) -> None:
        """Registration, clean stop, expiry, adoption and reset marks carry the position and
        time of their event, on their master's lane."""
        timeline = build_timeline(story.events)
        by_position = {e.position: e for e in story.events}
        for lane in timeline.lanes:
            for mark in lane.marks:
                event = by_position[mark.position]
                assert event.master_id == lane.master_id
                assert event.recorded_at == mark.at
        kinds = {(m.kind, m.position) for m in timeline.marks}
        assert ("registered", story.position(ALPHA, "master.registered")) in kinds
        assert ("stopped", story.position(BRAVO, "master.deactivated")) in kinds
        assert ("expired", story.position(CHARLIE, "master.deactivated")) in kinds
        assert ("adopted", story.position(DELTA, "master.adopted")) in kinds
        resets = [m for m in timeline.marks if m.kind == "reset"]
        assert len(resets) == 4
        assert {m.at for m in resets} == {at(2000)}

    def test_marks_are_only_for_state_changes(self, story: Story) -> None:
        """Check-ins and activations make bars, never marks."""
        timeline = build_timeline(story.events)
        marked = {m.position for m in timeline.marks}
        changes = {
            e.position
            for e in story.events
            if e.type not in ("master.checked_in", "master.activated")
        }
        assert marked == changes

    def test_an_expiry_names_the_master_that_expired_it(self, story: Story) -> None:
        """The expiry mark records the expiring master's name; a clean stop its own actor."""
        timeline = build_timeline(story.events)
        (expired,) = [m for m in timeline.marks if m.kind == "expired"]
        assert expired.by == ALPHA
        (stopped,) = [m for m in timeline.marks if m.kind == "stopped"]
        assert stopped.by == "tester"

    def test_active_intervals_follow_the_check_ins(self, story: Story) -> None:
        """A clean stop ends the bar at the stop; an expiry ends it at the last check-in and
        records when the master was declared dead; a gap in the check-ins ends a bar, the
        next check-in opens another; a reset closes every bar."""
        timeline = build_timeline(story.events)
        bravo = lane_of(timeline, story.ids[BRAVO]).intervals
        assert [(i.start, i.end, i.ending) for i in bravo] == [(at(0), at(120), "stopped")]
        charlie = lane_of(timeline, story.ids[CHARLIE]).intervals
        assert [(i.start, i.end, i.ending, i.closed) for i in charlie] == [
            (at(0), at(60), "expired", at(1000))
        ]
        alpha = lane_of(timeline, story.ids[ALPHA]).intervals
        assert [(i.start, i.end, i.ending, i.closed) for i in alpha] == [
            (at(0), at(60), "gap", at(1000)),
            (at(1000), at(1000), "reset", at(2000)),
            (at(2100), at(2100), "open", None),
        ]

    def test_an_adopted_active_master_is_active_from_its_last_check_in(self, story: Story) -> None:
        """An adoption of an active row opens a bar at the row's last_active."""
        timeline = build_timeline(story.events)
        delta = lane_of(timeline, 50).intervals
        assert [(i.start, i.ending) for i in delta] == [(at(1400), "reset")]

    def test_the_window_spans_the_log_by_default(self, story: Story) -> None:
        """Without bounds the window runs from the first event to the last."""
        timeline = build_timeline(story.events)
        assert (timeline.start, timeline.end) == (at(0), at(2100))

    def test_a_window_clips_bars_and_drops_marks_outside(self, story: Story) -> None:
        """Bars are cut at the window's edges; marks outside it are left out; a master that
        did not exist yet at the window's end has no lane."""
        timeline = build_timeline(story.events, since=at(100), until=at(1200))
        assert [lane.master_id for lane in timeline.lanes] == [
            story.ids[n] for n in (ALPHA, BRAVO, CHARLIE)
        ]
        assert {m.kind for m in timeline.marks} == {"stopped", "expired"}
        alpha = lane_of(timeline, story.ids[ALPHA]).intervals
        assert [(i.start, i.end) for i in alpha] == [(at(100), at(100)), (at(1000), at(1000))]
        charlie = lane_of(timeline, story.ids[CHARLIE]).intervals
        assert [(i.start, i.end, i.closed) for i in charlie] == [(at(100), at(100), at(1000))]

    def test_reads_the_log_in_one_pass(self, story: Story) -> None:
        """A generator is enough: the log is streamed, not loaded twice."""
        timeline = build_timeline(e for e in story.events)
        assert len(timeline.lanes) == 4

    def test_an_empty_log_has_no_lanes(self) -> None:
        """No events, no lanes."""
        assert build_timeline([]).lanes == ()

    def test_reads_events_through_the_codec(self) -> None:
        """A lane is named by the registration as the codec decodes it, and an event the
        codec refuses (a version 1 check-in without its last_active) is refused, as the
        fold refuses it, rather than drawn."""
        named = build_timeline([registration(1, 1)])
        assert [lane.name for lane in named.lanes] == ["m1"]
        unreadable = attrs.evolve(
            registration(2, 1), type="master.checked_in", schema_version=1, data={}
        )
        with pytest.raises(DecodeError):
            build_timeline([registration(1, 1), unreadable])


def expiry(position: int, master_id: int, offset: float) -> RecordedEvent:
    return RecordedEvent(
        position=position,
        event_id=uuid.uuid4(),
        master_id=master_id,
        version=position,
        type="master.deactivated",
        schema_version=1,
        data={"last_active": T0, "timeout": 600},
        metadata={"actor": f"killer-{position}", "reason": "expired"},
        recorded_at=at(offset),
        hash="",
    )


def registration(position: int, master_id: int) -> RecordedEvent:
    return attrs.evolve(
        expiry(position, master_id, 0),
        type="master.registered",
        data={"name": f"m{master_id}", "last_active": T0},
        metadata={"actor": "tester", "reason": "registered"},
    )


class TestLabelledExpiries:
    def test_newest_first_and_at_most_the_limit(self) -> None:
        """Labels go to the newest expiries, no more than the limit."""
        events = [registration(i, i) for i in range(1, 6)]
        events += [expiry(10 + i, i, 1000 * i) for i in range(1, 6)]
        picked = labelled_expiries(build_timeline(events), limit=3)
        assert [mark.position for _, mark in picked] == [15, 14, 13]

    def test_labels_keep_apart_within_a_lane(self) -> None:
        """In one lane, an expiry closer than the spacing to a labelled one gets no label."""
        events = [registration(1, 1)]
        events += [expiry(p, 1, offset) for p, offset in ((2, 100), (3, 200), (4, 9000))]
        events.append(registration(5, 2))
        picked = labelled_expiries(build_timeline(events), spacing=0.25)
        assert [mark.position for _, mark in picked] == [4, 3]


class TestDrawTimeline:
    def test_writes_an_svg_that_parses(self, story: Story, tmp_path: Path) -> None:
        """The SVG is well-formed XML with an <svg> root, naming every master's lane and the
        master that expired another."""
        out = draw_timeline(build_timeline(story.events), tmp_path / "activity.svg")
        root = ET.parse(out).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        texts = {"".join(node.itertext()).strip() for node in root.iter(f"{SVG}text")}
        assert {ALPHA, BRAVO, CHARLIE, DELTA} <= texts
        assert f"by {ALPHA}" in texts

    def test_writes_a_png(self, story: Story, tmp_path: Path) -> None:
        """A .png path gets a PNG file."""
        out = draw_timeline(build_timeline(story.events), tmp_path / "activity.png")
        assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    def test_the_picture_grows_with_the_lanes(self, tmp_path: Path) -> None:
        """Fifty masters get a taller picture than two, so lanes stay readable."""
        heights = []
        for count in (2, 50):
            events = [registration(i, i) for i in range(1, count + 1)]
            out = draw_timeline(build_timeline(events), tmp_path / f"lanes-{count}.svg")
            heights.append(float(ET.parse(out).getroot().attrib["height"].removesuffix("pt")))
        assert heights[1] > heights[0] * 3

    def test_refuses_other_formats(self, story: Story, tmp_path: Path) -> None:
        """Only .svg and .png are drawn."""
        with pytest.raises(ValueError, match=r"\.svg or \.png"):
            draw_timeline(build_timeline(story.events), tmp_path / "activity.pdf")


class TestShorten:
    def test_keeps_short_names(self) -> None:
        """Names within the limit are unchanged."""
        assert shorten("ci-01:/srv", 40) == "ci-01:/srv"

    def test_cuts_long_names_in_the_middle(self) -> None:
        """Long names keep their start and end, within the limit."""
        name = "build-01.example.org:/srv/buildbot/masters/production"
        short = shorten(name, 20)
        assert len(short) == 20
        assert short.startswith("build-01")
        assert short.endswith("production"[-9:])


def life(position: int, kind: str, offset: float, *, pid: int = 1, **data: object) -> RecordedEvent:
    """An event of master 1 ("m1"), by itself from process ``pid``."""
    return attrs.evolve(
        expiry(position, 1, offset),
        type=f"master.{kind}",
        data={"last_active": T0 + int(offset), **data},
        metadata={"actor": "m1", "host": "h", "pid": pid, "reason": kind},
    )


class TestSilence:
    def test_a_crash_found_at_restart_ends_the_bar_at_the_last_check_in(self) -> None:
        """kill -9 after +120, restarted at +1000: the bar ends at +120, silence to +1000,
        a found-dead mark, and a new bar from the restart."""
        events = [
            attrs.evolve(registration(1, 1), data={"name": "m1", "last_active": T0}),
            life(2, "activated", 0),
            life(3, "checked_in", 60),
            life(4, "checked_in", 120),
            life(5, "deactivated", 1000, pid=2, last_active=T0 + 120),
            life(6, "activated", 1000, pid=2),
        ]
        events[4] = attrs.evolve(events[4], metadata={**events[4].metadata, "reason": "stopped"})
        (lane,) = build_timeline(events).lanes
        assert [(i.start, i.end, i.ending, i.closed) for i in lane.intervals] == [
            (at(0), at(120), "found_dead", at(1000)),
            (at(1000), at(1000), "open", None),
        ]
        (dead,) = [m for m in lane.marks if m.kind == "found_dead"]
        assert dead.detail == "found dead at restart after 14 min of silence"

    def test_a_slow_heartbeat_is_not_silence(self) -> None:
        """A master checking in every five minutes keeps one bar; a gap of three of its
        heartbeats is silence."""
        offsets = [0, 300, 600, 900, 1800, 2100]
        events = [attrs.evolve(registration(1, 1), data={"name": "m1", "last_active": T0})]
        events += [life(i + 2, "checked_in", offset) for i, offset in enumerate(offsets)]
        (lane,) = build_timeline(events).lanes
        assert [(i.start, i.end, i.ending) for i in lane.intervals] == [
            (at(0), at(900), "gap"),
            (at(1800), at(2100), "open"),
        ]

    def test_still_marked_active_but_silent_at_the_end(self) -> None:
        """A master whose check-ins stopped long before the window's end is drawn silent
        to the end."""
        events = [attrs.evolve(registration(1, 1), data={"name": "m1", "last_active": T0})]
        events += [life(2, "activated", 0), life(3, "checked_in", 60)]
        (lane,) = build_timeline(events, until=at(3600)).lanes
        assert [(i.end, i.closed) for i in lane.intervals] == [(at(60), at(3600))]


class TestFromTheFleetAtTheStart:
    @pytest.mark.parametrize("offset", [30, 100, 130, 1000, 1500, 2050])
    def test_equals_folding_the_whole_log(self, story: Story, offset: float) -> None:
        """The fleet as it stood at the window's start plus the events after it draw the
        same lanes, bars and marks as the whole log does."""
        from projections import fold

        since = at(offset)
        position = max((e.position for e in story.events if e.recorded_at < since), default=0)
        fleet = [
            state.to_model()
            for state in fold(e for e in story.events if e.position <= position).values()
        ]
        later = [e for e in story.events if e.position > position]
        whole = build_timeline(story.events, since=since, until=at(2100))
        seeded = build_timeline(later, since=since, until=at(2100), fleet=fleet)
        assert [(lane.name, lane.intervals) for lane in seeded.lanes] == [
            (lane.name, lane.intervals) for lane in whole.lanes
        ]
        assert [(m.kind, m.position) for m in seeded.marks] == [
            (m.kind, m.position) for m in whole.marks
        ]
