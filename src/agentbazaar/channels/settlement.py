"""The seller's claim-and-settle loop.

A channel is claimed when its unclaimed charges reach a threshold, when it has waited a period
since its last claim, and at once when its payer starts a timed withdrawal (the seller must claim
before the delay ends, or the payer can take back escrow that vouchers promised). Up to
`max_claims` channels go into one `claim` transaction; `settle` then sweeps everything claimed to
the receiver in one token transfer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from agentbazaar.channels.engine import ChannelEngine
from agentbazaar.channels.onchain import ChannelContracts
from agentbazaar.channels.store import ChannelRecord


@dataclass(frozen=True)
class ClaimPolicy:
    threshold: int = 1_000_000  # base units unclaimed on one channel that trigger a claim
    period_s: float = 60.0  # claim anything unclaimed this long after the channel's last claim
    max_claims: int = 100  # channels per claim transaction
    settle: bool = True  # sweep claimed funds to the receiver after claiming


@dataclass
class ClaimReport:
    claimed: list[bytes] = field(default_factory=list)  # channel ids claimed
    amount: int = 0  # base units newly claimed
    transactions: list[str] = field(default_factory=list)
    urgent: set[bytes] = field(default_factory=set)  # channels with a withdrawal started


class ClaimLoop:
    def __init__(
        self, engine: ChannelEngine, contracts: ChannelContracts, policy: ClaimPolicy | None = None
    ) -> None:
        self.engine = engine
        self.contracts = contracts
        self.policy = policy or ClaimPolicy()
        self._last_claim: dict[bytes, float] = {}
        self._from_block = 0

    def due(self, now: float, urgent: set[bytes]) -> list[ChannelRecord]:
        out = []
        for rec in self.engine.records():
            if rec.unclaimed <= 0:
                continue
            since = now - self._last_claim.setdefault(rec.channel_id, now)
            if (
                rec.channel_id in urgent
                or rec.withdraw_requested_at
                or rec.unclaimed >= self.policy.threshold
                or since >= self.policy.period_s
            ):
                out.append(rec)
        return out

    async def tick(self, *, force: bool = False) -> ClaimReport:
        """One pass: find withdrawals, claim what is due (everything with ``force``), settle."""
        urgent, changed, self._from_block = await asyncio.to_thread(
            self.contracts.channel_events_since, self._from_block
        )
        now = time.monotonic()
        if force:
            due = [r for r in self.engine.records() if r.unclaimed > 0]
        else:
            due = self.due(now, urgent)
        due = [c for c in (_claim_of(r, urgent) for r in due) if c is not None]
        report = ClaimReport(urgent=urgent)
        for start in range(0, len(due), self.policy.max_claims):
            batch = due[start : start + self.policy.max_claims]
            tx = await asyncio.to_thread(self.contracts.claim, batch)
            report.transactions.append(tx)
            for rec in batch:
                state = await self.contracts.read_state(rec.channel_id)
                await self.engine.mirror(rec.channel_id, state)
                self._last_claim[rec.channel_id] = now
                report.claimed.append(rec.channel_id)
                report.amount += rec.charged - rec.total_claimed
        for cid in changed - set(report.claimed):  # withdrawals, refunds, others' deposits
            if self.engine.record(cid) is not None:
                await self.engine.mirror(cid, await self.contracts.read_state(cid))
        if report.claimed and self.policy.settle:
            terms = self.engine.terms
            tx = await asyncio.to_thread(self.contracts.settle, terms.receiver, terms.token)
            report.transactions.append(tx)
        return report

    async def run(self, stop: asyncio.Event, *, interval_s: float = 1.0) -> None:
        """Tick every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            await self.tick()
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass


def _claim_of(rec: ChannelRecord, urgent: set[bytes]) -> ChannelRecord | None:
    """What to claim of ``rec``: its charged total, except a charge left pending by a crash (its
    response may never have reached the buyer, whose next voucher can still void it): that part
    waits until the buyer settles it or starts a withdrawal. The latest voucher covers both."""
    if rec.pending and not (rec.channel_id in urgent or rec.withdraw_requested_at):
        rec = rec.evolve(charged=rec.charged - rec.pending, pending=0)
    return rec if rec.charged > rec.total_claimed else None
