"""The web application: the page, the JSON API, the timeline and /metrics, on every
backend, through Flask's test client."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import flask.testing
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mastertrail import Registry
from mastertrail.cli.render import master_json
from mastertrail.web import create_app
from tests.conftest import FakeClock

EVIL = "<img src=x onerror=alert(1)>"
T0 = 1_700_000_000


@pytest.fixture
def fleet(registry: Registry, clock: FakeClock) -> dict[str, int]:
    """alpha checks in; bravo stops cleanly; charlie falls silent and alpha expires it; the
    evil name is active; all at the fixed clock."""
    alpha = Registry(registry.engine, clock=clock, actor="alpha")
    ids = {name: registry.find_master_id(name) for name in ("alpha", "bravo", "charlie", EVIL)}
    for name in ids:
        registry.set_master_state(ids[name], True)
    clock.advance(60)
    registry.set_master_state(ids["bravo"], False)
    clock.advance(700)
    for name in ("alpha", EVIL):
        registry.set_master_state(ids[name], True)
    alpha.expire_masters(timeout=600)
    clock.advance(200)
    registry.set_master_state(ids["alpha"], True)
    return ids


@pytest.fixture
def client(registry: Registry, fleet: dict[str, int]) -> flask.testing.FlaskClient:
    return create_app(registry).test_client()


def metrics_of(
    client: flask.testing.FlaskClient,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


class TestMetrics:
    def test_masters_by_state_and_log_position(
        self, client: flask.testing.FlaskClient, registry: Registry
    ) -> None:
        """The counts by state and the head position, as Prometheus' own parser reads them."""
        samples = metrics_of(client)
        assert samples[("mastertrail_masters", (("state", "active"),))] == 2
        assert samples[("mastertrail_masters", (("state", "inactive"),))] == 2
        assert samples[("mastertrail_log_position", ())] == registry.log_position()

    def test_per_master_times_and_silence(
        self, client: flask.testing.FlaskClient, clock: FakeClock
    ) -> None:
        """Each master's last check-in as a timestamp, and the seconds since it for the
        active ones only, the evil name as a label value like any other."""
        samples = metrics_of(client)
        last = "mastertrail_master_last_active_timestamp_seconds"
        assert samples[(last, (("master", "alpha"),))] == T0 + 960
        assert samples[(last, (("master", "charlie"),))] == T0
        silent = "mastertrail_master_silent_seconds"
        assert samples[(silent, (("master", EVIL),))] == 200
        assert (silent, (("master", "bravo"),)) not in samples

    def test_how_the_inactive_masters_stopped(self, client: flask.testing.FlaskClient) -> None:
        """An expiry by another master and a clean stop are told apart, per master and in
        the counts an operator alerts on."""
        samples = metrics_of(client)
        how = "mastertrail_master_deactivated_timestamp_seconds"
        assert samples[(how, (("how", "expired_by_master"), ("master", "charlie")))] == T0 + 760
        assert samples[(how, (("how", "stopped"), ("master", "bravo")))] == T0 + 60
        counts = "mastertrail_masters_inactive"
        assert samples[(counts, (("how", "expired_by_master"),))] == 1
        assert samples[(counts, (("how", "found_dead"),))] == 0

    def test_the_last_verify_result(
        self, client: flask.testing.FlaskClient, registry: Registry, clock: FakeClock
    ) -> None:
        """No verify metric before a verify; after one, its result, time and size."""
        assert not any(name.startswith("mastertrail_verify") for name, _ in metrics_of(client))
        clock.advance(5)
        registry.verify()
        samples = metrics_of(client)
        assert samples[("mastertrail_verify_ok", ())] == 1
        assert samples[("mastertrail_verify_timestamp_seconds", ())] == T0 + 965
        assert samples[("mastertrail_verify_problems", ())] == 0
        assert samples[("mastertrail_verify_events_checked", ())] == registry.log_position()

    def test_a_scrape_reads_no_log(
        self, client: flask.testing.FlaskClient, registry: Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A scrape never reads the log as a whole, nor a master's history."""

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("a scrape scanned the log")

        monkeypatch.setattr(registry, "events", refuse)
        monkeypatch.setattr(registry, "history", refuse)
        assert metrics_of(client)


class TestApi:
    def test_masters_as_the_cli_prints_them(
        self, client: flask.testing.FlaskClient, registry: Registry
    ) -> None:
        """/api/masters holds the objects of `masters --json`, in id order."""
        response = client.get("/api/masters")
        assert response.content_type == "application/json"
        assert response.get_json() == [master_json(m) for m in registry.get_masters()]

    def test_masters_as_of_a_moment(
        self, client: flask.testing.FlaskClient, fleet: dict[str, int]
    ) -> None:
        """as_of takes a WHEN: at position 8 every master was still active."""
        found = client.get("/api/masters?as_of=@8").get_json()
        assert [m["active"] for m in found] == [True, True, True, True]
        assert client.get("/api/masters?as_of=yesterday-ish").status_code == 400

    def test_history_as_the_cli_prints_it(
        self, client: flask.testing.FlaskClient, registry: Registry, fleet: dict[str, int]
    ) -> None:
        """/api/masters/<id>/history holds the objects of `history --json`; an unknown id
        is a 404."""
        found = client.get(f"/api/masters/{fleet['charlie']}/history").get_json()
        assert found == [e.to_json() for e in registry.history(fleet["charlie"])]
        assert client.get("/api/masters/999/history").status_code == 404

    def test_markup_is_escaped_in_json(self, client: flask.testing.FlaskClient) -> None:
        """The evil name reads back intact, but no '<' or '>' appears in the body."""
        body = client.get("/api/masters").get_data(as_text=True)
        assert "<" not in body
        assert ">" not in body
        assert EVIL in [m["name"] for m in json.loads(body)]


class TestPage:
    def test_the_fleet_table_without_javascript(self, client: flask.testing.FlaskClient) -> None:
        """The page itself lists every master with its state and how each stopped."""
        page = client.get("/").get_data(as_text=True)
        assert client.get("/index.html").get_data(as_text=True) == page
        assert "expired by alpha after 12 min of silence" in page
        assert "stopped by tester" in page
        assert page.count('class="mt-state">active<') == 2

    def test_the_evil_name_is_text_in_html_and_svg(self, client: flask.testing.FlaskClient) -> None:
        """The name appears only escaped, in the table and in the inline timeline."""
        page = client.get("/").get_data(as_text=True)
        assert EVIL not in page
        assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 2
        svg = client.get("/timeline.svg").get_data(as_text=True)
        assert EVIL not in svg
        texts = {
            "".join(n.itertext())
            for n in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")
        }
        assert EVIL in texts

    def test_a_master_trail_on_click(
        self, client: flask.testing.FlaskClient, fleet: dict[str, int]
    ) -> None:
        """?master=<id> (the link of a name) adds that master's trail, check-ins folded."""
        page = client.get(f"/?master={fleet['alpha']}").get_data(as_text=True)
        assert 'id="trail"' in page
        assert "Trail of alpha" in page
        assert "checked in 2 times" in page

    def test_the_fleet_as_of_a_moment(self, client: flask.testing.FlaskClient) -> None:
        """The form's moment shows the fleet as it stood; a bad moment says why (400)."""
        page = client.get("/?as_of=@8").get_data(as_text=True)
        assert 'id="fleet-as-of"' in page
        bad = client.get("/?as_of=nonsense")
        assert bad.status_code == 400
        assert "is not a moment" in bad.get_data(as_text=True)

    def test_the_last_verify_result(
        self, client: flask.testing.FlaskClient, registry: Registry
    ) -> None:
        """Before any verify the page says so; after one, it shows the result."""
        assert "not verified" in client.get("/").get_data(as_text=True)
        registry.verify()
        assert "verify ok" in client.get("/").get_data(as_text=True)

    def test_no_route_writes(self, client: flask.testing.FlaskClient, registry: Registry) -> None:
        """Reading every route leaves the log as it was; other methods are refused."""
        before = registry.log_position()
        for url in ("/", "/index.html", "/metrics", "/api/masters", "/timeline.svg", "/?master=1"):
            assert client.get(url).status_code == 200
            assert client.post(url).status_code == 405
        assert registry.log_position() == before


class TestTimelineRoute:
    def test_reads_only_the_window(
        self,
        client: flask.testing.FlaskClient,
        registry: Registry,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Two days on, the timeline reads no event before its 24-hour window (the fleet
        at the window's start comes from the index), and still draws every master."""
        clock.advance(2 * 86_400)
        reads: list[dict[str, object]] = []
        events = registry.events

        def counting(**kwargs: object) -> object:
            reads.append(kwargs)
            return events(**kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(registry, "events", counting)
        svg = client.get("/timeline.svg").get_data(as_text=True)
        whole = [r for r in reads if r.get("limit") != 1 and not r.get("after")]
        assert whole == []
        assert "charlie" in svg
        assert "alpha" in svg


class TestTrailLinks:
    def test_the_trail_names_the_links_a_stop_removed(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """A stop that deleted scheduler and change source links says which, on the page
        and in the CLI's summary of the event."""
        import sqlalchemy as sa

        from mastertrail.cli.render import event_summary

        master = registry.find_master_id("linked")
        registry.set_master_state(master, True)
        with registry.engine.begin() as conn:
            for table, column, ids in (
                ("scheduler_masters", "schedulerid", (7, 9)),
                ("changesource_masters", "changesourceid", (4,)),
            ):
                conn.execute(sa.text(f"CREATE TABLE {table} ({column} INTEGER, masterid INTEGER)"))
                for i in ids:
                    conn.execute(sa.text(f"INSERT INTO {table} VALUES ({i}, {master})"))
        registry.set_master_state(master, False)
        page = create_app(registry).test_client().get(f"/?master={master}").get_data(True)
        assert "unlinked schedulers 7, 9 and change sources 4" in page
        summary = event_summary(registry.history(master)[-1])
        assert "schedulers=7,9 changesources=4" in summary
