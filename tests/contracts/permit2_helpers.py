"""Permit2 test helpers: deploy Permit2, the x402 proxies and test wallets with titanoboa, sign
permits the way the x402 SDK does (its own EIP-712 witness types), decode custom errors."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boa
import pytest
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from x402.mechanisms.evm import constants as c

CONTRACTS = Path(__file__).resolve().parents[2] / "src" / "agentbazaar" / "contracts"
WALLETS = Path(__file__).resolve().parent / "wallets"
MAX = 2**256 - 1


@functools.cache
def deployer_of(path: Path) -> Any:
    return boa.load_partial(str(path))


def deploy(name: str, *args: Any) -> Any:
    return deployer_of(CONTRACTS / f"{name}.vy").deploy(*args)


def deploy_wallet(name: str, *args: Any) -> Any:
    return deployer_of(WALLETS / f"{name}.vy").deploy(*args)


def selector(error: str) -> bytes:
    return keccak(error.encode())[:4]


@contextmanager
def reverts_with(error: str, *args: int) -> Iterator[None]:
    """Expect a revert with the custom error ``error`` ("InvalidNonce()"), and its arguments."""
    with pytest.raises(boa.BoaError) as info:
        yield
    data = bytes(info.value.stack_trace.last_frame.vm_error.args[0])
    expected = selector(error) + b"".join(a.to_bytes(32, "big") for a in args)
    assert data == expected, f"reverted with {data!r}, not {error}{args}"


@dataclass
class Permit:
    """A PermitWitnessTransferFrom and its signature; ``facilitator`` None means exact."""

    owner: str
    token: str
    amount: int
    spender: str
    nonce: int
    deadline: int
    to: str
    valid_after: int
    facilitator: str | None
    signature: bytes = field(default=b"", repr=False)

    @property
    def permit(self) -> tuple[Any, ...]:
        return ((self.token, self.amount), self.nonce, self.deadline)

    @property
    def witness(self) -> tuple[Any, ...]:
        if self.facilitator is None:
            return (self.to, self.valid_after)
        return (self.to, self.facilitator, self.valid_after)

    def message(self) -> dict[str, Any]:
        witness: dict[str, Any] = {"to": self.to, "validAfter": self.valid_after}
        if self.facilitator is not None:
            witness = {
                "to": self.to,
                "facilitator": self.facilitator,
                "validAfter": self.valid_after,
            }
        return {
            "permitted": {"token": self.token, "amount": self.amount},
            "spender": self.spender,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "witness": witness,
        }


def permit2_domain(permit2: Any, chain_id: int | None = None) -> dict[str, Any]:
    """Permit2's EIP-712 domain: name, chainId, verifyingContract, no version."""
    return {
        "name": "Permit2",
        "chainId": chain_id if chain_id is not None else boa.env.evm.patch.chain_id,
        "verifyingContract": str(permit2.address if hasattr(permit2, "address") else permit2),
    }


def digest_of(p: Permit, permit2: Any, chain_id: int | None = None) -> bytes:
    """The EIP-712 digest as the SDK's typed data defines it (its witness types)."""
    types = c.UPTO_PERMIT2_WITNESS_TYPES if p.facilitator is not None else c.PERMIT2_WITNESS_TYPES
    signable = encode_typed_data(
        domain_data=permit2_domain(permit2, chain_id),
        message_types=types,
        message_data=p.message(),
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign(p: Permit, signer: LocalAccount, permit2: Any, chain_id: int | None = None) -> Permit:
    """``p`` signed by ``signer``'s key (for a wallet owner: the wallet's ERC-1271 signature)."""
    signature = signer.unsafe_sign_hash(digest_of(p, permit2, chain_id)).signature
    p.signature = bytes(signature)
    return p


def make_permit(
    owner: str,
    token: Any,
    amount: int,
    spender: Any,
    to: str,
    *,
    facilitator: str | None,
    nonce: int | None = None,
    deadline: int | None = None,
    valid_after: int = 0,
) -> Permit:
    now = boa.env.evm.patch.timestamp
    return Permit(
        owner=owner,
        token=str(token.address),
        amount=amount,
        spender=str(spender.address),
        nonce=int.from_bytes(os.urandom(32), "big") if nonce is None else nonce,
        deadline=now + 3600 if deadline is None else deadline,
        to=to,
        valid_after=valid_after,
        facilitator=facilitator,
    )
