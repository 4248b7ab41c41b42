"""Times in the CLI's human output: dates in UTC and durations, never bare seconds."""

from __future__ import annotations

import pytest

from agentbazaar.cli._when import date, when
from agentbazaar.units import format_duration as duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (900, "15m"), (5400, "1h 30m"), (90_061, "1d 1h"),
     (604_800, "7d"), (-120, "2m")],
)  # fmt: skip
def test_duration(seconds: int, shown: str) -> None:
    assert duration(seconds) == shown


def test_date_and_when() -> None:
    assert date(0) == "1970-01-01 00:00:00 UTC"
    assert when(3600, 0) == "1970-01-01 01:00:00 UTC (in 1h)"
    assert when(0, 150) == "1970-01-01 00:00:00 UTC (2m 30s ago)"
    assert when(10, 10).endswith("(now)")
