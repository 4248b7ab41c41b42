"""Token test helpers: deploy with titanoboa, sign EIP-712 messages with eth_account."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import boa
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from agentbazaar.chain.compiler import CONTRACTS_DIR
from agentbazaar.testing import STABLECOIN_ARGS, boa_deployer

STABLECOIN_EXTRA_ABI = CONTRACTS_DIR / "Stablecoin.abi-extra.json"

EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_AUTH_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
TYPES: dict[str, list[dict[str, str]]] = {
    "TransferWithAuthorization": _AUTH_FIELDS,
    "ReceiveWithAuthorization": _AUTH_FIELDS,
    "CancelAuthorization": [
        {"name": "authorizer", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
    ],
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


def new_account() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


def random_nonce() -> bytes:
    return os.urandom(32)


def domain_of(token: Any) -> dict[str, Any]:
    """The token's EIP-712 domain as it reports it (EIP-5267)."""
    _fields, name, version, chain_id, verifying_contract, _salt, _ext = token.eip712Domain()
    return {
        "name": name,
        "version": version,
        "chainId": chain_id,
        "verifyingContract": str(verifying_contract),
    }


def sign_typed(
    account: LocalAccount, domain: dict[str, Any], primary: str, message: dict[str, Any]
) -> bytes:
    """A 65-byte (r || s || v) EIP-712 signature of ``message`` of type ``primary``."""
    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": EIP712_DOMAIN, primary: TYPES[primary]},
            "primaryType": primary,
            "domain": domain,
            "message": message,
        }
    )
    return bytes(account.sign_message(signable).signature)


def split(signature: bytes) -> tuple[int, bytes, bytes]:
    """(v, r, s) of a 65-byte signature, as the (v, r, s) overloads take them."""
    return signature[64], signature[:32], signature[32:64]


@dataclass(frozen=True)
class Authorization:
    """An EIP-3009 authorization and its signature; ``args`` are the positional call arguments."""

    from_: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    signature: bytes

    @property
    def args(self) -> tuple[Any, ...]:
        return (self.from_, self.to, self.value, self.valid_after, self.valid_before, self.nonce)

    @property
    def vrs_args(self) -> tuple[Any, ...]:
        return (*self.args, *split(self.signature))

    @property
    def bytes_args(self) -> tuple[Any, ...]:
        return (*self.args, self.signature)


def authorize(
    token: Any,
    signer: LocalAccount,
    to: str,
    value: int,
    *,
    primary: str = "TransferWithAuthorization",
    valid_after: int | None = None,
    valid_before: int | None = None,
    nonce: bytes | None = None,
    from_: str | None = None,
) -> Authorization:
    """Sign an authorization valid from a minute ago for an hour (by the block clock)."""
    now = boa.env.evm.patch.timestamp
    auth = Authorization(
        from_=from_ or signer.address,
        to=to,
        value=value,
        valid_after=now - 60 if valid_after is None else valid_after,
        valid_before=now + 3600 if valid_before is None else valid_before,
        nonce=nonce or random_nonce(),
        signature=b"",
    )
    message = {
        "from": auth.from_,
        "to": auth.to,
        "value": auth.value,
        "validAfter": auth.valid_after,
        "validBefore": auth.valid_before,
        "nonce": auth.nonce,
    }
    signature = sign_typed(signer, domain_of(token), primary, message)
    return Authorization(**{**auth.__dict__, "signature": signature})


def sign_cancel(
    token: Any, signer: LocalAccount, nonce: bytes, authorizer: str | None = None
) -> bytes:
    return sign_typed(
        signer,
        domain_of(token),
        "CancelAuthorization",
        {"authorizer": authorizer or signer.address, "nonce": nonce},
    )


def sign_permit(
    token: Any, owner: LocalAccount, spender: str, value: int, nonce: int, deadline: int
) -> bytes:
    message = {
        "owner": owner.address,
        "spender": spender,
        "value": value,
        "nonce": nonce,
        "deadline": deadline,
    }
    return sign_typed(owner, domain_of(token), "Permit", message)


def deploy_stablecoin(minter: str) -> Any:
    with boa.env.prank(minter):
        return boa_deployer("Stablecoin").deploy(*STABLECOIN_ARGS)


def bytes_overloads(token: Any) -> Any:
    """The ``bytes signature`` overloads (dispatched in the token's fallback) at ``token``."""
    abi = json.loads(STABLECOIN_EXTRA_ABI.read_text())
    return boa.loads_abi(json.dumps(abi), name="StablecoinBytesOverloads").at(token.address)
