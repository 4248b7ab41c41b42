"""Who signs an x402 payment: ``WalletPayer``, our wallet (``Wallet.spend`` checks the spending
policy and reserves in the ledger before the SDK signs; the ledger is the idempotency store).
There is no other signing path for a payment.

A payer gets the ``PaymentIntent`` the client chose (what the policy sees) and the seller's
``PaymentRequired``, and returns an ``Authorized``: the signed payload and how to record its
outcome (settled with its transaction, or refused with the seller's reason).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from x402 import x402ClientSync
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse

from agentbazaar.chain import Chain
from agentbazaar.errors import InputError, PaymentError
from agentbazaar.payments.once import PAYMENT_IDENTIFIER, payment_identifier_for
from agentbazaar.primitives import network_chain_id
from agentbazaar.tokens import Token


@dataclass(frozen=True)
class PaymentIntent:
    """What the policy sees before a signature: who is paid how much of what, for what."""

    url: str
    network: str
    asset: str
    amount: int
    pay_to: str
    idempotency_key: str
    scheme: str = "exact"


class Authorized(Protocol):
    """A signed payment, and how to record its outcome."""

    payload: PaymentPayload
    replayed: bool

    def settled(self, settle: SettleResponse) -> None: ...

    def refused(self, reason: str) -> None: ...


class Payer(Protocol):
    @property
    def address(self) -> str: ...

    def authorize(self, intent: PaymentIntent, required: PaymentRequired) -> Authorized: ...


def sign_with_sdk(
    account: LocalAccount,
    required: PaymentRequired,
    chosen: PaymentRequirements,
    *,
    payment_id: str | None = None,
    seconds_ahead: int = 0,
) -> PaymentPayload:
    """The SDK's own EIP-3009 signer, for exactly the requirement we chose; ``payment_id`` goes
    in the ``payment-identifier`` extension when the seller declares it.

    ``seconds_ahead``: how far the chain's clock runs ahead of this machine's (a warped local
    chain). The SDK sets ``validBefore`` from the wall clock plus ``maxTimeoutSeconds``; the
    chain checks it against the block's time, so the window is widened by the lead and the
    payload still names the seller's requirement unchanged (the signature covers only the
    authorization)."""
    client = register_exact_evm_client(
        x402ClientSync(), EthAccountSigner(account), networks=chosen.network
    )
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": chosen.network,
                    "asset": chosen.asset,
                    "max_amount_per_payment": chosen.amount,
                }
            ]
        }
    )
    signed_for = chosen
    if seconds_ahead > 0:
        window = (chosen.max_timeout_seconds or 0) + seconds_ahead
        signed_for = chosen.model_copy(update={"max_timeout_seconds": window})
    only = required.model_copy(update={"accepts": [signed_for]})
    payload = client.create_payment_payload(
        only, extensions=_with_payment_id(required.extensions, payment_id)
    )
    if not isinstance(payload, PaymentPayload):
        raise PaymentError("the SDK produced an x402 v1 payload for a v2 requirement")
    if signed_for is not chosen:
        payload = payload.model_copy(update={"accepted": chosen})
    return payload


def _with_payment_id(
    declared: dict[str, Any] | None, payment_id: str | None
) -> dict[str, Any] | None:
    """The seller's declared extensions with our ``payment-identifier`` id filled in."""
    extensions = copy.deepcopy(declared) if declared else None
    entry = (extensions or {}).get(PAYMENT_IDENTIFIER)
    if payment_id is None or not isinstance(entry, dict) or not isinstance(entry.get("info"), dict):
        return extensions
    entry["info"] = {**entry["info"], "id": payment_id}
    return extensions


def _chosen(required: PaymentRequired, intent: PaymentIntent) -> PaymentRequirements:
    for req in required.accepts:
        if (req.network, req.asset.lower(), req.pay_to.lower(), int(req.amount)) == (
            intent.network,
            intent.asset.lower(),
            intent.pay_to.lower(),
            intent.amount,
        ):
            return req
    raise PaymentError("the chosen requirement is not in the 402 response")


# ---- payers --------------------------------------------------------------------------------
@dataclass
class _Done:
    payload: PaymentPayload
    replayed: bool
    on_settled: Callable[[SettleResponse], None] = lambda s: None
    on_refused: Callable[[str], None] = lambda reason: None

    def settled(self, settle: SettleResponse) -> None:
        self.on_settled(settle)

    def refused(self, reason: str) -> None:
        self.on_refused(reason)


class WalletPayer:
    """Our wallet: ``Wallet.spend`` checks the spending policy and reserves in the ledger before
    the SDK signs; a replayed idempotency key returns the payload signed the first time."""

    def __init__(
        self,
        wallet: Any,
        *,
        approve: bool = False,
        tokens: Mapping[str, Token] | None = None,
        memo: Mapping[str, Any] | None = None,
        chain: Chain | None = None,
    ) -> None:
        self.wallet = wallet
        self.approve = approve
        self.tokens = {k.lower(): v for k, v in (tokens or {}).items()}
        self.memo = dict(memo or {})
        self.chain = chain  # its clock sets the authorizations' windows (a warped dev chain)

    @property
    def address(self) -> str:
        return str(self.wallet.address)

    def authorize(self, intent: PaymentIntent, required: PaymentRequired) -> Authorized:
        chosen = _chosen(required, intent)
        with self.wallet.spend(
            kind="x402",
            token=self.tokens.get(intent.asset.lower(), intent.asset),
            amount=intent.amount,
            counterparty=intent.pay_to,
            idempotency_key=intent.idempotency_key,
            approve=self.approve,
            memo={**self.memo, "url": intent.url, "network": intent.network},
            chain_id=_chain_id(intent.network),
        ) as spend:
            if spend.replayed:
                stored = spend.payload or {}
                payload = PaymentPayload.model_validate(stored.get("x402"))
            else:
                payment_id = payment_identifier_for(intent.idempotency_key)
                ahead = self._seconds_ahead(intent.network)
                payload = spend.sign_with(
                    lambda account: sign_with_sdk(
                        account, required, chosen, payment_id=payment_id, seconds_ahead=ahead
                    ),
                    lambda p: {"type": "x402", "x402": p.model_dump(by_alias=True, mode="json")},
                )

        def on_settled(settle: SettleResponse) -> None:
            if settle.success and spend.status != "settled":
                spend.settle(tx_hash=settle.transaction)

        def on_refused(reason: str) -> None:
            if spend.status == "signed":  # still usable by whoever holds it: note, not release
                self.wallet.ledger.note(spend.record.id, f"refused by the seller: {reason}")

        return _Done(
            payload, replayed=bool(spend.replayed), on_settled=on_settled, on_refused=on_refused
        )

    def _seconds_ahead(self, network: str) -> int:
        """The lead of the paying chain's clock, when this payer knows that chain."""
        if self.chain is None or self.chain.network != network:
            return 0
        return self.chain.seconds_ahead()


def _chain_id(network: str) -> int | None:
    try:
        return network_chain_id(network)
    except InputError:
        return None
