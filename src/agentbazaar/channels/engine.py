"""The seller's channel engine: verify a voucher, run the handler, commit the charge durably.

Transport-agnostic: it takes the inner x402 `payload` of a `batch-settlement` payment and the
price of the request. Per voucher it costs two keccaks and one secp256k1 recovery (the domain
separator and each channel's id are cached), requests on one channel are serialised by a lock,
and a charge is committed (and the response allowed out) only after the handler succeeded and
the new state is on disk.

With a store that fsyncs, `begin` writes the full charge ahead as a *pending* record, so the
group commit runs while the handler does; `commit` waits for it and confirms it lazily, `abort`
writes the old state back lazily. After a crash a pending charge stays on record (its response
may have gone out); a voucher that pays from before it shows the buyer never saw that response,
and then the pending charge pays for the new request instead (nobody pays twice). The claim
loop claims a pending charge only once the buyer settles it one way or the other, or starts a
withdrawal. Invariants: tests/channels/test_write_ahead.py.

    ticket = await engine.begin(payload, price)     # verify; holds the channel's lock
    try:
        body = await handler()
    except Exception:
        engine.abort(ticket)                         # nothing charged, voucher can be retried
        raise
    extra = await engine.commit(ticket, charge)      # durable, then the lock is released
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from eth_typing import ChecksumAddress

from agentbazaar.channels import _crypto as cx
from agentbazaar.channels._crypto import ChannelConfig
from agentbazaar.channels.errors import ChannelInputError, ChannelStoreError, VoucherRejected
from agentbazaar.channels.store import ChannelRecord, ChannelStore
from agentbazaar.channels.wire import (
    BATCH_SETTLEMENT_ADDRESS,
    ERR_CHANNEL_ID_MISMATCH,
    ERR_CHANNEL_NOT_FOUND,
    ERR_CUMULATIVE_AMOUNT_MISMATCH,
    ERR_CUMULATIVE_EXCEEDS_BALANCE,
    ERR_INVALID_VOUCHER_SIGNATURE,
    ERR_RECEIVER_AUTHORIZER_MISMATCH,
    ERR_RECEIVER_MISMATCH,
    ERR_TOKEN_MISMATCH,
    ERR_WITHDRAW_DELAY_MISMATCH,
)

T = TypeVar("T")
_CONFIG_KEYS = (
    "payer",
    "payerAuthorizer",
    "receiver",
    "receiverAuthorizer",
    "token",
    "withdrawDelay",
    "salt",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class OnchainState:
    """A channel as the contract sees it (`channels`, `pendingWithdrawals`, `refundNonce`)."""

    balance: int
    total_claimed: int
    withdraw_requested_at: int = 0
    refund_nonce: int = 0
    transaction: str = ""


class ChannelChain(Protocol):
    """What the engine needs from the chain (see `agentbazaar.channels.onchain`)."""

    async def read_state(self, channel_id: bytes) -> OnchainState: ...

    async def deposit(
        self, config: ChannelConfig, channel_id: bytes, deposit: Mapping[str, Any]
    ) -> OnchainState: ...

    async def refund(self, record: ChannelRecord, amount: int | None) -> tuple[OnchainState, int]:
        """Claim the record's charges and refund up to ``amount`` (None: all) of the rest."""
        ...

    async def is_valid_signature(self, account: str, digest: bytes, signature: bytes) -> bool:
        """ERC-1271: does contract ``account`` accept ``signature`` over ``digest``?"""
        ...


@dataclass(frozen=True)
class ChannelTerms:
    """The seller's side of every batch-settlement channel config it accepts (receiver, its
    authorizer, token, withdraw delay, escrow contract): channel terms, not x402 route terms
    (those are ``payments.server.PaymentTerms``)."""

    chain_id: int
    receiver: ChecksumAddress
    receiver_authorizer: ChecksumAddress
    token: ChecksumAddress
    withdraw_delay: int = 900
    contract: ChecksumAddress = BATCH_SETTLEMENT_ADDRESS

    def requirement_extra(self, token_name: str, token_version: str) -> dict[str, Any]:
        return {
            "receiverAuthorizer": self.receiver_authorizer,
            "withdrawDelay": self.withdraw_delay,
            "name": token_name,
            "version": token_version,
        }


@dataclass
class Ticket:
    """A verified voucher holding its channel's lock until `commit` or `abort`.

    ``record`` is the channel before this request. With a store that fsyncs, ``intent`` is the
    channel charged the full price, queued to disk by `begin` as a pending record (``durable``
    resolves once it is there), so the disk syncs while the handler runs."""

    record: ChannelRecord
    max_claimable: int
    signature: bytes
    price: int
    deposit: OnchainState | None = None
    _lock: asyncio.Lock | None = field(default=None, repr=False)
    intent: ChannelRecord | None = field(default=None, repr=False)
    durable: asyncio.Future[None] | None = field(default=None, repr=False)
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def payer(self) -> ChecksumAddress:
        return self.record.config.payer


def channel_state_wire(rec: ChannelRecord) -> dict[str, Any]:
    """The `channelState` object of payment responses and corrective 402s."""
    return {
        "channelId": rec.channel_hex,
        "balance": str(rec.balance),
        "totalClaimed": str(rec.total_claimed),
        "withdrawRequestedAt": rec.withdraw_requested_at,
        "refundNonce": str(rec.refund_nonce),
        "chargedCumulativeAmount": str(rec.charged),
    }


class ChannelEngine:
    def __init__(
        self,
        store: ChannelStore,
        terms: ChannelTerms,
        *,
        chain: ChannelChain | None = None,
    ) -> None:
        self.store = store
        self.terms = terms
        self.chain = chain
        self.domain = cx.domain_separator(terms.chain_id, terms.contract)
        self._records: dict[bytes, ChannelRecord] = store.load_all()
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._configs: dict[tuple[Any, ...], tuple[ChannelConfig, bytes]] = {}
        self._signer_keys: dict[bytes, bytes] = {}  # channel id -> verified signer key (lib form)

    # ---- reads ----------------------------------------------------------------------------
    def record(self, channel_id: bytes) -> ChannelRecord | None:
        return self._records.get(channel_id)

    def records(self) -> list[ChannelRecord]:
        return list(self._records.values())

    def corrective_extra(self, channel_id: bytes) -> dict[str, Any] | None:
        """`channelState` + `voucherState` for a corrective 402 (None for an unknown channel)."""
        rec = self._records.get(channel_id)
        if rec is None:
            return None
        return {
            "channelState": channel_state_wire(rec),
            "voucherState": {
                "signedMaxClaimable": str(rec.signed_max),
                "signature": "0x" + rec.signature.hex(),
            },
        }

    # ---- the request path -----------------------------------------------------------------
    def resolve_config(self, raw: Any) -> tuple[ChannelConfig, bytes]:
        """Parse and check a wire `channelConfig`; cached, so a known channel costs a dict hit."""
        if not isinstance(raw, dict):
            raise ChannelInputError("channelConfig must be an object")
        key = tuple(raw.get(k) for k in _CONFIG_KEYS)
        try:
            hit = self._configs.get(key)
        except TypeError as exc:  # a list or an object where a string belongs
            raise ChannelInputError("channelConfig fields must be strings and numbers") from exc
        if hit is not None:
            return hit
        config = ChannelConfig.from_wire(raw)
        t = self.terms
        for ours, theirs, reason in (
            (t.receiver, config.receiver, ERR_RECEIVER_MISMATCH),
            (t.receiver_authorizer, config.receiver_authorizer, ERR_RECEIVER_AUTHORIZER_MISMATCH),
            (t.token, config.token, ERR_TOKEN_MISMATCH),
        ):
            if ours != theirs:
                raise VoucherRejected(
                    f"channel config does not match this seller ({reason})", reason=reason
                )
        if config.withdraw_delay != t.withdraw_delay:
            raise VoucherRejected(
                "channel withdraw delay differs from this seller's",
                reason=ERR_WITHDRAW_DELAY_MISMATCH,
            )
        resolved = (config, cx.channel_id(self.domain, config))
        if len(self._configs) < 1_000_000:
            self._configs[key] = resolved
        return resolved

    async def begin(self, payload: Mapping[str, Any], price: int) -> Ticket:
        """Verify a `voucher` or `deposit` payload for a request costing ``price``."""
        if not isinstance(payload, Mapping):
            raise ChannelInputError("payment payload must be an object")
        kind = payload.get("type")
        if kind not in ("voucher", "deposit"):
            raise ChannelInputError(f"unsupported batch-settlement payload type {kind!r}")
        config, cid = self.resolve_config(payload.get("channelConfig"))
        voucher = payload.get("voucher")
        if not isinstance(voucher, Mapping):
            raise ChannelInputError("payload.voucher must be an object")
        if cx.parse_bytes32(voucher.get("channelId"), "voucher.channelId") != cid:
            raise VoucherRejected(
                "voucher.channelId is not the id of channelConfig", reason=ERR_CHANNEL_ID_MISMATCH
            )
        max_claimable = cx.parse_amount(voucher.get("maxClaimableAmount"), "maxClaimableAmount")
        signature = cx.parse_signature(voucher.get("signature"))
        await self._check_signature(config, cid, max_claimable, signature)

        lock = self._locks.get(cid)
        if lock is None:
            lock = self._locks[cid] = asyncio.Lock()
        await lock.acquire()
        ticket: Ticket | None = None
        try:
            rec, deposited = await self._current(config, cid, kind, payload)
            if (
                rec.pending
                and max_claimable == rec.charged - rec.pending + price
                and rec.total_claimed <= rec.charged - rec.pending  # not claimed on chain yet
            ):
                # after a restart: the buyer never saw the response of the request whose charge
                # was written ahead (it pays from before it), so that charge is void and this
                # voucher pays for this request instead: the buyer pays once, not twice
                rec = rec.evolve(charged=rec.charged - rec.pending, pending=0)
            expected = rec.charged + price
            if max_claimable != expected:
                raise VoucherRejected(
                    f"voucher ceiling {max_claimable} != charged {rec.charged} + price {price}",
                    reason=ERR_CUMULATIVE_AMOUNT_MISMATCH,
                    channel_id=rec.channel_hex,
                )
            if max_claimable > rec.balance:
                raise VoucherRejected(
                    f"voucher ceiling {max_claimable} exceeds the channel balance {rec.balance}",
                    reason=ERR_CUMULATIVE_EXCEEDS_BALANCE,
                    channel_id=rec.channel_hex,
                )
            ticket = Ticket(rec, max_claimable, signature, price, deposited, lock)
            self.store.in_flight += 1  # released in _release
            if self.store.fsync:
                # write the charge ahead of the handler, so the disk syncs while it runs; the
                # response still waits for it (commit), and a failed handler writes it back
                ticket.intent = rec.evolve(
                    charged=expected,
                    signed_max=max_claimable,
                    signature=signature,
                    pending=price,
                    updated_at_ms=_now_ms(),
                )
                ticket.durable = self.store.write_ahead(ticket.intent)
        except BaseException:
            if ticket is not None:
                self.store.in_flight -= 1
            lock.release()
            raise
        return ticket

    async def commit(self, ticket: Ticket, charge: int | None = None) -> dict[str, Any]:
        """Charge ``charge`` (default: the price) durably, release the channel; response extra."""
        amount = ticket.price if charge is None else charge
        if not 0 <= amount <= ticket.price:
            self.abort(ticket)
            raise ChannelInputError(f"charge {amount} is outside 0..{ticket.price}")
        rec = ticket.record
        new = rec.evolve(
            charged=rec.charged + amount,
            signed_max=ticket.max_claimable,
            signature=ticket.signature,
            updated_at_ms=_now_ms(),
            pending=0,
        )
        try:
            if ticket.durable is None:
                await self.store.commit(new)
            else:
                await ticket.durable  # the full charge is on disk
                if amount == ticket.price:
                    # confirmed: pending back to 0 with the next group commit (if a crash loses
                    # this write, the buyer's next voucher tells whether it saw the response)
                    self.store.submit_lazy(new)
                else:  # a smaller charge than written ahead: the response waits for it
                    await self.store.commit(new)
            self._records[new.channel_id] = new
        except BaseException:
            ticket.durable = None  # the written-ahead charge did not become this request's
            self._undo(ticket)
            self._release(ticket)
            raise
        self._release(ticket)
        return {"chargedAmount": str(amount), "channelState": channel_state_wire(new)}

    def abort(self, ticket: Ticket) -> None:
        """The handler failed: nothing is charged (a deposit already made stays recorded)."""
        self._undo(ticket)
        self._release(ticket)

    async def pay(
        self, payload: Mapping[str, Any], price: int, handler: Callable[[], Awaitable[T]]
    ) -> tuple[T, dict[str, Any]]:
        ticket = await self.begin(payload, price)
        try:
            result = await handler()
        except BaseException:
            self.abort(ticket)
            raise
        return result, await self.commit(ticket)

    async def refund(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A cooperative refund: the payer's zero-charge voucher (ceiling == charged total) asks
        for unclaimed escrow back; the seller claims what is charged and refunds the rest (or
        ``payload.amount``) in one transaction. Returns the settle response (wire form)."""
        if not isinstance(payload, Mapping) or payload.get("type") != "refund":
            raise ChannelInputError("not a refund payload")
        config, cid = self.resolve_config(payload.get("channelConfig"))
        voucher = payload.get("voucher")
        if not isinstance(voucher, Mapping):
            raise ChannelInputError("payload.voucher must be an object")
        if cx.parse_bytes32(voucher.get("channelId"), "voucher.channelId") != cid:
            raise VoucherRejected(
                "voucher.channelId is not the id of channelConfig", reason=ERR_CHANNEL_ID_MISMATCH
            )
        ceiling = cx.parse_amount(voucher.get("maxClaimableAmount"), "maxClaimableAmount")
        signature = cx.parse_signature(voucher.get("signature"))
        raw_amount = payload.get("amount")
        amount = None if raw_amount is None else cx.parse_amount(raw_amount, "amount")
        await self._check_signature(config, cid, ceiling, signature)
        if self.chain is None:
            raise VoucherRejected(
                "this seller cannot refund (no chain access)", reason=ERR_CHANNEL_NOT_FOUND
            )
        lock = self._locks.setdefault(cid, asyncio.Lock())
        async with lock:
            rec = self._records.get(cid)
            if rec is None:
                raise VoucherRejected("unknown channel", reason=ERR_CHANNEL_NOT_FOUND)
            if ceiling != rec.charged:
                raise VoucherRejected(
                    f"a refund voucher must equal the charged total {rec.charged}",
                    reason=ERR_CUMULATIVE_AMOUNT_MISMATCH,
                    channel_id=rec.channel_hex,
                )
            signed = rec.evolve(signed_max=ceiling, signature=signature)
            state, refunded = await self.chain.refund(signed, amount)
            new = self._apply(signed, state)
            await self.store.commit(new)
            self._records[cid] = new
        return {
            "success": True,
            "transaction": state.transaction,
            "network": f"eip155:{self.terms.chain_id}",
            "payer": config.payer,
            "amount": str(refunded),
            "extra": {"channelState": channel_state_wire(new)},
        }

    async def mirror(self, channel_id: bytes, state: OnchainState) -> ChannelRecord | None:
        """Record fresh on-chain state for a channel (after a claim, refund or withdrawal)."""
        lock = self._locks.setdefault(channel_id, asyncio.Lock())
        async with lock:
            rec = self._records.get(channel_id)
            if rec is None:
                return None
            new = self._apply(rec, state)
            await self.store.commit(new)
            self._records[channel_id] = new
            return new

    # ---- internals ------------------------------------------------------------------------
    async def _check_signature(
        self, config: ChannelConfig, cid: bytes, max_claimable: int, signature: bytes
    ) -> None:
        """ECDSA recovery; the signer's public key is remembered per channel, so after the first
        voucher a check is one recovery and a 64-byte comparison (no address hashing). A payer
        without a payer authorizer may be a smart wallet: then ERC-1271 on chain decides."""
        digest = cx.voucher_digest(self.domain, cid, max_claimable)
        key = cx.recover_key_id(digest, signature)
        if key is not None:
            known = self._signer_keys.get(cid)
            if known is not None and key == known:
                return
            signer = config.payer_authorizer
            if signer == cx.ZERO_ADDRESS:
                signer = config.payer
            if known is None and cx.address_of(cx.public_key_of(key)) == bytes.fromhex(signer[2:]):
                self._signer_keys[cid] = key
                return
        if (
            config.payer_authorizer == cx.ZERO_ADDRESS
            and self.chain is not None
            and await self.chain.is_valid_signature(config.payer, digest, signature)
        ):
            return
        raise VoucherRejected(
            "voucher signature is not the payer's", reason=ERR_INVALID_VOUCHER_SIGNATURE
        )

    @staticmethod
    def _apply(rec: ChannelRecord, state: OnchainState) -> ChannelRecord:
        return rec.evolve(
            balance=state.balance,
            total_claimed=state.total_claimed,
            charged=max(rec.charged, state.total_claimed),
            withdraw_requested_at=state.withdraw_requested_at,
            refund_nonce=state.refund_nonce,
            synced_at_ms=_now_ms(),
        )

    async def _current(
        self, config: ChannelConfig, cid: bytes, kind: str, payload: Mapping[str, Any]
    ) -> tuple[ChannelRecord, OnchainState | None]:
        rec = self._records.get(cid)
        if kind == "deposit":
            if self.chain is None:
                raise VoucherRejected(
                    "this seller cannot take deposits (no chain access)",
                    reason=ERR_CHANNEL_NOT_FOUND,
                )
            deposit = payload.get("deposit")
            if not isinstance(deposit, Mapping):
                raise ChannelInputError("payload.deposit must be an object")
            state = await self.chain.deposit(config, cid, deposit)
            rec = self._apply(rec or ChannelRecord(channel_id=cid, config=config), state)
            await self.store.commit(rec)
            self._records[cid] = rec
            return rec, state
        if rec is None:
            if self.chain is None:
                raise VoucherRejected(
                    "unknown channel: deposit first", reason=ERR_CHANNEL_NOT_FOUND
                )
            state = await self.chain.read_state(cid)
            if state.balance == 0:
                raise VoucherRejected(
                    "unknown channel: deposit first", reason=ERR_CHANNEL_NOT_FOUND
                )
            rec = self._apply(ChannelRecord(channel_id=cid, config=config), state)
        return rec, None

    def _undo(self, ticket: Ticket) -> None:
        """Write back the channel as it was before a written-ahead charge. Lazily: if a crash
        loses this, the record stays pending and the buyer's next voucher voids the charge."""
        if ticket.intent is None or ticket._lock is None:
            return
        ticket.intent = None
        try:
            self.store.submit_lazy(self._records.get(ticket.record.channel_id, ticket.record))
        except ChannelStoreError:  # closed while shutting down: the restart rule still holds
            pass

    def _release(self, ticket: Ticket) -> None:
        lock, ticket._lock = ticket._lock, None
        if lock is not None:
            self.store.in_flight -= 1
            if lock.locked():
                lock.release()
