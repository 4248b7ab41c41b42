"""The buying side of `batch-settlement`: deposit once per channel, then one cumulative voucher
per request, every signature through the wallet's spending policy and ledger.

- A deposit is a wallet spend of kind ``"deposit"`` (the ERC-3009 authorization that funds the
  escrow): it counts as escrowed (against the policy's ``max_escrow``), not against the budget;
  each request is a spend of kind ``"voucher"`` for its price (the increase of the cumulative
  amount), which counts against the budget and the per-payment maximum, keyed by
  ``(channel, cumulative ceiling)``: a retry of the same request reuses the signed voucher from
  the ledger and never signs twice. ``ChannelBuyer.refund`` asks the seller for the unspent
  escrow back (checked on chain when the buyer has a chain); escrow that comes back (a refund or
  a withdrawal) is recorded with ``ChannelBuyer.refunded`` and frees the escrow cap (see
  ``agentbazaar.wallet``).
- The seller's state is checked, not trusted: a payment response must charge exactly what the
  voucher allowed; a corrective 402 is adopted only when the seller proves its charged total
  with a voucher this buyer signed (so a buyer that lost its local state picks up where it was).
- With a chain, a buyer that lost its state reads the channel's balance on chain before
  deciding to deposit.
- Without the seller, the payer takes its escrow back in two steps on chain:
  ``initiate_withdraw`` (the seller may still claim its charges during the channel's
  ``withdrawDelay``; ours does at once) and, after the delay, ``finalize_withdraw``, which
  records what came back with ``refunded``. Both are checked against the chain and simulated
  before the wallet signs (``Wallet.send_release``): a call the escrow would refuse raises
  ``WithdrawalRejected`` with nothing signed or sent. ``recover_withdrawals`` records a
  finished withdrawal the ledger missed (a crash after the transaction).

    buyer = ChannelBuyer(wallet, chain_id=31337, chain=chain)
    async with httpx.AsyncClient() as http:
        response = await buyer.get(http, "http://127.0.0.1:8000/quote")
    pending = await buyer.initiate_withdraw(channel_id)        # amount None: all not signed over
    ...                                                        # after pending.finalize_after
    back = await buyer.finalize_withdraw(channel_id)           # base units back, in the ledger
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.types import TxReceipt

from agentbazaar.chain import Chain
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels._crypto import ChannelConfig
from agentbazaar.channels.errors import ChannelError, ChannelInputError, WithdrawalRejected
from agentbazaar.channels.onchain import (
    escrow_contract,
    escrow_error,
    escrow_events,
    escrow_state,
    finalized_withdrawals,
    pending_withdrawal,
    transferred,
)
from agentbazaar.channels.wire import (
    BATCH_SETTLEMENT_ADDRESS,
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    ERR_CUMULATIVE_AMOUNT_MISMATCH,
    SCHEME,
    channel_payload,
    deposit_wire,
    payment_header,
    voucher_wire,
)
from agentbazaar.errors import AmountError, TransactionReverted
from agentbazaar.wallet import Wallet


@dataclass(frozen=True)
class PendingWithdrawal:
    channel_id: bytes
    amount: int  # base units asked back
    finalize_after: int  # unix time from which `finalize_withdraw` succeeds
    transaction: str


@dataclass
class BuyerChannel:
    config: ChannelConfig
    channel_id: bytes
    charged: int = 0  # the seller's acknowledged cumulative charge
    balance: int = 0  # deposited minus refunded/withdrawn (as last seen)
    known: bool = False  # state came from a response, a proof, or the chain


class ChannelBuyer:
    def __init__(
        self,
        wallet: Wallet,
        *,
        chain_id: int,
        chain: Chain | None = None,
        deposit_multiplier: int = 100,
        salt: bytes = bytes(32),
        approve: bool = False,
    ) -> None:
        self.wallet = wallet
        self.chain_id = chain_id
        self.chain = chain
        self.deposit_multiplier = deposit_multiplier
        self.salt = salt
        self.approve = approve
        self.domain = cx.domain_separator(chain_id, BATCH_SETTLEMENT_ADDRESS)
        self.channels: dict[bytes, BuyerChannel] = {}

    # ---- the payment payloads ---------------------------------------------------------------
    def channel_for(self, req: Mapping[str, Any]) -> BuyerChannel:
        extra = req.get("extra") or {}
        me = self.wallet.address
        config = ChannelConfig.from_wire(
            {
                "payer": me,
                "payerAuthorizer": me,
                "receiver": req.get("payTo"),
                "receiverAuthorizer": extra.get("receiverAuthorizer"),
                "token": req.get("asset"),
                "withdrawDelay": extra.get("withdrawDelay"),
                "salt": "0x" + self.salt.hex(),
            }
        )
        cid = cx.channel_id(self.domain, config)
        channel = self.channels.get(cid)
        if channel is None:
            channel = self.channels[cid] = BuyerChannel(config, cid)
        if not channel.known and self.chain is not None:
            self._read_chain(channel)
        return channel

    def payload_for(self, req: Mapping[str, Any]) -> dict[str, Any]:
        """The inner `payload` paying requirement ``req`` (deposit + voucher, or voucher)."""
        if req.get("scheme") != SCHEME or req.get("network") != f"eip155:{self.chain_id}":
            raise ChannelError(f"not a {SCHEME} requirement on eip155:{self.chain_id}")
        price = cx.parse_amount(req.get("amount"), "amount")
        channel = self.channel_for(req)
        ceiling = channel.charged + price
        voucher, fresh_id = self._voucher(channel, ceiling, price)
        deposit: dict[str, Any] | None = None
        if ceiling > channel.balance:
            extra = req.get("extra") or {}
            floor = extra.get("minDeposit", 0)
            amount = max(
                price * self.deposit_multiplier,
                ceiling - channel.balance,
                cx.parse_amount(floor, "extra.minDeposit"),
            )
            try:
                deposit = self._deposit(channel, amount, req)
            except BaseException:
                if fresh_id is not None:  # signed just now and never sent: release its charge
                    self.wallet.ledger.mark_failed(fresh_id, "its deposit was not signed")
                raise
        return channel_payload(channel.config.to_wire(), voucher, deposit)

    def _voucher(
        self, channel: BuyerChannel, ceiling: int, price: int
    ) -> tuple[dict[str, str], int | None]:
        """The voucher for ``ceiling`` and, when it was signed by this call, its ledger id."""
        cid_hex = "0x" + channel.channel_id.hex()
        digest = cx.voucher_digest(self.domain, channel.channel_id, ceiling)
        amount = max(price, 1)
        key = f"voucher:{cid_hex}:{ceiling}"
        earlier = self.wallet.ledger.get(self.wallet.name, key)
        if earlier is not None and earlier.amount != amount:
            # this ceiling was signed before for a request at another price that the seller
            # never acknowledged (or this buyer lost its state): the signature is the same (it
            # covers channel and ceiling only); this request gets its own row in the budget
            key = f"{key}:{amount}"
        with self.wallet.spend(
            kind="voucher",
            token=channel.config.token,
            amount=amount,
            counterparty=channel.config.receiver,
            idempotency_key=key,
            approve=self.approve,
            chain_id=self.chain_id,
            memo={
                "channel": cid_hex,
                "maxClaimableAmount": str(ceiling),
                "escrow": BATCH_SETTLEMENT_ADDRESS,
            },
        ) as spend:
            fresh_id: int | None = None
            if spend.replayed and spend.payload:
                signature = str(spend.payload["signature"])
            else:
                signature = spend.sign_with(
                    lambda acct: "0x" + cx.sign(bytes(acct.key), digest).hex(),
                    lambda sig: {"type": "voucher", "channelId": cid_hex, "signature": sig},
                )
                fresh_id = spend.record.id
        return voucher_wire(channel.channel_id, ceiling, signature), fresh_id

    def _deposit(
        self, channel: BuyerChannel, amount: int, req: Mapping[str, Any]
    ) -> dict[str, Any]:
        extra = req.get("extra") or {}
        token = channel.config.token
        salt = os.urandom(32)
        ahead = self.chain.seconds_ahead() if self.chain is not None else 0  # a warped clock
        valid_before = int(time.time()) + ahead + int(req.get("maxTimeoutSeconds") or 3600)
        nonce = cx.deposit_nonce(channel.channel_id, salt)
        name, version = str(extra.get("name", "USD Coin")), str(extra.get("version", "2"))
        digest = cx.receive_authorization_digest(
            cx.token_domain(self.chain_id, token, name, version),
            self.wallet.address,
            ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
            amount,
            0,
            valid_before,
            nonce,
        )

        def sign(acct: LocalAccount) -> str:
            return "0x" + cx.sign(bytes(acct.key), digest).hex()

        cid_hex = "0x" + channel.channel_id.hex()
        with self.wallet.spend(
            kind="deposit",
            token=token,
            amount=amount,
            counterparty=channel.config.receiver,
            idempotency_key=f"deposit:{cid_hex}:0x{salt.hex()}",
            approve=self.approve,
            chain_id=self.chain_id,
            memo={"channel": cid_hex, "escrow": BATCH_SETTLEMENT_ADDRESS},
        ) as spend:
            # the authorization and its domain, so reconcile can prove it used, expired or
            # cancelled (a deposit the seller never relayed is not held on chain)
            signature = spend.sign_with(
                sign,
                lambda sig: {
                    "type": "deposit",
                    "signature": sig,
                    "authorization": {
                        "from": self.wallet.address,
                        "to": ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
                        "value": str(amount),
                        "validAfter": "0",
                        "validBefore": str(valid_before),
                        "nonce": "0x" + nonce.hex(),
                    },
                    "domain": {
                        "name": name,
                        "version": version,
                        "chainId": self.chain_id,
                        "verifyingContract": token,
                    },
                },
            )
        return deposit_wire(amount, valid_before, salt, signature)

    # ---- what the seller answers --------------------------------------------------------------
    def on_settled(self, req: Mapping[str, Any], payload: Mapping[str, Any], settle: Any) -> None:
        """Check and apply a PAYMENT-RESPONSE."""
        if not isinstance(settle, dict) or settle.get("success") is not True:
            raise ChannelError("the seller's payment response is not a success")
        channel = self.channel_for(req)
        extra = settle.get("extra") or {}
        state = extra.get("channelState") or {}
        ceiling = cx.parse_amount(payload["voucher"]["maxClaimableAmount"], "maxClaimableAmount")
        charged = cx.parse_amount(state.get("chargedCumulativeAmount"), "chargedCumulativeAmount")
        if not channel.charged <= charged <= ceiling:
            raise ChannelError(
                f"the seller claims {charged} charged, outside {channel.charged}..{ceiling}"
            )
        channel.charged = charged
        if "balance" in state:
            channel.balance = cx.parse_amount(state["balance"], "balance")
        elif payload.get("type") == "deposit":
            channel.balance += cx.parse_amount(payload["deposit"]["amount"], "deposit.amount")
        channel.known = True
        cid_hex = "0x" + channel.channel_id.hex()
        keys = [f"voucher:{cid_hex}:{ceiling}"]
        if payload.get("type") == "deposit":
            auth = payload["deposit"]["authorization"]["erc3009Authorization"]
            keys.append(f"deposit:{cid_hex}:{auth['salt']}")  # the seller deposited it
        for key in keys:
            record = self.wallet.ledger.get(self.wallet.name, key)
            if record is not None and record.status == "signed":
                self.wallet.ledger.mark_settled(record.id)

    def refunded(self, channel: BuyerChannel, amount: int, *, tx_hash: str) -> None:
        """Record ``amount`` of ``channel``'s escrow returned to this wallet by ``tx_hash`` (a
        refund or a finished withdrawal): the ledger's escrow goes down (once per transaction)."""
        cid_hex = "0x" + channel.channel_id.hex()
        self.wallet.record_refund(
            token=channel.config.token,
            amount=amount,
            counterparty=channel.config.receiver,
            idempotency_key=f"refund:{cid_hex}:{tx_hash.lower()}",
            tx_hash=tx_hash,
            chain_id=self.chain_id,
            memo={"channel": cid_hex, "escrow": BATCH_SETTLEMENT_ADDRESS},
        )
        channel.balance = max(channel.balance - amount, 0)

    def on_corrective(self, req: Mapping[str, Any]) -> bool:
        """Adopt the seller's charged total from a corrective 402 if it proves it; True if so."""
        extra = req.get("extra") or {}
        state, proof = extra.get("channelState"), extra.get("voucherState")
        if not isinstance(state, dict) or not isinstance(proof, dict):
            return False
        channel = self.channel_for(req)
        if state.get("channelId", "").lower() != "0x" + channel.channel_id.hex():
            return False
        charged = cx.parse_amount(state.get("chargedCumulativeAmount"), "chargedCumulativeAmount")
        ceiling = cx.parse_amount(proof.get("signedMaxClaimable"), "signedMaxClaimable")
        signature = cx.parse_signature(proof.get("signature"), "voucherState.signature")
        signer = cx.recover(cx.voucher_digest(self.domain, channel.channel_id, ceiling), signature)
        if signer is None or to_checksum_address(signer) != self.wallet.address:
            return False  # not a voucher of ours: the seller cannot prove that charge
        if charged > ceiling:
            return False
        channel.charged = charged
        channel.balance = max(channel.balance, cx.parse_amount(state.get("balance", "0"), "bal"))
        channel.known = True
        return True

    def _onchain_balance(self, channel: BuyerChannel) -> int | None:
        if self.chain is None:
            return None
        balance, _ = escrow_contract(self.chain).functions.channels(channel.channel_id).call()
        return int(balance)

    def _read_chain(self, channel: BuyerChannel) -> None:
        assert self.chain is not None
        balance, claimed = escrow_contract(self.chain).functions.channels(channel.channel_id).call()
        channel.balance = int(balance)
        channel.charged = max(channel.charged, int(claimed))
        channel.known = True

    # ---- the payer's timed withdrawal (no seller needed) -------------------------------------
    async def initiate_withdraw(
        self, channel_or_id: BuyerChannel | bytes | str, amount: int | None = None
    ) -> PendingWithdrawal:
        """Start taking ``amount`` of the channel's escrow back on chain, without the seller:
        `initiateWithdraw` sent by this wallet (the channel's payer). At most, and by default
        (``amount`` None), what this wallet has not signed over: the balance minus the highest
        voucher in its ledger (or the claimed total, if higher); a voucher the seller holds is
        its money even before it is claimed. The seller may still claim until the delay ends;
        then call ``finalize_withdraw``. Checked and simulated first: nothing to withdraw, a
        pending withdrawal or a larger amount raise ``WithdrawalRejected`` with nothing signed
        or sent."""
        return await asyncio.to_thread(self._initiate_withdraw, channel_or_id, amount)

    async def finalize_withdraw(self, channel_or_id: BuyerChannel | bytes | str) -> int:
        """Finish a timed withdrawal once its delay has passed: `finalizeWithdraw` sent by this
        wallet. Returns the amount that came back (from the `WithdrawFinalized` event, checked
        against the channel's balance on chain), recorded with ``refunded`` so the wallet's
        escrow is freed. Before the delay, or with no withdrawal pending, raises
        ``WithdrawalRejected`` with nothing signed or sent."""
        return await asyncio.to_thread(self._finalize_withdraw, channel_or_id)

    async def recover_withdrawals(
        self, channel_or_id: BuyerChannel | bytes | str, *, from_block: int = 0
    ) -> int:
        """Record every finished withdrawal of the channel (its `WithdrawFinalized` logs since
        ``from_block``) that the ledger does not have yet, e.g. after a crash between
        ``finalize_withdraw``'s transaction and its ledger write. Returns the amount newly
        recorded; calling it again records nothing twice."""
        return await asyncio.to_thread(self._recover_withdrawals, channel_or_id, from_block)

    def _initiate_withdraw(
        self, channel_or_id: BuyerChannel | bytes | str, amount: int | None
    ) -> PendingWithdrawal:
        channel, chain = self._own_channel(channel_or_id)
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise AmountError(f"amounts are integer base units, not {type(amount).__name__}")
        if amount is not None and amount <= 0:
            raise AmountError(f"a withdrawal must be positive, got {amount}")
        state = escrow_state(chain, channel.channel_id)
        cid_hex = "0x" + channel.channel_id.hex()
        if state.balance == 0:
            raise WithdrawalRejected(
                f"channel {cid_hex} holds nothing on chain", reason="NothingToWithdraw"
            )
        if state.withdraw_requested_at:
            after = state.withdraw_requested_at + channel.config.withdraw_delay
            raise WithdrawalRejected(
                f"a withdrawal from channel {cid_hex} is already pending; finalize it after "
                f"{after} (unix time)",
                reason="WithdrawalAlreadyPending",
                finalize_after=after,
            )
        # what this wallet signed away (its ledger's vouchers), claimed or not, stays the seller's
        owed = max(state.total_claimed, channel.charged, self._signed_ceiling(channel))
        unspent = max(state.balance - owed, 0)
        if amount is None:
            amount = unspent
            if amount <= 0:
                raise WithdrawalRejected(
                    f"channel {cid_hex} has nothing left that was not charged",
                    reason="NothingToWithdraw",
                )
        elif amount > unspent:
            raise WithdrawalRejected(
                f"{amount} is more than the {unspent} of channel {cid_hex} that this wallet "
                f"has not signed over in vouchers (balance {state.balance}, vouchers {owed})",
                reason="WithdrawAmountExceedsAvailable",
                amount=amount,
                available=unspent,
            )
        fn = escrow_contract(chain).functions.initiateWithdraw(channel.config.as_tuple(), amount)
        receipt = self._send_own(chain, fn)
        event = self._event(chain, receipt, "WithdrawInitiated", channel)
        return PendingWithdrawal(
            channel_id=channel.channel_id,
            amount=int(event["amount"]),
            finalize_after=int(event["finalizeAfter"]),
            transaction=HexBytes(receipt["transactionHash"]).to_0x_hex(),
        )

    def _finalize_withdraw(self, channel_or_id: BuyerChannel | bytes | str) -> int:
        channel, chain = self._own_channel(channel_or_id)
        cid_hex = "0x" + channel.channel_id.hex()
        _, initiated_at = pending_withdrawal(chain, channel.channel_id)
        if not initiated_at:
            raise WithdrawalRejected(
                f"no withdrawal is pending on channel {cid_hex}: initiate one first",
                reason="WithdrawalNotPending",
            )
        after = initiated_at + channel.config.withdraw_delay
        now = chain.timestamp()
        if now < after:
            raise WithdrawalRejected(
                f"the withdrawal delay of channel {cid_hex} ends at {after} (unix time), "
                f"{after - now} s from the chain's latest block",
                reason="WithdrawDelayNotElapsed",
                finalize_after=after,
            )
        fn = escrow_contract(chain).functions.finalizeWithdraw(channel.config.as_tuple())
        receipt = self._send_own(chain, fn)
        tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        amount = int(self._event(chain, receipt, "WithdrawFinalized", channel)["amount"])
        config = channel.config
        paid = transferred(receipt, config.token, BATCH_SETTLEMENT_ADDRESS, config.payer)
        if paid != amount:  # the event and the token disagree: record nothing, say so
            raise ChannelError(
                f"withdrawal {tx_hash} says {amount} came back but the token moved {paid} to "
                f"the payer: not recorded (check the escrow at {BATCH_SETTLEMENT_ADDRESS})",
                transaction=tx_hash,
            )
        if amount > 0:
            self.refunded(channel, amount, tx_hash=tx_hash)
        return amount

    def _recover_withdrawals(
        self, channel_or_id: BuyerChannel | bytes | str, from_block: int
    ) -> int:
        channel, chain = self._own_channel(channel_or_id)
        cid_hex = "0x" + channel.channel_id.hex()
        recorded = 0
        for tx_hash, amount in finalized_withdrawals(chain, channel.channel_id, from_block):
            key = f"refund:{cid_hex}:{tx_hash.lower()}"
            if amount > 0 and self.wallet.ledger.get(self.wallet.name, key) is None:
                self.refunded(channel, amount, tx_hash=tx_hash)
                recorded += amount
        return recorded

    def _signed_ceiling(self, channel: BuyerChannel) -> int:
        """The highest cumulative amount this wallet signed a voucher for on ``channel``."""
        cid_hex = "0x" + channel.channel_id.hex()
        ceilings = [
            cx.parse_amount(r.memo.get("maxClaimableAmount", "0"), "maxClaimableAmount")
            for r in self.wallet.ledger.records(self.wallet.name, statuses=("signed", "settled"))
            if r.kind == "voucher" and r.memo.get("channel") == cid_hex
        ]
        return max(ceilings, default=0)

    @staticmethod
    def _event(
        chain: Chain, receipt: TxReceipt, name: str, channel: BuyerChannel
    ) -> dict[str, Any]:
        """The one ``name`` event of ``channel`` in a receipt of our own call."""
        events = escrow_events(chain, receipt, name, channel.channel_id)
        if len(events) != 1:
            tx = HexBytes(receipt["transactionHash"]).to_0x_hex()
            raise ChannelError(f"{tx} logged {len(events)} {name} events for the channel, not 1")
        return events[0]

    def _own_channel(self, channel_or_id: BuyerChannel | bytes | str) -> tuple[BuyerChannel, Chain]:
        """The channel this buyer pays through (by object or id) and the chain to withdraw on."""
        if self.chain is None:
            raise ChannelError("a withdrawal needs the chain: give ChannelBuyer(chain=...)")
        if isinstance(channel_or_id, BuyerChannel):
            cid = channel_or_id.channel_id
        elif isinstance(channel_or_id, bytes):
            cid = channel_or_id
        elif isinstance(channel_or_id, str):
            cid = cx.parse_bytes32(channel_or_id, "channel id")
        else:
            raise ChannelInputError("a channel is a BuyerChannel or its 32-byte id")
        channel = self.channels.get(cid)
        if channel is None:
            raise ChannelInputError(
                f"unknown channel 0x{cid.hex()}: this buyer has not paid through it "
                "(its config is needed to withdraw)"
            )
        return channel, self.chain

    def _send_own(self, chain: Chain, fn: Any) -> TxReceipt:
        """Simulate ``fn`` as this wallet, then send it through the wallet; a revert in the
        simulation becomes ``WithdrawalRejected`` (nothing signed or sent)."""
        try:
            chain.call(fn, sender=self.wallet.address)
        except TransactionReverted as exc:
            name = escrow_error(exc.fields.get("reason"))
            raise WithdrawalRejected(
                f"the escrow refuses {fn.fn_name}: {name or exc}", reason=name or "reverted"
            ) from exc
        return self.wallet.send_release(chain, fn)

    # ---- HTTP ---------------------------------------------------------------------------------
    async def requirement_at(
        self, http: httpx.AsyncClient, url: str, *, method: str = "GET"
    ) -> dict[str, Any]:
        """The seller's `batch-settlement` requirement for ``url`` (from its 402), which names
        the channel this buyer pays it through: ``channel_for(await requirement_at(...))``."""
        response = await http.request(method, url)
        if response.status_code != 402:
            raise ChannelError(f"{url} did not ask for payment ({response.status_code})")
        return _pick(_decode(response.headers.get("PAYMENT-REQUIRED")), self.chain_id)

    async def refund(
        self, http: httpx.AsyncClient, url: str, *, amount: int | None = None, method: str = "GET"
    ) -> int:
        """Ask the seller behind ``url`` for the unspent escrow back (cooperative refund: the
        voucher of the charged total, which this wallet signed before and which charges nothing
        more). ``amount`` None: all of it. Returns the amount refunded, recorded in the ledger."""
        req = await self.requirement_at(http, url, method=method)
        channel = self.channel_for(req)
        cid_hex = "0x" + channel.channel_id.hex()
        signed = self.wallet.ledger.get(self.wallet.name, f"voucher:{cid_hex}:{channel.charged}")
        if signed is None or signed.status not in ("signed", "settled") or not signed.payload:
            raise ChannelError(
                f"no voucher for the charged total {channel.charged} of channel {cid_hex} "
                "in the ledger: nothing to refund against"
            )
        payload = channel_payload(
            channel.config.to_wire(),
            voucher_wire(channel.channel_id, channel.charged, str(signed.payload["signature"])),
        )
        payload["type"] = "refund"
        if amount is not None:
            payload["amount"] = str(cx.parse_amount(amount, "amount"))
        before = self._onchain_balance(channel)
        answer = await http.request(
            method, url, headers={"PAYMENT-SIGNATURE": payment_header(req, payload)}
        )
        if answer.status_code >= 400 or "PAYMENT-RESPONSE" not in answer.headers:
            raise ChannelError(f"the seller refused the refund ({answer.status_code})")
        settle = _decode(answer.headers["PAYMENT-RESPONSE"])
        if not isinstance(settle, dict) or settle.get("success") is not True:
            raise ChannelError("the seller's refund response is not a success")
        refunded = cx.parse_amount(settle.get("amount"), "amount")
        if amount is not None and refunded > amount:
            raise ChannelError(f"the seller says it refunded {refunded}, more than {amount}")
        tx_hash = str(settle.get("transaction") or "")
        after = self._onchain_balance(channel)
        if before is not None and after is not None and before - after != refunded:
            raise ChannelError(
                f"the seller says it refunded {refunded}; the channel's balance on chain went "
                f"from {before} to {after}"
            )
        if refunded > 0:
            if not tx_hash:
                raise ChannelError("the seller's refund response names no transaction")
            self.refunded(channel, refunded, tx_hash=tx_hash)
        return refunded

    async def get(self, http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
        """GET ``url``, paying with this channel when the server answers 402."""
        return await self.request(http, "GET", url, **kwargs)

    async def request(
        self, http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        response = await http.request(method, url, headers=headers, **kwargs)
        resynced = paid = False
        while response.status_code == 402:
            required = _decode(response.headers.get("PAYMENT-REQUIRED"))
            req = _pick(required, self.chain_id)
            if required.get("error") == ERR_CUMULATIVE_AMOUNT_MISMATCH:
                if resynced or not self.on_corrective(req):
                    return response  # the seller cannot prove its state: do not pay on
                resynced = True
            elif paid:
                return response  # paid and still refused: the reason is in the body
            payload = self.payload_for(req)
            paid_headers = {**headers, "PAYMENT-SIGNATURE": payment_header(req, payload)}
            response = await http.request(method, url, headers=paid_headers, **kwargs)
            paid = True
            if response.status_code < 400 and "PAYMENT-RESPONSE" in response.headers:
                self.on_settled(req, payload, _decode(response.headers["PAYMENT-RESPONSE"]))
        return response


def _decode(value: str | None) -> Any:
    if not value:
        raise ChannelError("the server's 402 has no PAYMENT-REQUIRED header")
    try:
        return json.loads(base64.b64decode(value))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ChannelError("the server sent a header that is not base64 JSON") from exc


def _pick(required: Any, chain_id: int) -> dict[str, Any]:
    accepts = required.get("accepts") if isinstance(required, dict) else None
    for req in accepts or []:
        if (
            isinstance(req, dict)
            and req.get("scheme") == SCHEME
            and req.get("network") == f"eip155:{chain_id}"
        ):
            return req
    raise ChannelError(f"the server does not accept {SCHEME} on eip155:{chain_id}")
