"""Throttle payers whose payments keep failing after verify (the facilitator's gas-griefing guard).

A payer who moves its funds away between verify and settle makes every settlement it reaches
fail; the facilitator never broadcasts one it knows would revert (it simulates right before
sending), but each attempt still costs a verify, a simulation and a handler run at the seller.
``PayerThrottle`` counts such failures per payer in a sliding window and refuses the payer's
next verifies (``payer_throttled``) while it has ``max_failures`` or more in the window.

Memory is bounded: at most ``max_payers`` payers are tracked (the least recently failing are
forgotten first), each with at most ``max_failures`` timestamps.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from agentbazaar.payments.errors import Rejected
from agentbazaar.payments.reasons import ERR_PAYER_THROTTLED

__all__ = ["ERR_PAYER_THROTTLED", "PayerThrottle"]


class PayerThrottle:
    """Per-payer failure counts in a sliding window, bounded in memory; thread-safe."""

    def __init__(
        self,
        *,
        max_failures: int = 3,
        window_s: float = 600.0,
        max_payers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_payers = max_payers
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()
        self.refused = 0  # verifies refused because the payer was throttled

    def record_failure(self, payer: str) -> None:
        """One settlement of ``payer`` failed (refused before sending, or reverted)."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(payer.lower(), None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[payer.lower()] = times
            while len(self._failures) > self.max_payers:
                self._failures.popitem(last=False)

    def throttled(self, payer: str) -> bool:
        """Is ``payer`` over the limit now? (counts a refusal when it is)"""
        now = self._clock()
        with self._lock:
            times = self._failures.get(payer.lower())
            if times is None:
                return False
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if not times:
                del self._failures[payer.lower()]
                return False
            if len(times) < self.max_failures:
                return False
            self.refused += 1
            return True

    def check(self, payer: str) -> None:
        """``Rejected`` (``payer_throttled``) while ``payer`` is over the limit (verify calls it)."""
        if self.throttled(payer):
            wait = int(self.retry_after(payer)) + 1
            message = f"too many failed settlements from this payer; try again in {wait} s"
            raise Rejected(ERR_PAYER_THROTTLED, message, payer)

    def retry_after(self, payer: str) -> float:
        """Seconds until ``payer``'s oldest counted failure leaves the window (0 if none)."""
        with self._lock:
            times = self._failures.get(payer.lower())
            if not times:
                return 0.0
            return max(0.0, times[0] + self.window_s - self._clock())

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)
