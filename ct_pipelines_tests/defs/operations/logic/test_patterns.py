from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ct_pipelines.defs.operations.logic.patterns import (
    CheckFailure,
    check_subjects,
    failure_patterns,
)
from ct_pipelines.store import IntegrationStore

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[IntegrationStore, Clock]]:
    clock = Clock(NOW)
    store = IntegrationStore(f"sqlite:///{tmp_path / 'patterns.db'}", clock=clock)
    store.migrate()
    yield store, clock
    store.close()


def inject(store: IntegrationStore, clock: Clock) -> None:
    """25 failures on one SKU and one channel over a week, 15 scattered ones as background."""
    for n in range(25):
        clock.moment = NOW - timedelta(days=n % 6, hours=(n * 5) % 24)
        store.record_exception(
            flow="order_to_cash" if n % 2 else "inventory",
            entity_key=f"UK-{1000 + n}",
            category="unknown_sku" if n % 3 else "validation",
            reason="SKU LMP-BRASS-E27 is not an ERP item",
            sku="LMP-BRASS-E27",
            channel="store-london",
        )
    channels = ["web-uk", "warehouse-man", "warehouse-mk", "marketplace"]
    for n in range(15):
        clock.moment = NOW - timedelta(days=n % 10, hours=(n * 7) % 24)
        store.record_exception(
            flow=["order_to_cash", "dispatch", "inventory"][n % 3],
            entity_key=f"X-{n}",
            category=["unknown_sku", "validation", "transient_exhausted"][n % 3],
            reason="something else",
            sku=f"SKU-{n}",
            details={"channel": channels[n % 4]},
        )


def test_concentrated_failures_name_the_sku_and_the_channel_first(clocked) -> None:
    store, clock = clocked
    inject(store, clock)

    report = failure_patterns(store.list_exceptions(), [], now=NOW, tz=LONDON)

    assert report.failures == 40
    assert report.top("sku") == "LMP-BRASS-E27"
    assert report.top("channel") == "store-london"
    assert [row["dimension"] for row in report.patterns.head(2).to_dict("records")] == [
        "sku",
        "channel",
    ]
    assert "LMP-BRASS-E27" in report.headline[0] and "store-london" in report.headline[1]
    sku = report.patterns[report.patterns["value"] == "LMP-BRASS-E27"].iloc[0]
    assert sku["failures"] == 25 and sku["open_exceptions"] == 25
    markdown = report.markdown()
    assert markdown.index("LMP-BRASS-E27") < markdown.index("store-london")


def test_an_hour_of_the_day_stands_out_and_trends_compare_weeks(clocked) -> None:
    store, clock = clocked
    for n in range(12):
        # Every night at 02:xx London time, mostly this week.
        day = NOW.astimezone(LONDON).replace(hour=2, minute=n) - timedelta(days=n % 9)
        clock.moment = day.astimezone(UTC)
        store.record_exception(
            flow="dispatch", entity_key=f"SH{n}", category="transient_exhausted", reason="503"
        )
    for n in range(6):
        clock.moment = NOW - timedelta(hours=3 + n * 3)
        store.record_exception(
            flow="dispatch", entity_key=f"SH-day{n}", category="transient_exhausted", reason="503"
        )

    report = failure_patterns(store.list_exceptions(), [], now=NOW, tz=LONDON)

    assert report.top("hour_of_day") == "02:00"
    night = report.patterns[report.patterns["value"] == "02:00"].iloc[0]
    assert night["last_7_days"] + night["previous_7_days"] == 12
    assert night["trend"] == "rising"


def test_failed_checks_count_with_the_skus_and_channels_they_name() -> None:
    skus, channels = check_subjects(
        {"skus": {"TSH-RED-M": 4, "MUG-BLUE": 0}, "drifted:store-london": 9, "drifted:web": 0}
    )
    assert skus == ("TSH-RED-M",) and channels == ("store-london",)
    failures = [
        CheckFailure(
            NOW - timedelta(hours=n),
            "inventory",
            "inventory_snapshots",
            "inventory_drift",
            "ERROR",
            channels=("store-london",) if n < 5 else ("web-uk",) if n < 6 else ("mk",),
        )
        for n in range(7)
    ]
    report = failure_patterns([], failures, now=NOW, tz=LONDON)
    assert report.top("channel") == "store-london"
    assert report.patterns.iloc[0]["flows"] == "inventory"


def test_nothing_to_report_is_said_plainly() -> None:
    report = failure_patterns([], [], now=NOW, tz=LONDON)
    assert report.failures == 0 and report.patterns.empty
    assert "No pattern" in report.markdown()
