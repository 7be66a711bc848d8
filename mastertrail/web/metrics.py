"""``/metrics``: the fleet in the Prometheus text format, built per scrape from a
:class:`~mastertrail.web.fleet.Fleet` (the view and the head; never a scan of the log).

Names follow Prometheus' conventions: a ``mastertrail_`` prefix, base units (seconds),
``_timestamp_seconds`` for points in time, gauges for what can go down.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mastertrail.web.fleet import Fleet

#: The kinds of stop of :mod:`projections.stops`, each a value of the ``how`` label.
STOP_KINDS = ("stopped", "found_dead", "expired_by_master", "expired_by_operator")


class FleetCollector(Collector):
    """Yields the metric families of one fleet reading."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        fleet = self.fleet
        masters = GaugeMetricFamily(
            "mastertrail_masters", "Masters by state, as the view holds them.", labels=["state"]
        )
        for state in ("active", "inactive"):
            masters.add_metric([state], fleet.count(state))
        yield masters

        active = GaugeMetricFamily(
            "mastertrail_master_active", "1 if the master is active, else 0.", labels=["master"]
        )
        last = GaugeMetricFamily(
            "mastertrail_master_last_active_timestamp_seconds",
            "When the master last checked in (or started), as a POSIX time.",
            labels=["master"],
        )
        silent = GaugeMetricFamily(
            "mastertrail_master_silent_seconds",
            "Seconds since an active master's last check-in.",
            labels=["master"],
        )
        stopped = GaugeMetricFamily(
            "mastertrail_master_deactivated_timestamp_seconds",
            "When an inactive master was deactivated, and how (label 'how').",
            labels=["master", "how"],
        )
        for row in fleet.rows:
            name = row.master.name
            active.add_metric([name], 1 if row.master.active else 0)
            last.add_metric([name], row.master.last_active.timestamp())
            if row.master.active:
                silent.add_metric([name], row.silence)
            if row.stop is not None:
                stopped.add_metric([name, row.stop.kind], row.stop.at.timestamp())
        yield from (active, last, silent, stopped)

        by_kind = GaugeMetricFamily(
            "mastertrail_masters_inactive",
            "Inactive masters by how they were last deactivated; expired_by_* are expirations.",
            labels=["how"],
        )
        for kind in STOP_KINDS:
            by_kind.add_metric([kind], sum(1 for r in fleet.rows if r.stop and r.stop.kind == kind))
        yield by_kind

        yield GaugeMetricFamily(
            "mastertrail_log_position", "Position of the newest event of the log.", fleet.position
        )
        verification = fleet.verification
        if verification is not None:
            yield GaugeMetricFamily(
                "mastertrail_verify_ok",
                "1 if the last verify found the log and the view sound, else 0.",
                1 if verification.ok else 0,
            )
            yield GaugeMetricFamily(
                "mastertrail_verify_timestamp_seconds",
                "When the last verify ran, as a POSIX time.",
                verification.checked_at.timestamp(),
            )
            yield GaugeMetricFamily(
                "mastertrail_verify_problems",
                "Problems the last verify found.",
                verification.problems,
            )
            yield GaugeMetricFamily(
                "mastertrail_verify_events_checked",
                "Events the last verify read.",
                verification.events_checked,
            )


def exposition(fleet: Fleet) -> bytes:
    """The Prometheus text exposition of ``fleet``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet))
    return generate_latest(registry)


__all__ = ["STOP_KINDS", "FleetCollector", "exposition"]
