"""The ``exact`` scheme on EVM chains (EIP-3009 ``transferWithAuthorization``), facilitator side.

Invariant: ONE AUTHORIZATION, ONE SERVED REQUEST. A seller serves a paid request only after
``verify`` said yes, so ``verify`` is where exclusivity lives. For one authorization (network,
asset, payer, nonce), whatever the concurrency, the routes, and the number of seller processes
sharing this facilitator:

1. ``verify`` atomically *reserves* the authorization in the durable ``SettlementStore``: a lease
   bound to the terms it was verified for (a digest of the requirement), with a random token
   returned in ``VerifyResponse.extra["reservation"]``, held until the authorization's
   ``validBefore`` (after which nobody can settle it). At most one lease exists at a time: a
   verify while it is held (or while its settlement runs) is refused ``authorization_in_use``;
   after settlement ``invalid_exact_evm_nonce_already_used``. The lease is never handed to
   another request before ``validBefore`` unless its holder gives it back, so two holders can
   never both settle and both serve.
2. ``release(payload, requirements, token)`` gives the lease back when the seller's handler
   failed (our paywall does it; a seller built only on the SDK falls back to expiry).
3. ``settle`` settles only the reserved authorization, for the terms it was reserved for (a
   settle that comes without a verify reserves and claims in one step; it serves nobody). A
   repeat of a settle answers the first result with the same transaction.
4. Nothing is broadcast that is known to revert: the transfer is simulated against the latest
   state right before it is signed and sent (the payer may have moved its funds since verify);
   payers whose settlements fail that way, or revert on chain, are throttled
   (``payer_throttled``, ``agentbazaar.payments.throttle``), and ``/metrics`` counts both.

Pure checks (shape, network, payTo, amount, validity window, EIP-712 signature) run without any
chain call. Chain calls run in a thread pool and receipts are awaited with ``asyncio.sleep``
between polls, so the event loop never blocks and concurrent settlements share one nonce
sequence (``Chain`` reserves nonces per sender). Settlement is durable: the claim is recorded
before signing and the signed transaction before broadcasting; start-up recovery finishes what a
crash left.
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
from web3.contract import Contract
from web3.types import RPCEndpoint, TxParams
from x402.mechanisms.evm import constants as c
from x402.mechanisms.evm.exact.eip3009_utils import verify_eip3009_transfer_event
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse

from agentbazaar.chain import Chain, to_address
from agentbazaar.errors import BazaarError, ChainUnavailable, TransactionReverted
from agentbazaar.payments.eip3009 import (
    TOKEN_ABI,
    Authorization,
    authorization_used,
    check_requirements,
    map_revert,
    parse_authorization,
    payer_hint,
    recover_payer,
    terms_digest,
    transfer_calldata,
)
from agentbazaar.payments.errors import Rejected
from agentbazaar.payments.reasons import ERR_AUTHORIZATION_IN_USE
from agentbazaar.payments.settling import PAYER_FAULTS, SYNC_SEND_WAIT_S, held
from agentbazaar.payments.store import (
    CLAIMED,
    FAILED,
    RESERVED,
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

SETTLE_GAS_LIMIT = 150_000  # transferWithAuthorization uses ~65k (~85k to a new recipient)
PURGE_EVERY_S = 60.0  # how often verify drops reservations whose authorization expired
# settlement failures that are the payer's doing (funds moved away, nonce spent elsewhere)


# ---- the handler ---------------------------------------------------------------------------
@dataclass
class Metrics:
    settled: int = 0
    failed: int = 0
    rejected: int = 0
    verified: int = 0
    repeats: int = 0
    in_use: int = 0  # verifies refused: another request holds the authorization
    released: int = 0  # reservations given back by a seller whose handler failed
    not_broadcast: int = 0  # settlements refused because their simulation reverted


class ExactEvmHandler:
    """Facilitator handler for scheme ``exact`` on one EVM chain."""

    scheme = c.SCHEME_EXACT

    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        store: SettlementStore,
        executor: Executor,
        *,
        assets: frozenset[str] | None = None,
        receipt_timeout: float = 30.0,
        throttle: PayerThrottle | None = None,
    ) -> None:
        self.chain = chain
        self.account = account
        self.store = store
        self.assets = assets
        self.receipt_timeout = receipt_timeout
        self.throttle = PayerThrottle() if throttle is None else throttle  # (an empty one is falsy)
        self.metrics = Metrics()
        self._executor = executor
        self._inflight: dict[tuple[SettlementKey, str, str], asyncio.Task[SettleResponse]] = {}
        self._contracts: dict[str, Contract] = {}
        self._purged = time.monotonic()

    # ---- facts -----------------------------------------------------------------------
    @property
    def networks(self) -> frozenset[str]:
        return frozenset({self.chain.network})

    def signers(self) -> list[str]:
        return [self.account.address]

    def extra(self, network: str) -> dict[str, Any] | None:
        return None

    def _token(self, address: str) -> Contract:
        key = address.lower()
        if key not in self._contracts:
            self._contracts[key] = self.chain.contract(address, TOKEN_ABI)
        return self._contracts[key]

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # ---- verify ----------------------------------------------------------------------
    def _checked(self, payload: PaymentPayload, req: PaymentRequirements) -> Authorization:
        auth = parse_authorization(payload.payload)
        check_requirements(
            payload, req, auth, networks=self.networks, assets=self.assets, now=int(time.time())
        )
        extra = req.extra or {}
        signer = recover_payer(
            auth, self.chain.chain_id, req.asset, str(extra["name"]), str(extra["version"])
        )
        if signer.lower() != auth.payer.lower():
            raise Rejected(c.ERR_INVALID_SIGNATURE, "signed by another key", auth.payer)
        return auth

    def _key(self, req: PaymentRequirements, auth: Authorization) -> SettlementKey:
        return SettlementKey.of(req.network, req.asset, auth.payer, auth.nonce_hex)

    def _transfer_fn(self, req: PaymentRequirements, auth: Authorization) -> Any:
        v, r, s = auth.vrs
        return self._token(req.asset).functions.transferWithAuthorization(
            to_address(auth.payer),
            to_address(auth.to),
            auth.value,
            auth.valid_after,
            auth.valid_before,
            auth.nonce,
            v,
            r,
            s,
        )

    def _simulate(self, req: PaymentRequirements, auth: Authorization) -> None:
        if self.chain.url is not None:  # an RPC node: one raw eth_call, no client-side overhead
            call = {"from": self.account.address, "to": req.asset, "data": transfer_calldata(auth)}
            try:
                response = self.chain.w3.provider.make_request(
                    RPCEndpoint("eth_call"), [call, "latest"]
                )
            except Exception as exc:
                raise Rejected(
                    c.ERR_TRANSACTION_SIMULATION_FAILED, f"chain unreachable: {exc}", auth.payer
                ) from exc
            error = response.get("error")
            if error:
                text = str(error.get("message", error)) if isinstance(error, dict) else str(error)
                raise Rejected(self._diagnose(req, auth, text), text, auth.payer)
            return
        try:
            self.chain.call(self._transfer_fn(req, auth), sender=self.account.address)
        except TransactionReverted as exc:
            raise Rejected(
                self._diagnose(req, auth, str(exc.fields.get("reason") or exc)),
                str(exc),
                auth.payer,
            ) from exc

    def _diagnose(self, req: PaymentRequirements, auth: Authorization, reason: str) -> str:
        token = self._token(req.asset)
        payer = to_address(auth.payer)
        try:
            if self.chain.call(token.functions.authorizationState(payer, auth.nonce)):
                return c.ERR_NONCE_ALREADY_USED
            if int(self.chain.call(token.functions.balanceOf(payer))) < auth.value:
                return c.ERR_INSUFFICIENT_BALANCE
        except BazaarError:
            return c.ERR_EIP3009_NOT_SUPPORTED
        return map_revert(reason)

    def _verify_sync(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        auth = self._checked(payload, req)
        self.throttle.check(auth.payer)
        self._purge_expired()
        key = self._key(req, auth)
        lease = self._lease(req, auth, secrets.token_hex(16))
        holder = self.store.reserve(key, lease)
        if holder is not None:
            raise _held(holder, auth)
        try:
            self._simulate(req, auth)
        except BaseException:
            self.store.release(key, lease=lease.token)
            raise
        extra = {"reservation": lease.token, "reservedUntil": auth.valid_before}
        return VerifyResponse(is_valid=True, payer=auth.payer, extra=extra)

    def _lease(self, req: PaymentRequirements, auth: Authorization, token: str) -> Lease:
        return Lease(
            signature="0x" + auth.signature.hex(),
            terms=terms_digest(req),
            token=token,
            until=float(auth.valid_before),
            pay_to=auth.to,
            amount=auth.value,
        )

    def _purge_expired(self) -> None:
        if time.monotonic() - self._purged >= PURGE_EVERY_S:
            self._purged = time.monotonic()
            self.store.purge_expired()

    async def verify(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        try:
            result = await self._run(lambda: self._verify_sync(payload, req))
        except Rejected as exc:
            self.metrics.rejected += 1
            if exc.reason == ERR_AUTHORIZATION_IN_USE:
                self.metrics.in_use += 1
            return VerifyResponse(
                is_valid=False,
                invalid_reason=exc.reason,
                invalid_message=exc.message,
                payer=exc.payer or payer_hint(payload),
            )
        except BazaarError as exc:
            self.metrics.rejected += 1
            return VerifyResponse(
                is_valid=False,
                invalid_reason=c.ERR_TRANSACTION_SIMULATION_FAILED,
                invalid_message=str(exc),
                payer=payer_hint(payload),
            )
        self.metrics.verified += 1
        return result

    async def release(self, payload: PaymentPayload, req: PaymentRequirements, token: str) -> bool:
        """Give back the reservation ``token`` of this authorization (the seller's handler
        failed, nothing was served): a later verify may take it. False when that lease is not
        held (already settled, expired, or another token)."""
        try:
            auth = parse_authorization(payload.payload)
        except Rejected:
            return False
        key = self._key(req, auth)
        released = await self._run(lambda: self.store.release(key, lease=token))
        if released:
            self.metrics.released += 1
        return released

    # ---- settle ----------------------------------------------------------------------
    def _fail(
        self, req: PaymentRequirements, reason: str, message: str, payer: str | None, tx: str = ""
    ) -> SettleResponse:
        return SettleResponse(
            success=False,
            error_reason=reason,
            error_message=message,
            payer=payer,
            transaction=tx,
            network=req.network,
        )

    def _ok(self, req: PaymentRequirements, payer: str, tx: str, amount: int) -> SettleResponse:
        return SettleResponse(
            success=True, payer=payer, transaction=tx, network=req.network, amount=str(amount)
        )

    async def settle(self, payload: PaymentPayload, req: PaymentRequirements) -> SettleResponse:
        try:
            auth = parse_authorization(payload.payload)
        except Rejected as exc:
            return self._fail(req, exc.reason, exc.message, payer_hint(payload))
        key = self._key(req, auth)
        # Only a repeat of the very same signed authorization, for the same terms, shares a
        # settlement under way; another signature (or terms) for the same nonce gets its own
        # task, which the store's claim refuses (never the first one's success).
        flight = (key, "0x" + auth.signature.hex(), terms_digest(req))
        task = self._inflight.get(flight)
        if task is None:
            # The settlement runs as its own task: a caller that goes away (a cancelled request)
            # does not cancel it, and concurrent settles of the same authorization share it.
            task = asyncio.get_running_loop().create_task(self._settle_new(payload, req, auth, key))
            self._inflight[flight] = task
            task.add_done_callback(lambda _: self._inflight.pop(flight, None))
        else:
            self.metrics.repeats += 1
        return await asyncio.shield(task)

    async def _settle_new(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        auth: Authorization,
        key: SettlementKey,
    ) -> SettleResponse:
        existing = await self._run(lambda: self.store.get(key))
        if existing is not None and existing.status != RESERVED:
            self.metrics.repeats += 1
            return await self._answer_existing(req, auth, existing)
        try:
            return await self._submit(payload, req, auth, key)
        except Rejected as exc:
            self.metrics.rejected += 1
            return self._fail(req, exc.reason, exc.message, auth.payer)

    async def _submit(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        auth: Authorization,
        key: SettlementKey,
    ) -> SettleResponse:
        """Send this one authorization in its own transaction (batching overrides this)."""
        tx_hash, receipt = await self._run(lambda: self._claim_and_send(payload, req, auth, key))
        return await self._await_result(req, auth, key, tx_hash, receipt)

    def _claim(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        auth: Authorization,
        key: SettlementKey,
    ) -> None:
        self._checked(payload, req)
        prior = self.store.claim(
            key,
            signature="0x" + auth.signature.hex(),
            pay_to=auth.to,
            amount=auth.value,
            terms=terms_digest(req),
            until=float(auth.valid_before),
        )
        if prior is not None:
            raise _held(prior, auth)
        try:  # right before signing: the payer may have moved its funds since verify
            self._simulate(req, auth)
        except BaseException as exc:
            self.store.release(key)  # nothing was signed
            if isinstance(exc, Rejected):
                self.metrics.not_broadcast += 1
                if exc.reason in PAYER_FAULTS:
                    self.throttle.record_failure(auth.payer)
            raise

    async def _answer_existing(
        self, req: PaymentRequirements, auth: Authorization, record: SettlementRecord
    ) -> SettleResponse:
        if record.signature != "0x" + auth.signature.hex():
            return self._fail(
                req, c.ERR_NONCE_ALREADY_USED, "nonce used by another authorization", auth.payer
            )
        if not record.same_terms(terms_digest(req)):
            return self._fail(
                req, c.ERR_NONCE_ALREADY_USED, "authorization used for other terms", auth.payer
            )
        if record.final:
            if record.status == FAILED:
                return self._fail(
                    req,
                    record.reason or c.ERR_TRANSACTION_FAILED,
                    "settlement failed",
                    auth.payer,
                    record.tx_hash or "",
                )
            return self._ok(req, auth.payer, record.tx_hash or "", record.amount)
        if record.status == SENT and record.tx_hash:
            return await self._await_result(req, auth, record.key, record.tx_hash)
        return self._fail(req, c.ERR_SETTLEMENT_PENDING, "settlement in progress", auth.payer)

    def _claim_and_send(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        auth: Authorization,
        key: SettlementKey,
    ) -> tuple[str, Mapping[str, Any] | None]:
        """Claim, check, sign, record and broadcast; the hash, and the receipt when the node
        returned it with the broadcast (``Chain.send_for_receipt``)."""
        self._claim(payload, req, auth, key)

        def record(tx_hash: HexBytes, raw: bytes) -> None:
            self.store.mark_sent(key, tx_hash.to_0x_hex(), raw)

        # _claim simulated this transfer against the latest state: no estimate round trip
        tx: dict[str, Any] = {
            "to": to_address(req.asset),
            "data": transfer_calldata(auth),
            "gas": SETTLE_GAS_LIMIT,
        }
        try:
            sent, raw_receipt = self.chain.send_for_receipt(
                self.account,
                cast(TxParams, tx),
                wait_s=SYNC_SEND_WAIT_S,
                action="settle",
                on_signed=record,
            )
        except TransactionReverted as exc:  # the estimate (a simulation) reverted: nothing sent
            self.store.release(key)
            reason = self._diagnose(req, auth, str(exc.fields.get("reason") or exc))
            raise Rejected(reason, str(exc), auth.payer) from exc
        except BazaarError as exc:
            current = self.store.get(key)
            if current is None or current.status != SENT:
                self.store.release(key)
                raise Rejected(c.ERR_TRANSACTION_FAILED, str(exc), auth.payer) from exc
            if not isinstance(exc, ChainUnavailable):  # the node refused the signed tx
                self.store.finish(
                    key,
                    success=False,
                    tx_hash=current.tx_hash or "",
                    reason=c.ERR_TRANSACTION_FAILED,
                )
                raise Rejected(c.ERR_TRANSACTION_FAILED, str(exc), auth.payer) from exc
            assert current.tx_hash is not None  # signed and recorded: recovery re-broadcasts
            return current.tx_hash, None
        return sent.to_0x_hex(), None if raw_receipt is None else _short_receipt(raw_receipt)

    async def _await_result(
        self,
        req: PaymentRequirements,
        auth: Authorization,
        key: SettlementKey,
        tx_hash: str,
        receipt: Mapping[str, Any] | None = None,
    ) -> SettleResponse:
        if receipt is None:
            receipt = await self._await_receipt(tx_hash)
        if receipt is None:
            return self._fail(
                req,
                c.ERR_SETTLEMENT_PENDING,
                "no receipt yet; settle again to get the result",
                auth.payer,
                tx_hash,
            )
        ok = receipt["status"] == 1 and verify_eip3009_transfer_event(
            list(receipt["logs"]),
            req.asset,
            from_address=auth.payer,
            to=auth.to,
            value=auth.value,
        )
        reason = None if ok else c.ERR_TRANSACTION_FAILED
        await self._run(lambda: self.store.finish(key, success=ok, tx_hash=tx_hash, reason=reason))
        if ok:
            self.metrics.settled += 1
            return self._ok(req, auth.payer, tx_hash, auth.value)
        self.metrics.failed += 1
        self.throttle.record_failure(auth.payer)
        return self._fail(
            req, c.ERR_TRANSACTION_FAILED, "the transfer reverted", auth.payer, tx_hash
        )

    def _receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        if self.chain.url is None:
            return self.chain.receipt(tx_hash)
        response = self.chain.w3.provider.make_request(
            RPCEndpoint("eth_getTransactionReceipt"), [tx_hash]
        )
        raw = response.get("result")
        return _short_receipt(raw) if isinstance(raw, dict) else None

    async def _await_receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.002
        while True:
            try:
                receipt = await self._run(lambda: self._receipt(tx_hash))
            except Exception:  # the node is unreachable for now: keep waiting until the deadline
                receipt = None
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    def metrics_snapshot(self) -> dict[str, int]:
        counts = self.store.counts()
        m = self.metrics
        return {
            "settled": m.settled,
            "failed": m.failed,
            "rejected": m.rejected,
            "verified": m.verified,
            "repeats": m.repeats,
            "in_use": m.in_use,
            "released": m.released,
            "not_broadcast": m.not_broadcast,
            "throttled": self.throttle.refused,
            "payers_with_failures": len(self.throttle),
            "reserved": counts[RESERVED],
            "pending": counts[CLAIMED] + counts[SENT],
            "stored_settled": counts[SETTLED],
            "stored_failed": counts[FAILED],
        }

    # ---- start-up recovery -------------------------------------------------------------
    def recover(self) -> int:
        """Resolve settlements left ``sent`` by a crash; drop claims that never signed.

        Returns the number of settlements re-broadcast or resolved."""
        for record in self.store.with_status(CLAIMED):
            self.store.release(record.key)
        self.store.purge_expired()
        done = 0
        for record in self.store.with_status(SENT):
            if record.tx_hash is None or record.raw_tx is None:
                continue
            try:
                if self.chain.receipt(record.tx_hash) is None:
                    self.chain.broadcast_raw(record.raw_tx, action="re-broadcast a settlement")
                receipt = self.chain.wait_for_receipt(record.tx_hash, action="recovered settle")
                ok = authorization_used(
                    list(receipt["logs"]), record.key.asset, record.key.payer, record.key.nonce
                )
            except TransactionReverted:
                ok = False
            except BazaarError as exc:  # not resolvable now: stays sent; a repeated settle waits
                log.warning("settlement %s not recovered yet: %s", record.tx_hash, exc)
                continue
            self.store.finish(
                record.key,
                success=ok,
                tx_hash=record.tx_hash,
                reason=None if ok else c.ERR_TRANSACTION_FAILED,
            )
            done += 1
        return done


def _held(holder: SettlementRecord, auth: Authorization) -> Rejected:
    """Why an authorization held by ``holder`` cannot be taken by another request."""
    return held(holder, "0x" + auth.signature.hex(), auth.payer, c.ERR_NONCE_ALREADY_USED)


def _short_receipt(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What settle reads of a node's JSON receipt: its status and its raw logs."""
    return {"status": int(str(raw.get("status", "0x0")), 16), "logs": raw.get("logs") or []}
