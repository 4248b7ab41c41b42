"""Batching mode of the ``exact`` facilitator: verified authorizations wait a few milliseconds in a
queue and are settled together in one transaction through the ``ExactBatchSettler`` contract.

Each settle request still gets its own answer: the receipt's ``AuthorizationUsed(payer, nonce)``
events say which authorizations were consumed. Each authorization is simulated when it is claimed
(as one-by-one): one known to fail never enters a batch. Durability is the same as one-by-one: every
authorization is claimed in the ``SettlementStore`` before the batch is signed, and the signed
batch (hash and raw bytes, shared by its rows) is recorded before the broadcast.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.contract import Contract
from web3.types import TxParams
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse

from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.payments.eip3009 import Authorization, authorization_used
from agentbazaar.payments.exact import ExactEvmHandler
from agentbazaar.payments.facilitator import Facilitator
from agentbazaar.payments.store import SENT, SettlementKey, SettlementStore

BATCH_BASE_GAS = 60_000
BATCH_GAS_PER_PAYMENT = 90_000


@dataclass
class _Queued:
    req: PaymentRequirements
    auth: Authorization
    key: SettlementKey
    future: asyncio.Future[SettleResponse]


def deploy_batch_settler(chain: Chain, account: LocalAccount) -> str:
    art = compile_contract("ExactBatchSettler")
    contract, _ = chain.deploy(account, art.abi, art.bytecode, name="ExactBatchSettler")
    return str(contract.address)


class BatchingExactHandler(ExactEvmHandler):
    """``exact`` with settlement in batches of up to ``max_batch``, flushed every ``window``
    seconds (or as soon as the batch is full)."""

    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        store: SettlementStore,
        executor: Executor,
        *,
        settler: str,
        assets: frozenset[str] | None = None,
        max_batch: int = 64,
        window: float = 0.02,
    ) -> None:
        super().__init__(chain, account, store, executor, assets=assets)
        self.settler: Contract = chain.contract(settler, compile_contract("ExactBatchSettler").abi)
        self.max_batch = max_batch
        self.window = window
        self.batches = 0
        self._queue: list[_Queued] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _submit(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        auth: Authorization,
        key: SettlementKey,
    ) -> SettleResponse:
        await self._run(lambda: self._claim(payload, req, auth, key))
        loop = asyncio.get_running_loop()
        item = _Queued(req, auth, key, loop.create_future())
        self._queue.append(item)
        if len(self._queue) >= self.max_batch:
            self._flush_now()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._flush_now)
        return await item.future

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._queue = self._queue, []
        by_token: dict[str, list[_Queued]] = {}
        for item in batch:
            by_token.setdefault(item.req.asset.lower(), []).append(item)
        for items in by_token.values():
            task = asyncio.get_running_loop().create_task(self._settle_batch(items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _settle_batch(self, items: list[_Queued]) -> None:
        try:
            tx_hash = await self._run(lambda: self._send_batch(items))
        except Exception as exc:
            recorded = self.store.get(items[0].key)
            if recorded is None or recorded.status != SENT or recorded.tx_hash is None:
                for item in items:  # nothing was signed: release and answer every request
                    self.store.release(item.key)
                    _resolve(
                        item,
                        self._fail(item.req, c.ERR_TRANSACTION_FAILED, str(exc), item.auth.payer),
                    )
                return
            tx_hash = recorded.tx_hash  # signed and recorded: it may be mined; wait for it
        self.batches += 1
        receipt = await self._await_receipt(tx_hash)
        for item in items:
            _resolve(item, await self._outcome(item, tx_hash, receipt))

    async def _outcome(self, item: _Queued, tx_hash: str, receipt: Any) -> SettleResponse:
        req, auth = item.req, item.auth
        if receipt is None:
            return self._fail(
                req, c.ERR_SETTLEMENT_PENDING, "no receipt yet; settle again", auth.payer, tx_hash
            )
        ok = receipt["status"] == 1 and authorization_used(
            list(receipt["logs"]), req.asset, auth.payer, auth.nonce_hex
        )
        reason = None if ok else c.ERR_TRANSACTION_FAILED
        await self._run(
            lambda: self.store.finish(item.key, success=ok, tx_hash=tx_hash, reason=reason)
        )
        if ok:
            self.metrics.settled += 1
            return self._ok(req, auth.payer, tx_hash, auth.value)
        self.metrics.failed += 1
        self.throttle.record_failure(auth.payer)
        return self._fail(
            req, c.ERR_TRANSACTION_FAILED, "the transfer failed in its batch", auth.payer, tx_hash
        )

    def _send_batch(self, items: list[_Queued]) -> str:
        token = to_address(items[0].req.asset)
        rows = []
        for item in items:
            a = item.auth
            v, r, s = a.vrs
            rows.append(
                (
                    to_address(a.payer),
                    to_address(a.to),
                    a.value,
                    a.valid_after,
                    a.valid_before,
                    a.nonce,
                    v,
                    r,
                    s,
                )
            )
        data = self.settler.functions.settle(token, rows)._encode_transaction_data()
        tx = {
            "to": self.settler.address,
            "data": data,
            "gas": BATCH_BASE_GAS + BATCH_GAS_PER_PAYMENT * len(items),
        }

        def record(tx_hash: HexBytes, raw: bytes) -> None:
            for item in items:
                self.store.mark_sent(item.key, tx_hash.to_0x_hex(), raw)

        return self.chain.send_nowait(
            self.account, cast(TxParams, tx), action="settle a batch", on_signed=record
        ).to_0x_hex()

    def metrics_snapshot(self) -> dict[str, int]:
        out = super().metrics_snapshot()
        out["batches"] = self.batches
        return out


def _resolve(item: _Queued, response: SettleResponse) -> None:
    if not item.future.done():
        item.future.set_result(response)


def batching_facilitator(
    chain: Chain,
    account: LocalAccount,
    *,
    settler: str,
    store_path: Path | None = None,
    assets: list[str] | None = None,
    max_batch: int = 64,
    window: float = 0.02,
    workers: int = 16,
) -> Facilitator:
    """A facilitator for ``exact`` that settles through the ``ExactBatchSettler`` at ``settler``."""
    handler = BatchingExactHandler(
        chain,
        account,
        SettlementStore(store_path),
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="x402-batch"),
        settler=settler,
        assets=frozenset(a.lower() for a in assets) if assets is not None else None,
        max_batch=max_batch,
        window=window,
    )
    return Facilitator([handler])
