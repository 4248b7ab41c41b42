"""A charge is written ahead of its handler (the disk syncs while the handler runs) and the
response still waits for it. Invariants, checked against crash images of the store (copies of the
SQLite files taken at the instants a kill -9 could hit):

- I1: every acknowledged charge is on disk: after a restart, charged >= what the buyer saw acked;
- I2: at most the one request in flight is on disk unacknowledged: charged - pending <= acked;
- I3: a buyer that goes on from what it saw acknowledged is accepted without a corrective 402,
  and the seller's charged total then equals the buyer's acknowledged total (nobody pays twice
  for one request, nobody is charged for a request whose response it never saw);
- I4: a failed handler charges nothing; a partial charge records exactly that amount;
- I5: the latest voucher on disk is signed by the payer and covers the charged total (claimable).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from channel_helpers import crash_image
from coincurve import PrivateKey
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agentbazaar.channels import ChannelEngine, ChannelRecord, ChannelStore, ChannelTerms
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.errors import VoucherRejected

BALANCE = 10**12
PRICES = st.sampled_from([1, 7, 1_000])


class Buyer:
    def __init__(self, terms: ChannelTerms) -> None:
        self.key = os.urandom(32)
        address = to_checksum_address(
            "0x" + cx.address_of(PrivateKey(self.key).public_key.format(False)[1:]).hex()
        )
        self.domain = cx.domain_separator(terms.chain_id, terms.contract)
        self.config = cx.ChannelConfig(
            address, address, terms.receiver, terms.receiver_authorizer, terms.token, 900,
            os.urandom(32),
        )  # fmt: skip
        self.cid = cx.channel_id(self.domain, self.config)
        self.acked = 0  # the cumulative charge of the last response this buyer received

    def voucher(self, ceiling: int) -> dict[str, Any]:
        sig = cx.sign(self.key, cx.voucher_digest(self.domain, self.cid, ceiling))
        return {
            "type": "voucher",
            "channelConfig": self.config.to_wire(),
            "voucher": {
                "channelId": "0x" + self.cid.hex(),
                "maxClaimableAmount": str(ceiling),
                "signature": "0x" + sig.hex(),
            },
        }


def terms() -> ChannelTerms:
    seller = to_checksum_address("0x" + "5e" * 20)
    return ChannelTerms(31337, seller, seller, to_checksum_address("0x" + "ab" * 20))


@settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
class WriteAheadMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="write-ahead-"))
        self.loop = asyncio.new_event_loop()
        self.terms = terms()
        self.buyer = Buyer(self.terms)
        store = ChannelStore(self.tmp / "seller.db")
        store.save(ChannelRecord(self.buyer.cid, self.buyer.config, balance=BALANCE))
        self.engine = ChannelEngine(store, self.terms)
        self.crashes = 0
        self.max_in_flight = 0  # the price of the request a crash interrupted (0: none)

    def teardown(self) -> None:
        self.engine.store.close()
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def seller(self) -> ChannelRecord:
        rec = self.engine.record(self.buyer.cid)
        assert rec is not None
        return rec

    def restart_from(self, image: Path) -> None:
        self.engine.store.close()
        self.engine = ChannelEngine(ChannelStore(image), self.terms)
        self.crashes += 1

    # ---- rules ----------------------------------------------------------------------------
    @rule(price=PRICES, outcome=st.sampled_from(["ok", "fail", "partial"]), cut=st.integers(0, 99))
    def request(self, price: int, outcome: str, cut: int) -> None:
        b = self.buyer
        before = self.seller().charged - self.seller().pending

        async def go() -> dict[str, Any] | None:
            ticket = await self.engine.begin(b.voucher(b.acked + price), price)
            if outcome == "fail":
                self.engine.abort(ticket)
                return None
            charge = price if outcome == "ok" else price * cut // 100
            return await self.engine.commit(ticket, charge)

        extra = self.run(go())
        if extra is None:  # I4: nothing charged, and the next voucher still starts from acked
            assert self.seller().charged - self.seller().pending <= max(before, b.acked)
            return
        charged = int(extra["channelState"]["chargedCumulativeAmount"])
        expect = b.acked + (price if outcome == "ok" else price * cut // 100)
        assert charged == expect == self.seller().charged  # I3 / I4
        assert int(extra["chargedAmount"]) == expect - b.acked
        b.acked = charged
        self.max_in_flight = 0

    @rule(price=PRICES)
    def crash_with_request_in_flight(self, price: int) -> None:
        """kill -9 after the charge reached the disk, before the response left."""
        b = self.buyer

        async def go() -> None:
            ticket = await self.engine.begin(b.voucher(b.acked + price), price)
            if ticket.durable is not None:
                await ticket.durable

        self.run(go())
        image = crash_image(self.engine.store, self.tmp / f"crash{self.crashes}")
        self.restart_from(image)
        self.max_in_flight = max(self.max_in_flight, price)

    @rule(price=PRICES)
    def crash_after_response(self, price: int) -> None:
        """kill -9 after the response left, before the confirmation of the charge was written."""
        b = self.buyer

        async def go() -> Path:
            ticket = await self.engine.begin(b.voucher(b.acked + price), price)
            if ticket.durable is not None:
                await ticket.durable
            image = crash_image(self.engine.store, self.tmp / f"crash{self.crashes}")
            extra = await self.engine.commit(ticket)
            b.acked = int(extra["channelState"]["chargedCumulativeAmount"])
            return image

        self.restart_from(self.run(go()))

    @rule()
    def crash_idle(self) -> None:
        self.engine.store.flush()
        self.restart_from(crash_image(self.engine.store, self.tmp / f"crash{self.crashes}"))

    @rule()
    def replay_an_old_voucher(self) -> None:
        """A voucher already paid for (or one below the charged total) is refused."""
        b = self.buyer
        if b.acked == 0:
            return

        async def go() -> None:
            await self.engine.begin(b.voucher(b.acked), 1)

        rec = self.seller()
        if rec.pending and rec.charged - rec.pending + 1 == b.acked:
            return  # (that is this buyer's retry of the in-flight request: accepted, tested above)
        with pytest.raises(VoucherRejected):
            self.run(go())

    # ---- invariants -----------------------------------------------------------------------
    @invariant()
    def acknowledged_charges_are_on_disk(self) -> None:
        rec = self.seller()
        assert rec.charged >= self.buyer.acked  # I1
        assert rec.charged - rec.pending <= self.buyer.acked  # I2
        assert rec.charged <= self.buyer.acked + self.max_in_flight

    @invariant()
    def latest_voucher_is_claimable(self) -> None:
        rec = self.seller()
        if rec.signed_max == 0:
            return
        digest = cx.voucher_digest(self.buyer.domain, self.buyer.cid, rec.signed_max)
        assert cx.recover(digest, rec.signature) == bytes.fromhex(self.buyer.config.payer[2:])
        assert rec.signed_max >= rec.charged  # I5

    @invariant()
    def no_request_is_left_holding_its_channel(self) -> None:
        assert self.engine.store.in_flight == 0  # every ticket was committed or aborted
        assert not any(lock.locked() for lock in self.engine._locks.values())

    @invariant()
    def disk_agrees_once_flushed(self) -> None:
        self.engine.store.flush()
        on_disk = self.engine.store.get(self.buyer.cid)
        assert on_disk is not None and on_disk.charged >= self.buyer.acked


TestWriteAhead = WriteAheadMachine.TestCase


def test_a_store_from_before_write_ahead_opens_with_nothing_pending(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    b = Buyer(terms())
    old = sqlite3.connect(db)
    old.execute(
        "CREATE TABLE channels (channel_id TEXT PRIMARY KEY, config TEXT NOT NULL, charged TEXT "
        "NOT NULL, signed_max TEXT NOT NULL, signature BLOB NOT NULL, balance TEXT NOT NULL, "
        "total_claimed TEXT NOT NULL, withdraw_requested_at INTEGER NOT NULL, refund_nonce TEXT "
        "NOT NULL, synced_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL)"
    )
    import json

    old.execute(
        "INSERT INTO channels VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        ("0x" + b.cid.hex(), json.dumps(b.config.to_wire()), "5000", "5000", b"", "9000", "0",
         0, "0", 0, 0),
    )  # fmt: skip
    old.commit()
    old.close()
    store = ChannelStore(db)
    try:
        rec = store.load_all()[b.cid]
        assert (rec.charged, rec.pending, rec.balance) == (5000, 0, 9000)
        store.save(rec.evolve(charged=6000, pending=1000))
        again = store.get(b.cid)
        assert again is not None and (again.charged, again.pending) == (6000, 1000)
    finally:
        store.close()


def test_a_failed_handler_is_written_back_before_the_next_charge(tmp_path: Path) -> None:
    """The undo of a failed request is queued behind its written-ahead charge and ahead of the
    next request's: the disk never keeps the failed charge once the store is flushed."""
    t = terms()
    b = Buyer(t)
    store = ChannelStore(tmp_path / "seller.db")
    store.save(ChannelRecord(b.cid, b.config, balance=BALANCE))
    engine = ChannelEngine(store, t)

    async def go() -> None:
        ticket = await engine.begin(b.voucher(1_000), 1_000)
        assert ticket.durable is not None
        await ticket.durable
        on_disk = store.get(b.cid)
        assert on_disk is not None and (on_disk.charged, on_disk.pending) == (1_000, 1_000)
        engine.abort(ticket)

    try:
        asyncio.run(go())
        store.flush()
        on_disk = store.get(b.cid)
        assert on_disk is not None and (on_disk.charged, on_disk.pending) == (0, 0)
    finally:
        store.close()
