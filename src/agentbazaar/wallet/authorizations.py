"""EIP-3009 authorizations this wallet signed, as the ledger stores them, and how to prove one dead.

A signed ``transferWithAuthorization`` / ``receiveWithAuthorization`` can be submitted by
whoever holds it until its ``validBefore``, even after a seller refused it. Its ledger row can
therefore be released only on proof that it can never be used:

- expiry: ``validBefore`` has passed and ``authorizationState(payer, nonce)`` is still false;
- cancellation: the token's ``cancelAuthorization(authorizer, nonce, v, r, s)``, signed by the
  payer over ``CancelAuthorization(address authorizer,bytes32 nonce)`` in the token's EIP-712
  domain (``Wallet.cancel_authorization``; it moves no token, it costs gas).

``authorization_of(record)`` reads the authorization (``nonce``, ``validBefore``) and its EIP-712
domain from the three payload shapes the ledger holds: an x402 payment (``{"x402": payload}``),
an EIP-712 signature by ``PolicySigner`` (``{"domain", "message"}``), and a channel deposit
(``{"authorization", "domain"}``).

Cancelling is worth its gas (``worth_cancelling``) on a development chain (its gas is not real
money), and elsewhere only when the authorization would otherwise stay live for longer than
``CANCEL_IF_LIVE_FOR`` seconds: an x402 authorization usually lives a few minutes
(``maxTimeoutSeconds``), and a cancel costs more gas than such a payment is worth; it is left to
expire and ``reconcile`` releases it then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.messages import SignableMessage, encode_typed_data
from hexbytes import HexBytes
from web3 import Web3

from agentbazaar.errors import LedgerError

if TYPE_CHECKING:
    from agentbazaar.wallet.ledger import SpendRecord

CANCEL_IF_LIVE_FOR = 3600  # seconds: a longer-lived refused authorization is cancelled on chain

AUTHORIZATION_USED_TOPIC = Web3.keccak(text="AuthorizationUsed(address,bytes32)")
AUTHORIZATION_CANCELED_TOPIC = Web3.keccak(text="AuthorizationCanceled(address,bytes32)")
CANCEL_TYPES = {
    "CancelAuthorization": [
        {"name": "authorizer", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
    ]
}
TOKEN_ABI: list[dict[str, Any]] = [
    {
        "name": "authorizationState",
        "type": "function",
        "stateMutability": "view",
        "inputs": [
            {"name": "authorizer", "type": "address"},
            {"name": "nonce", "type": "bytes32"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "name": "cancelAuthorization",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "authorizer", "type": "address"},
            {"name": "nonce", "type": "bytes32"},
            {"name": "v", "type": "uint8"},
            {"name": "r", "type": "bytes32"},
            {"name": "s", "type": "bytes32"},
        ],
        "outputs": [],
    },
]


@dataclass(frozen=True)
class SignedAuthorization:
    """The facts of a stored EIP-3009 authorization that decide whether it can still be used."""

    nonce: bytes
    valid_before: int
    domain: dict[str, Any] | None  # EIP-712 domain (None when the payload did not keep it)


def authorization_of(payload: dict[str, Any] | None) -> SignedAuthorization | None:
    """The EIP-3009 authorization in a ledger payload, or None when it holds none."""
    payload = payload or {}
    x402 = payload.get("x402") if isinstance(payload.get("x402"), dict) else None
    if x402 is not None:
        inner = x402.get("payload") or {}
        auth, domain = inner.get("authorization"), _x402_domain(x402)
    else:
        auth = payload.get("message") or payload.get("authorization")
        domain = payload.get("domain") if isinstance(payload.get("domain"), dict) else None
    if not isinstance(auth, dict) or not auth.get("nonce"):
        return None
    try:
        nonce = bytes(HexBytes(str(auth["nonce"])))
        valid_before = int(str(auth.get("validBefore", 0)) or 0)
    except ValueError:
        return None
    return SignedAuthorization(nonce, valid_before, domain)


def _x402_domain(x402: dict[str, Any]) -> dict[str, Any] | None:
    accepted = x402.get("accepted") or {}
    extra = accepted.get("extra") or {}
    network, asset = str(accepted.get("network", "")), accepted.get("asset")
    prefix, _, chain_id = network.partition(":")
    if not (extra.get("name") and extra.get("version") and asset and chain_id.isdigit()):
        return None
    return {
        "name": str(extra["name"]),
        "version": str(extra["version"]),
        "chainId": int(chain_id) if prefix == "eip155" else None,
        "verifyingContract": str(asset),
    }


def cancel_message(
    record: SpendRecord, chain_id: int, authorizer: str
) -> tuple[SignableMessage, bytes]:
    """The EIP-712 ``CancelAuthorization`` to sign for ``record``'s authorization, and its nonce;
    ``LedgerError`` when the row holds none, or one for another token or chain."""
    signed = authorization_of(record.payload)
    domain = dict((signed.domain if signed else None) or {})
    domain["chainId"] = domain.get("chainId") or chain_id
    contract = str(domain.get("verifyingContract", "")).lower()
    if (
        signed is None
        or not domain.get("name")
        or int(domain["chainId"]) != chain_id
        or (contract != record.token.lower())
    ):
        raise LedgerError(
            f"spend {record.idempotency_key!r} holds no authorization for {record.token} on "
            f"chain {chain_id}: it cannot be cancelled there",
            idempotency_key=record.idempotency_key,
        )
    message = {"authorizer": authorizer, "nonce": signed.nonce}
    signable = encode_typed_data(
        domain_data=domain, message_types=CANCEL_TYPES, message_data=message
    )
    return signable, signed.nonce


def worth_cancelling(*, is_dev: bool, valid_before: int, now: int) -> bool:
    """Cancel on chain rather than wait for expiry? (see the module docstring)"""
    if valid_before <= now:
        return False  # already dead: nothing to cancel
    return is_dev or valid_before - now > CANCEL_IF_LIVE_FOR


def topic_of(address: str) -> str:
    """An address as an indexed event topic."""
    return "0x" + address.lower().removeprefix("0x").rjust(64, "0")
