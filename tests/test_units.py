"""Durations: one parser for every command and sentence ("15m", "2h", "7 days", "1.5 hours"),
whole seconds exactly; one formatter for what the CLI shows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentbazaar.errors import DurationError
from agentbazaar.units import SECONDS, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("15 min", 900), ("2h", 7200), ("2 hrs", 7200),
     ("3d", 259_200), ("1w", 604_800), ("7 days", 604_800), ("1.5 hours", 5400),
     ("12 months", 12 * 2_592_000), ("1 year", 31_536_000), (" 10 Seconds ", 10), ("1,000s", 1000),
     ("0", 0)],
)  # fmt: skip
def test_durations_read_the_same_in_every_form(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "soon", "5ms", "3 fortnights", "0.1 seconds", "-5m", "1e3s", "1.2.3h", "h"]
)
def test_what_is_not_a_duration_is_a_duration_error(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(SECONDS)))
def test_every_unit_and_its_plural(n: int, unit: str) -> None:
    assert parse_duration(f"{n} {unit}") == n * SECONDS[unit]
    assert parse_duration(f"{n} {unit}s") == n * SECONDS[unit]


@given(st.integers(min_value=0, max_value=10**8))
def test_format_shows_the_two_largest_units_and_never_more_than_there_is(seconds: int) -> None:
    shown = format_duration(seconds)
    parts = shown.split()
    assert 1 <= len(parts) <= 2
    total = sum(parse_duration(p) for p in parts)
    assert total <= seconds and (seconds - total) < 3_600 * 24  # what is dropped is below the 2nd
    if seconds < 86_400:
        assert seconds - total < 60 or len(parts) == 2
