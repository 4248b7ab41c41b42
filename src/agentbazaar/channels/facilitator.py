"""`batch-settlement` for our x402 facilitator (a scheme handler for `payments.Facilitator`).

verify: deposit (channel binding, voucher and ERC-3009 signatures, validity window, simulation of
the deposit on chain), voucher and refund vouchers (signature, balance, claimed total).
settle: deposit (relayed; gas paid by the facilitator), claim (`claimWithSignature`, signed by
the facilitator's receiver authorizer when the server did not sign), settle (sweep to the
receiver) and refund (the server's enriched cooperative refund: `refundWithSignature`, after the
server's outstanding claims in the same `multicall`). The receiver authorizer is advertised in `/supported` (`extra.receiverAuthorizer`),
so servers that delegate authorization to this facilitator put it in their channel configs.

    facilitator.register(BatchSettlementHandler(chain, relayer, authorizer))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from x402.mechanisms.evm.batch_settlement.errors import (
    ERR_REFUND_PAYLOAD,
    ERR_REFUND_TRANSACTION_FAILED,
)
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse

from agentbazaar.chain import Chain
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels import wire
from agentbazaar.channels._crypto import ChannelConfig
from agentbazaar.channels.engine import OnchainState
from agentbazaar.channels.errors import ChannelError, VoucherRejected
from agentbazaar.channels.onchain import ChannelContracts
from agentbazaar.errors import AddressError, ChainError
from agentbazaar.primitives import parse_address

_VALID_BEFORE_MARGIN_S = 6


def _state_extra(channel_id: str, state: OnchainState) -> dict[str, Any]:
    return {
        "channelId": channel_id,
        "balance": str(state.balance),
        "totalClaimed": str(state.total_claimed),
        "withdrawRequestedAt": state.withdraw_requested_at,
        "refundNonce": str(state.refund_nonce),
    }


class BatchSettlementHandler:
    scheme = wire.SCHEME

    def __init__(self, chain: Chain, relayer: LocalAccount, authorizer: LocalAccount) -> None:
        self.chain = chain
        self.network = chain.network
        self.relayer = ChannelContracts(chain, relayer)
        self.authorizer = authorizer
        self.domain = cx.domain_separator(chain.chain_id, wire.BATCH_SETTLEMENT_ADDRESS)

    @property
    def networks(self) -> frozenset[str]:
        return frozenset({self.network})

    def signers(self) -> list[str]:
        return [self.relayer.account.address]

    def extra(self, network: str) -> dict[str, Any] | None:
        return {"receiverAuthorizer": self.authorizer.address}

    # ---- verify -------------------------------------------------------------------------------
    async def verify(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        raw = payload.payload
        payer = None
        try:
            self._check_kind(payload, req)
            config, cid = self._bind(raw, req)
            payer = config.payer
            ceiling = cx.parse_amount(raw["voucher"].get("maxClaimableAmount"), "voucher amount")
            self._check_voucher(config, cid, ceiling, raw["voucher"].get("signature"))
            state = await asyncio.to_thread(self.relayer.state, cid)
            balance = state.balance
            if raw.get("type") == "deposit":
                balance += await asyncio.to_thread(self._check_deposit, config, cid, raw, req)
            elif state.balance == 0:
                raise VoucherRejected("no such channel", reason=wire.ERR_CHANNEL_NOT_FOUND)
            if ceiling > balance:
                raise VoucherRejected(
                    "voucher above the channel balance", reason=wire.ERR_CUMULATIVE_EXCEEDS_BALANCE
                )
            refund = raw.get("type") == "refund"
            if ceiling < state.total_claimed or (not refund and ceiling == state.total_claimed):
                raise VoucherRejected(
                    "voucher below the claimed total",
                    reason=wire.ERR_CUMULATIVE_AMOUNT_BELOW_CLAIMED,
                )
        except VoucherRejected as exc:
            return VerifyResponse(
                is_valid=False, invalid_reason=exc.reason, invalid_message=exc.message, payer=payer
            )
        except (ChannelError, KeyError, TypeError, ValueError, AttributeError) as exc:
            return VerifyResponse(
                is_valid=False,
                invalid_reason=wire.ERR_VOUCHER_PAYLOAD,
                invalid_message=str(exc),
                payer=payer,
            )
        return VerifyResponse(
            is_valid=True, payer=payer, extra=_state_extra("0x" + cid.hex(), state)
        )

    def _check_kind(self, payload: PaymentPayload, req: PaymentRequirements) -> None:
        if payload.accepted.scheme != wire.SCHEME or req.scheme != wire.SCHEME:
            raise VoucherRejected("not batch-settlement", reason=wire.ERR_INVALID_SCHEME)
        if payload.accepted.network != req.network or req.network != self.network:
            raise VoucherRejected("wrong network", reason=wire.ERR_NETWORK_MISMATCH)
        if payload.payload.get("type") not in ("deposit", "voucher", "refund"):
            raise VoucherRejected("unknown payload type", reason=wire.ERR_INVALID_PAYLOAD_TYPE)

    def _bind(
        self, raw: Mapping[str, Any], req: PaymentRequirements
    ) -> tuple[ChannelConfig, bytes]:
        config = ChannelConfig.from_wire(raw.get("channelConfig"))
        extra = req.extra or {}
        checks = (
            (config.receiver, req.pay_to, wire.ERR_RECEIVER_MISMATCH),
            (config.token, req.asset, wire.ERR_TOKEN_MISMATCH),
            (
                config.receiver_authorizer,
                extra.get("receiverAuthorizer", config.receiver_authorizer),
                wire.ERR_RECEIVER_AUTHORIZER_MISMATCH,
            ),
        )
        for ours, theirs, reason in checks:
            if not isinstance(theirs, str) or ours.lower() != theirs.lower():
                raise VoucherRejected(
                    "channel config does not match the requirements", reason=reason
                )
        delay = cx.parse_amount(extra.get("withdrawDelay", config.withdraw_delay), "withdrawDelay")
        if delay != config.withdraw_delay:
            raise VoucherRejected(
                "withdraw delay mismatch", reason=wire.ERR_WITHDRAW_DELAY_MISMATCH
            )
        cid = cx.channel_id(self.domain, config)
        voucher = raw.get("voucher")
        if not isinstance(voucher, Mapping):
            raise ChannelError("payload.voucher must be an object")
        if cx.parse_bytes32(voucher.get("channelId"), "voucher.channelId") != cid:
            raise VoucherRejected("channel id mismatch", reason=wire.ERR_CHANNEL_ID_MISMATCH)
        return config, cid

    def _check_voucher(self, config: ChannelConfig, cid: bytes, ceiling: int, sig: Any) -> None:
        signer = config.payer_authorizer
        if signer == cx.ZERO_ADDRESS:
            signer = config.payer
        recovered = cx.recover(
            cx.voucher_digest(self.domain, cid, ceiling), cx.parse_signature(sig)
        )
        if recovered is None or to_checksum_address(recovered) != signer:
            raise VoucherRejected(
                "bad voucher signature", reason=wire.ERR_INVALID_VOUCHER_SIGNATURE
            )

    def _check_deposit(
        self, config: ChannelConfig, cid: bytes, raw: Mapping[str, Any], req: PaymentRequirements
    ) -> int:
        deposit = raw.get("deposit")
        auth = deposit.get("authorization") if isinstance(deposit, Mapping) else None
        erc3009 = auth.get("erc3009Authorization") if isinstance(auth, Mapping) else None
        if not isinstance(deposit, Mapping) or not isinstance(erc3009, Mapping):
            raise VoucherRejected(
                "deposit needs an erc3009Authorization", reason=wire.ERR_DEPOSIT_PAYLOAD
            )
        amount = cx.parse_amount(deposit.get("amount"), "deposit.amount")
        valid_after = cx.parse_amount(erc3009.get("validAfter"), "validAfter")
        valid_before = cx.parse_amount(erc3009.get("validBefore"), "validBefore")
        now = int(time.time())
        if valid_before < now + _VALID_BEFORE_MARGIN_S:
            raise VoucherRejected("authorization expired", reason=wire.ERR_VALID_BEFORE_EXPIRED)
        if valid_after > now:
            raise VoucherRejected(
                "authorization not yet valid", reason=wire.ERR_VALID_AFTER_IN_FUTURE
            )
        salt = cx.parse_bytes32(erc3009.get("salt"), "salt")
        extra = req.extra or {}
        domain = cx.token_domain(
            self.chain.chain_id,
            config.token,
            str(extra.get("name", "USD Coin")),
            str(extra.get("version", "2")),
        )
        digest = cx.receive_authorization_digest(
            domain,
            config.payer,
            wire.ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
            amount,
            valid_after,
            valid_before,
            cx.deposit_nonce(cid, salt),
        )
        signer = cx.recover(digest, cx.parse_signature(erc3009.get("signature"), "signature"))
        if signer is None or to_checksum_address(signer) != config.payer:
            raise VoucherRejected(
                "bad deposit authorization", reason=wire.ERR_INVALID_RECEIVE_AUTHORIZATION_SIGNATURE
            )
        try:  # everything else (balance, used nonce, token quirks): simulate the deposit
            self.relayer.simulate_deposit(config, deposit)
        except ChainError as exc:
            raise VoucherRejected(
                f"deposit would fail: {exc}", reason=wire.ERR_DEPOSIT_SIMULATION_FAILED
            ) from exc
        return amount

    # ---- settle -------------------------------------------------------------------------------
    async def settle(self, payload: PaymentPayload, req: PaymentRequirements) -> SettleResponse:
        raw = payload.payload
        kind = raw.get("type")
        try:
            if kind == "deposit":
                return await self._settle_deposit(payload, req)
            if kind == "claim":
                tx = await asyncio.to_thread(self._claim, raw)
                return SettleResponse(success=True, transaction=tx, network=self.network)
            if kind == "refund":
                return await asyncio.to_thread(self._refund, raw)
            if kind == "settle":
                receiver = parse_address(raw.get("receiver"))
                token = parse_address(raw.get("token"))
                tx = await asyncio.to_thread(self.relayer.settle, receiver, token)
                return SettleResponse(
                    success=True, transaction=tx, network=self.network, payer=receiver
                )
        except VoucherRejected as exc:
            return self._failure(exc.reason, exc.message)
        except ChainError as exc:
            failed = {
                "claim": wire.ERR_CLAIM_TRANSACTION_FAILED,
                "refund": ERR_REFUND_TRANSACTION_FAILED,
            }
            return self._failure(
                failed.get(str(kind), wire.ERR_SETTLE_TRANSACTION_FAILED), str(exc)
            )
        except (ChannelError, AddressError, KeyError, TypeError, ValueError, AttributeError) as exc:
            bad = {"claim": wire.ERR_CLAIM_PAYLOAD, "refund": ERR_REFUND_PAYLOAD}
            return self._failure(bad.get(str(kind), wire.ERR_SETTLE_PAYLOAD), str(exc))
        return self._failure(wire.ERR_UNKNOWN_SETTLE_ACTION, f"cannot settle a {kind!r} payload")

    async def _settle_deposit(
        self, payload: PaymentPayload, req: PaymentRequirements
    ) -> SettleResponse:
        verified = await self.verify(payload, req)
        if not verified.is_valid:
            return self._failure(
                verified.invalid_reason or wire.ERR_DEPOSIT_PAYLOAD, verified.invalid_message or ""
            )
        raw = payload.payload
        config, cid = self._bind(raw, req)
        state = await self.relayer.deposit(config, cid, raw["deposit"])
        return SettleResponse(
            success=True,
            transaction=state.transaction,
            network=self.network,
            payer=config.payer,
            amount=str(raw["deposit"]["amount"]),
            extra={"channelState": _state_extra("0x" + cid.hex(), state)},
        )

    def _claim(self, raw: Mapping[str, Any]) -> str:
        fn = self.relayer.escrow.functions.claimWithSignature(*self._claim_args(raw))
        receipt = self.chain.transact(self.relayer.account, fn)
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def _claim_args(self, raw: Mapping[str, Any]) -> tuple[list[Any], bytes]:
        """`claimWithSignature` arguments for ``raw["claims"]`` (signed by our authorizer unless
        ``claimAuthorizerSignature`` is given)."""
        claims = raw.get("claims")
        if not isinstance(claims, list) or not claims:
            raise ChannelError("claims must be a non-empty list")
        rows: list[Any] = []
        entries: list[tuple[bytes, int, int]] = []
        for c in claims:
            config = ChannelConfig.from_wire(c["voucher"]["channel"])
            ceiling = cx.parse_amount(c["voucher"]["maxClaimableAmount"], "maxClaimableAmount")
            total = cx.parse_amount(c["totalClaimed"], "totalClaimed")
            rows.append(((config.as_tuple(), ceiling), cx.parse_signature(c["signature"]), total))
            entries.append((cx.channel_id(self.domain, config), ceiling, total))
            if config.receiver_authorizer != self.authorizer.address and not raw.get(
                "claimAuthorizerSignature"
            ):
                raise VoucherRejected(
                    "this facilitator is not the channel's receiver authorizer",
                    reason=wire.ERR_AUTHORIZER_ADDRESS_MISMATCH,
                )
        signature = raw.get("claimAuthorizerSignature")
        if signature:
            auth_sig = cx.parse_signature(signature, "claimAuthorizerSignature")
        else:
            digest = cx.claim_batch_digest(self.domain, entries)
            auth_sig = cx.sign(bytes(self.authorizer.key), digest)
        return rows, auth_sig

    def _refund(self, raw: Mapping[str, Any]) -> SettleResponse:
        """The server's enriched refund: claim its outstanding vouchers, then return up to
        ``amount`` of the rest to the payer with `refundWithSignature` (one transaction)."""
        config = ChannelConfig.from_wire(raw.get("channelConfig"))
        cid = cx.channel_id(self.domain, config)
        amount = cx.parse_amount(raw.get("amount"), "amount")
        nonce = cx.parse_amount(raw.get("refundNonce"), "refundNonce")
        claims = raw.get("claims") or []
        before = self.relayer.state(cid)
        claimed_after = before.total_claimed
        for c in claims:
            if cx.channel_id(self.domain, ChannelConfig.from_wire(c["voucher"]["channel"])) == cid:
                total = cx.parse_amount(c["totalClaimed"], "totalClaimed")
                claimed_after = max(claimed_after, total)
        available = before.balance - claimed_after
        if amount == 0 or available <= 0:
            raise VoucherRejected("nothing to refund", reason=wire.ERR_REFUND_NO_BALANCE)
        signature = raw.get("refundAuthorizerSignature")
        if signature:
            refund_sig = cx.parse_signature(signature, "refundAuthorizerSignature")
        elif config.receiver_authorizer != self.authorizer.address:
            raise VoucherRejected(
                "this facilitator is not the channel's receiver authorizer",
                reason=wire.ERR_AUTHORIZER_ADDRESS_MISMATCH,
            )
        else:
            digest = cx.refund_digest(self.domain, cid, nonce, amount)
            refund_sig = cx.sign(bytes(self.authorizer.key), digest)
        escrow = self.relayer.escrow
        refund_args = [config.as_tuple(), amount, nonce, refund_sig]
        if claims:
            calls = [
                escrow.encode_abi("claimWithSignature", args=list(self._claim_args(raw))),
                escrow.encode_abi("refundWithSignature", args=refund_args),
            ]
            fn = escrow.functions.multicall([bytes.fromhex(c[2:]) for c in calls])
        else:
            fn = escrow.functions.refundWithSignature(*refund_args)
        receipt = self.chain.transact(self.relayer.account, fn)
        after = self.relayer.state(cid)
        return SettleResponse(
            success=True,
            transaction="0x" + bytes(receipt["transactionHash"]).hex(),
            network=self.network,
            payer=config.payer,
            amount=str(before.balance - after.balance),
            extra={"channelState": _state_extra("0x" + cid.hex(), after)},
        )

    def _failure(self, reason: str, message: str) -> SettleResponse:
        return SettleResponse(
            success=False,
            error_reason=reason,
            error_message=message,
            transaction="",
            network=self.network,
        )
