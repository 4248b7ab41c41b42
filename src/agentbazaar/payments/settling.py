"""Exactly-once settlement of one authorization in one transaction, for the facilitator's handlers.

``OnchainSettler.settle`` runs the life ``SettlementStore`` records (``store.py``):

    claim the key  ->  prepare (checks, a counterfactual wallet's deployment, the transaction)
                   ->  sign; record the hash and raw bytes  ->  broadcast  ->  receipt  ->  finish
        \\-> release the claim when nothing was signed (a check failed, the simulation reverted)

Verify reserves the key first (``reserve``: one lease per authorization until it expires, bound
to its signature, the same reservation protocol as ``exact.py``'s), so of any number of
concurrent or repeated verifies of one authorization - across routes and seller processes - one
is told yes and the others ``authorization_in_use`` (or the replay reason once it is settled);
``release`` gives the lease back when the seller served nothing, and settle claims it.

A settle of a key already claimed returns the first result (or waits for it); concurrent settles
of the same key in this process share one task, and across processes the store's claim decides.
A repeat must name the same authorization (signature) and the same amount, else it is refused:
an ``upto`` authorization settles once, for one amount. ``recover`` finishes what a crash left:
claims that never signed are released, signed transactions are re-broadcast and resolved.

Each transaction calls one contract that reverts unless the whole payment happened (the x402
Permit2 proxies, EIP-3009 ``transferWithAuthorization``), so a mined receipt with status 1 is
the proof of payment.

Nothing known to revert is broadcast: the transaction is simulated (gas estimation against the
latest state) right before it is signed, never skipped because verify simulated it earlier; a
payer whose settlements fail that way, or revert on chain, is throttled (``PayerThrottle``,
shared with the EIP-3009 handler: ``PayerThrottle.check`` refuses its verifies with
``payer_throttled``), and ``metrics.not_broadcast`` counts the refusals.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.types import TxParams
from x402.mechanisms.evm import constants as c
from x402.schemas import SettleResponse

from agentbazaar.chain import Chain
from agentbazaar.errors import BazaarError, ChainUnavailable, TransactionReverted
from agentbazaar.payments.errors import Rejected
from agentbazaar.payments.permit2 import ERR_INVALID_NONCE
from agentbazaar.payments.reasons import ERR_AUTHORIZATION_IN_USE
from agentbazaar.payments.store import (
    FAILED,
    SENT,
    SETTLED,
    Lease,
    SettlementKey,
    SettlementRecord,
    SettlementStore,
)
from agentbazaar.payments.throttle import PayerThrottle

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settlement:
    """One authorization to settle: its store key, who pays whom how much, and the signature
    that identifies it (a repeat with another signature or amount is refused)."""

    key: SettlementKey
    network: str
    payer: str
    pay_to: str
    amount: int
    signature: str
    replay_reason: str  # the x402 reason when the key is already used by something else


Prepare = Callable[[], Mapping[str, Any] | None]
Diagnose = Callable[[TransactionReverted], str]


@dataclass
class SettleMetrics:
    settled: int = 0
    failed: int = 0
    rejected: int = 0
    repeats: int = 0
    not_broadcast: int = 0  # settlements refused because their simulation reverted


# how long a node answering eth_sendRawTransactionSync may take to mine before we poll instead
SYNC_SEND_WAIT_S = 0.25

# reasons that are the payer's doing (funds or allowance moved away, nonce spent elsewhere)
PAYER_FAULTS = frozenset(
    {
        c.ERR_INSUFFICIENT_BALANCE,
        c.ERR_NONCE_ALREADY_USED,
        c.ERR_PERMIT2_INSUFFICIENT_BALANCE,
        c.ERR_PERMIT2_ALLOWANCE_REQUIRED,
        ERR_INVALID_NONCE,
    }
)


class OnchainSettler:
    """Sends each authorization's settlement transaction once, as ``account`` (the gas wallet)."""

    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        store: SettlementStore,
        executor: Executor,
        *,
        receipt_timeout: float = 30.0,
        throttle: PayerThrottle | None = None,
    ) -> None:
        self.chain = chain
        self.account = account
        self.store = store
        self.receipt_timeout = receipt_timeout
        self.metrics = SettleMetrics()
        self.throttle = PayerThrottle() if throttle is None else throttle  # (an empty one is falsy)
        self._executor = executor
        self._inflight: dict[SettlementKey, tuple[Settlement, asyncio.Task[SettleResponse]]] = {}

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # ---- the reservation (verify) -----------------------------------------------------------
    def reserve(self, s: Settlement, until: float) -> str:
        """Lease ``s``'s authorization to the request being verified until ``until`` (its
        expiry); returns the lease token. ``Rejected`` when another request holds it (or it is
        settled): never two leases at once. Runs in the thread pool."""
        lease = Lease(s.signature, "", secrets.token_hex(16), until, s.pay_to, s.amount)
        holder = self.store.reserve(s.key, lease)
        if holder is not None:
            raise held(holder, s.signature, s.payer, s.replay_reason)
        return lease.token

    def release(self, key: SettlementKey, token: str) -> bool:
        """Give back the lease ``token`` of ``key`` (the seller served nothing)."""
        return self.store.release(key, lease=token)

    # ---- settle ---------------------------------------------------------------------------
    async def settle(
        self, s: Settlement, prepare: Prepare, diagnose: Diagnose | None = None
    ) -> SettleResponse:
        """Settle ``s`` once. ``prepare`` (run in the thread pool after the claim) checks what
        needs the chain and returns the transaction (``to``, ``data``; None: nothing to send,
        a zero settlement); it raises ``Rejected`` to refuse. ``diagnose`` names the reason
        of a transaction whose simulation reverted."""
        running = self._inflight.get(s.key)
        if running is None:
            # its own task: a caller that goes away does not cancel a settlement under way,
            # and concurrent settles of the same authorization share it
            task = asyncio.get_running_loop().create_task(self._settle_new(s, prepare, diagnose))
            self._inflight[s.key] = (s, task)
            task.add_done_callback(lambda _: self._inflight.pop(s.key, None))
            return await asyncio.shield(task)
        self.metrics.repeats += 1
        first, task = running
        result = await asyncio.shield(task)
        if (first.signature.lower(), first.amount) != (s.signature.lower(), s.amount):
            self.metrics.rejected += 1  # the same authorization, asked for something else
            message = "this authorization is being settled otherwise"
            return fail(s.network, s.replay_reason, message, s.payer)
        return result

    async def _settle_new(
        self, s: Settlement, prepare: Prepare, diagnose: Diagnose | None
    ) -> SettleResponse:
        prior = await self.run(
            lambda: self.store.claim(s.key, signature=s.signature, pay_to=s.pay_to, amount=s.amount)
        )
        if prior is not None:
            self.metrics.repeats += 1
            return await self._answer_existing(s, prior)
        try:
            sent = await self.run(lambda: self._prepare_and_send(s, prepare, diagnose))
        except Rejected as exc:
            self.metrics.rejected += 1
            return fail(s.network, exc.reason, exc.message, s.payer)
        if sent is None:  # a zero settlement: recorded, nothing sent
            self.metrics.settled += 1
            return ok(s.network, s.payer, "", 0)
        return await self._await_result(s, *sent)

    def _prepare_and_send(
        self, s: Settlement, prepare: Prepare, diagnose: Diagnose | None
    ) -> tuple[str, int | None] | None:
        """The transaction's hash and, when the node returned its receipt with the broadcast,
        its status; None for a zero settlement (nothing sent)."""
        try:
            tx = prepare()
        except Exception:
            self.store.release(s.key)
            raise
        if tx is None:
            self.store.finish(s.key, success=True, tx_hash="", reason=None)
            return None

        def record(tx_hash: HexBytes, raw: bytes) -> None:
            self.store.mark_sent(s.key, tx_hash.to_0x_hex(), raw)

        try:
            sent, receipt = self.chain.send_for_receipt(
                self.account,
                cast(TxParams, dict(tx)),
                wait_s=SYNC_SEND_WAIT_S,
                action="settle",
                on_signed=record,
            )
        except TransactionReverted as exc:  # the estimate (a simulation) reverted: nothing sent
            self.store.release(s.key)
            reason = diagnose(exc) if diagnose is not None else c.ERR_TRANSACTION_FAILED
            self.metrics.not_broadcast += 1
            if reason in PAYER_FAULTS:
                self.throttle.record_failure(s.payer)
            raise Rejected(reason, str(exc), s.payer) from exc
        except BazaarError as exc:
            return self._after_send_error(s, exc), None
        return sent.to_0x_hex(), None if receipt is None else int(str(receipt["status"]), 16)

    def _after_send_error(self, s: Settlement, exc: BazaarError) -> str:
        """The broadcast failed: nothing signed -> release; signed but refused by the node ->
        failed; node unreachable after signing -> keep it ``sent`` (recovery re-broadcasts)."""
        current = self.store.get(s.key)
        if current is None or current.status != SENT or not current.tx_hash:
            self.store.release(s.key)
            raise Rejected(c.ERR_TRANSACTION_FAILED, str(exc), s.payer) from exc
        if not isinstance(exc, ChainUnavailable):
            self.store.finish(
                s.key, success=False, tx_hash=current.tx_hash, reason=c.ERR_TRANSACTION_FAILED
            )
            raise Rejected(c.ERR_TRANSACTION_FAILED, str(exc), s.payer) from exc
        return current.tx_hash

    async def _answer_existing(self, s: Settlement, record: SettlementRecord) -> SettleResponse:
        if record.signature != s.signature.lower() or record.amount != s.amount:
            self.metrics.rejected += 1
            message = "this authorization is already settled (or being settled) otherwise"
            return fail(s.network, s.replay_reason, message, s.payer)
        if record.status == FAILED:
            reason = record.reason or c.ERR_TRANSACTION_FAILED
            return fail(s.network, reason, "settlement failed", s.payer, record.tx_hash or "")
        if record.final:
            return ok(s.network, s.payer, record.tx_hash or "", record.amount)
        if record.status == SENT and record.tx_hash:
            return await self._await_result(s, record.tx_hash)
        return fail(s.network, c.ERR_SETTLEMENT_PENDING, "settlement in progress", s.payer)

    async def _await_result(
        self, s: Settlement, tx_hash: str, status: int | None = None
    ) -> SettleResponse:
        if status is None:
            receipt = await self._await_receipt(tx_hash)
            if receipt is None:
                message = "no receipt yet; settle again to get the result"
                return fail(s.network, c.ERR_SETTLEMENT_PENDING, message, s.payer, tx_hash)
            status = int(receipt["status"])
        success = status == 1
        reason = None if success else c.ERR_TRANSACTION_FAILED
        await self.run(
            lambda: self.store.finish(s.key, success=success, tx_hash=tx_hash, reason=reason)
        )
        if success:
            self.metrics.settled += 1
            return ok(s.network, s.payer, tx_hash, s.amount)
        self.metrics.failed += 1
        self.throttle.record_failure(s.payer)
        return fail(
            s.network, c.ERR_TRANSACTION_FAILED, "the settlement reverted", s.payer, tx_hash
        )

    async def _await_receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.002
        while True:
            try:
                receipt = await self.run(lambda: self.chain.receipt(tx_hash))
            except Exception:  # unreachable for now: keep waiting until the deadline
                receipt = None
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    # ---- reads, metrics, recovery ------------------------------------------------------------
    def used(self, key: SettlementKey) -> bool:
        """Is ``key`` claimed or settled (a verify of it would be a replay)?"""
        record = self.store.get(key)
        return record is not None and record.status != FAILED

    def metrics_snapshot(self) -> dict[str, int]:
        counts = self.store.counts()
        m = self.metrics
        return {
            "settled": m.settled,
            "failed": m.failed,
            "rejected": m.rejected,
            "repeats": m.repeats,
            "pending": counts["claimed"] + counts[SENT],
            "stored_settled": counts["settled"],
            "stored_failed": counts[FAILED],
        }

    def recover(self) -> int:
        """Release claims that never signed; re-broadcast and resolve signed ones. Returns the
        number resolved."""
        for record in self.store.with_status("claimed"):
            self.store.release(record.key)
        done = 0
        for record in self.store.with_status(SENT):
            if record.tx_hash is None or record.raw_tx is None:
                continue
            try:
                if self.chain.receipt(record.tx_hash) is None:
                    self.chain.broadcast_raw(record.raw_tx, action="re-broadcast a settlement")
                receipt = self.chain.wait_for_receipt(record.tx_hash, action="recovered settle")
                success = int(receipt["status"]) == 1
            except TransactionReverted:
                success = False
            except BazaarError as exc:  # not resolvable now: stays sent; a repeat waits for it
                log.warning("settlement %s not recovered yet: %s", record.tx_hash, exc)
                continue
            reason = None if success else c.ERR_TRANSACTION_FAILED
            self.store.finish(record.key, success=success, tx_hash=record.tx_hash, reason=reason)
            done += 1
        return done


def held(holder: SettlementRecord, signature: str, payer: str, replay_reason: str) -> Rejected:
    """Why an authorization held by ``holder`` cannot be taken by another request: settled or
    signed otherwise -> ``replay_reason``; the same authorization under way ->
    ``authorization_in_use``."""
    if holder.status == SETTLED:
        return Rejected(replay_reason, "authorization already settled", payer)
    if holder.signature != signature.lower():
        return Rejected(replay_reason, "nonce used by another authorization", payer)
    return Rejected(
        ERR_AUTHORIZATION_IN_USE,
        "another request is being served with this authorization; "
        "retry the same request later, or sign a new payment",
        payer,
    )


def ok(network: str, payer: str, tx: str, amount: int) -> SettleResponse:
    return SettleResponse(
        success=True, payer=payer, transaction=tx, network=network, amount=str(amount)
    )


def fail(
    network: str, reason: str, message: str, payer: str | None, tx: str = ""
) -> SettleResponse:
    return SettleResponse(
        success=False,
        error_reason=reason,
        error_message=message,
        payer=payer,
        transaction=tx,
        network=network,
    )
