"""Times as people read them: a date in UTC and a duration, never a bare Unix timestamp or a
count of seconds (``--json`` keeps the integers)."""

from __future__ import annotations

from datetime import UTC, datetime

from agentbazaar.units import format_duration


def date(timestamp: int) -> str:
    """``1764900000`` -> ``"2025-12-05 02:00:00 UTC"``."""
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(timestamp: int, now: int) -> str:
    """A date and how far it is from ``now`` (both on the same clock: the chain's, for chain
    times): ``"2025-12-05 02:00:00 UTC (in 1h 30m)"`` or ``"... (2m ago)"``."""
    delta = int(timestamp) - int(now)
    rel = (
        "now"
        if delta == 0
        else f"in {format_duration(delta)}"
        if delta > 0
        else f"{format_duration(delta)} ago"
    )
    return f"{date(timestamp)} ({rel})"
