"""Signers for tests and benchmarks: EIP-3009 authorizations and batch-settlement vouchers.

These sign with a raw key, as a test's counterparty does; the product itself signs only
through ``Wallet.spend``. EIP-3009 uses eth-account's EIP-712 encoder (independent of ours, so
a test checks our contracts and verifiers against a second implementation); vouchers use the
channel library's digests and libsecp256k1 (fast: benchmarks sign inside timed loops), and
their payloads are built by the library's own wire builders.
"""

from __future__ import annotations

import os
from typing import Any

from coincurve import PrivateKey
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.engine import ChannelTerms
from agentbazaar.channels.wire import (
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    channel_payload,
    deposit_wire,
    payment_header,
    voucher_wire,
)

EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
EIP3009_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
NEVER = 2**40  # a validBefore far in the future


def sign_eip3009(
    signer: LocalAccount,
    *,
    chain_id: int,
    token: str,
    to: str,
    value: int,
    nonce: bytes,
    valid_after: int = 0,
    valid_before: int = NEVER,
    primary: str = "TransferWithAuthorization",
    name: str = "USD Coin",
    version: str = "2",
    from_: str | None = None,
) -> bytes:
    """A 65-byte (r, s, v=27/28) EIP-712 signature of an EIP-3009 ``primary``
    (TransferWithAuthorization or ReceiveWithAuthorization) on token ``token``."""
    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": EIP712_DOMAIN, primary: EIP3009_FIELDS},
            "primaryType": primary,
            "domain": {
                "name": name,
                "version": version,
                "chainId": chain_id,
                "verifyingContract": token,
            },
            "message": {
                "from": from_ or signer.address,
                "to": to,
                "value": value,
                "validAfter": valid_after,
                "validBefore": valid_before,
                "nonce": nonce,
            },
        }
    )
    return bytes(signer.sign_message(signable).signature)


def sign_voucher(
    key: LocalAccount | PrivateKey, domain: bytes, channel_id: bytes, ceiling: int
) -> bytes:
    """A voucher signature: cumulative ``ceiling`` on ``channel_id`` under the escrow's domain."""
    secret = key if isinstance(key, PrivateKey) else PrivateKey(bytes(key.key))
    return cx.sign(secret, cx.voucher_digest(domain, channel_id, ceiling))


class ChannelPayer:
    """A payer's side of one batch-settlement channel with ``terms``' seller: signed voucher and
    deposit payloads (and headers), as the SDK's client sends them. ``charged`` is what the
    seller acknowledged; set it from the seller's answers (``settled``)."""

    def __init__(
        self,
        account: LocalAccount,
        terms: ChannelTerms,
        *,
        salt: bytes | None = None,
        token_name: str = "USD Coin",
        token_version: str = "2",
    ) -> None:
        self.account = account
        self.key = PrivateKey(bytes(account.key))
        self.terms = terms
        self.token_name, self.token_version = token_name, token_version
        self.domain = cx.domain_separator(terms.chain_id, terms.contract)
        self.config = cx.ChannelConfig(
            payer=account.address,
            payer_authorizer=account.address,
            receiver=terms.receiver,
            receiver_authorizer=terms.receiver_authorizer,
            token=terms.token,
            withdraw_delay=terms.withdraw_delay,
            salt=salt or os.urandom(32),
        )
        self.cid = cx.channel_id(self.domain, self.config)
        self.charged = 0

    def voucher(self, ceiling: int, *, key: LocalAccount | None = None) -> dict[str, Any]:
        """A voucher payload for cumulative ``ceiling`` (signed by ``key``: default the payer)."""
        sig = sign_voucher(key or self.key, self.domain, self.cid, ceiling)
        return channel_payload(
            self.config.to_wire(), voucher_wire(self.cid, ceiling, "0x" + sig.hex())
        )

    def next_voucher(self, price: int) -> dict[str, Any]:
        return self.voucher(self.charged + price)

    def deposit(self, price: int, amount: int, *, valid_before: int = NEVER) -> dict[str, Any]:
        """The next voucher with a deposit of ``amount`` (the channel's first payment)."""
        payload = self.next_voucher(price)
        salt = os.urandom(32)
        signature = sign_eip3009(
            self.account,
            chain_id=self.terms.chain_id,
            token=self.terms.token,
            to=ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
            value=amount,
            nonce=cx.deposit_nonce(self.cid, salt),
            valid_before=valid_before,
            primary="ReceiveWithAuthorization",
            name=self.token_name,
            version=self.token_version,
        )
        deposit = deposit_wire(amount, valid_before, salt, "0x" + signature.hex())
        return channel_payload(payload["channelConfig"], payload["voucher"], deposit)

    def requirement(self, price: int) -> dict[str, Any]:
        """The ``accepted`` requirement this payer answers (what the seller's 402 offers)."""
        return {
            "scheme": "batch-settlement",
            "network": f"eip155:{self.terms.chain_id}",
            "amount": str(price),
            "asset": self.terms.token,
            "payTo": self.terms.receiver,
            "maxTimeoutSeconds": 3600,
            "extra": {},
        }

    def header(self, price: int, *, deposit: int = 0) -> str:
        """``PAYMENT-SIGNATURE`` for the next call at ``price`` (with a deposit when > 0)."""
        payload = self.deposit(price, deposit) if deposit else self.next_voucher(price)
        return payment_header(self.requirement(price), payload)

    def settled(self, payment_response: dict[str, Any]) -> None:
        """Take the seller's acknowledged total from its decoded PAYMENT-RESPONSE."""
        state = payment_response["extra"]["channelState"]
        self.charged = int(state["chargedCumulativeAmount"])
