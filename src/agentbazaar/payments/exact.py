"""The ``exact`` scheme on EVM chains (EIP-3009 ``transferWithAuthorization``), facilitator side.

Pure checks (shape, network, payTo, amount, validity window, EIP-712 signature) run without any
chain call; the chain is asked once to simulate the transfer (verify) or to estimate and send it
(settle). Chain calls run in a thread pool and receipts are awaited with ``asyncio.sleep`` between
polls, so the event loop never blocks and concurrent settlements share one nonce sequence
(``Chain`` reserves nonces per sender).

Settlement is exactly once: ``SettlementStore`` records the claim before signing and the signed
transaction before broadcasting; a repeated settle for the same authorization returns (or waits
for) the first result.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
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
    Rejected,
    authorization_used,
    check_requirements,
    map_revert,
    parse_authorization,
    payer_hint,
    recover_payer,
    transfer_calldata,
)
from agentbazaar.payments.store import (
    FAILED,
    SENT,
    SettlementKey,
    SettlementRecord,
    SettlementStore,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

SIMULATION_FRESH_SECONDS = 30.0  # a verify's simulation lets settle skip gas estimation
SIMULATION_CACHE_SIZE = 10_000
SETTLE_GAS_LIMIT = 150_000  # transferWithAuthorization uses ~65k (~85k to a new recipient)


# ---- the handler ---------------------------------------------------------------------------
@dataclass
class Metrics:
    settled: int = 0
    failed: int = 0
    rejected: int = 0
    verified: int = 0
    repeats: int = 0


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
    ) -> None:
        self.chain = chain
        self.account = account
        self.store = store
        self.assets = assets
        self.receipt_timeout = receipt_timeout
        self.metrics = Metrics()
        self._executor = executor
        self._inflight: dict[SettlementKey, asyncio.Task[SettleResponse]] = {}
        self._contracts: dict[str, Contract] = {}
        self._simulated: OrderedDict[bytes, float] = OrderedDict()
        self._sim_lock = threading.Lock()

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
        record = self.store.get(self._key(req, auth))
        if record is not None and record.status != FAILED:
            raise Rejected(c.ERR_NONCE_ALREADY_USED, "authorization already settled", auth.payer)
        self._simulate(req, auth)
        self._remember_simulated(auth)
        return VerifyResponse(is_valid=True, payer=auth.payer)

    def _remember_simulated(self, auth: Authorization) -> None:
        with self._sim_lock:
            self._simulated[auth.signature] = time.monotonic() + SIMULATION_FRESH_SECONDS
            while len(self._simulated) > SIMULATION_CACHE_SIZE:
                self._simulated.popitem(last=False)

    def _recently_simulated(self, auth: Authorization) -> bool:
        with self._sim_lock:
            expiry = self._simulated.pop(auth.signature, None)
        return expiry is not None and expiry > time.monotonic()

    async def verify(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        try:
            result = await self._run(lambda: self._verify_sync(payload, req))
        except Rejected as exc:
            self.metrics.rejected += 1
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
        task = self._inflight.get(key)
        if task is None:
            # The settlement runs as its own task: a caller that goes away (a cancelled request)
            # does not cancel it, and concurrent settles of the same authorization share it.
            task = asyncio.get_running_loop().create_task(self._settle_new(payload, req, auth, key))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
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
        if existing is not None:
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
        tx_hash = await self._run(lambda: self._claim_and_send(payload, req, auth, key))
        return await self._await_result(req, auth, key, tx_hash)

    def _claim(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        auth: Authorization,
        key: SettlementKey,
    ) -> None:
        self._checked(payload, req)
        prior = self.store.claim(
            key, signature="0x" + auth.signature.hex(), pay_to=auth.to, amount=auth.value
        )
        if prior is not None:
            raise Rejected(c.ERR_NONCE_ALREADY_USED, "authorization already claimed", auth.payer)

    async def _answer_existing(
        self, req: PaymentRequirements, auth: Authorization, record: SettlementRecord
    ) -> SettleResponse:
        if record.signature != "0x" + auth.signature.hex():
            return self._fail(
                req, c.ERR_NONCE_ALREADY_USED, "nonce used by another authorization", auth.payer
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
    ) -> str:
        self._claim(payload, req, auth, key)

        def record(tx_hash: HexBytes, raw: bytes) -> None:
            self.store.mark_sent(key, tx_hash.to_0x_hex(), raw)

        tx: dict[str, Any] = {"to": to_address(req.asset), "data": transfer_calldata(auth)}
        if self._recently_simulated(auth):
            # verify simulated this exact transfer moments ago: skip the estimate round trip
            tx["gas"] = SETTLE_GAS_LIMIT
        try:
            sent = self.chain.send_nowait(
                self.account, cast(TxParams, tx), action="settle", on_signed=record
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
            return current.tx_hash
        return sent.to_0x_hex()

    async def _await_result(
        self, req: PaymentRequirements, auth: Authorization, key: SettlementKey, tx_hash: str
    ) -> SettleResponse:
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
        if not isinstance(raw, dict):
            return None
        return {"status": int(str(raw.get("status", "0x0")), 16), "logs": raw.get("logs") or []}

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
            "pending": counts["claimed"] + counts[SENT],
            "stored_settled": counts["settled"],
            "stored_failed": counts[FAILED],
        }

    # ---- start-up recovery -------------------------------------------------------------
    def recover(self) -> int:
        """Resolve settlements left ``sent`` by a crash; drop claims that never signed.

        Returns the number of settlements re-broadcast or resolved."""
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
