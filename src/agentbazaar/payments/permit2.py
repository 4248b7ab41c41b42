"""Permit2 and the x402 Permit2 proxies as the x402 SDK speaks them: addresses, payloads, digests.

The ``upto`` scheme (and ``exact`` for tokens without EIP-3009) pays with a Permit2
``PermitWitnessTransferFrom`` signed by the payer: a token, a maximum, a spender (the x402 proxy),
a nonce (Permit2's unordered bitmap, single use per payer), a deadline, and a witness the proxy
checks (the payee; for ``upto`` also the one facilitator allowed to settle; a start time). This
module holds the pure parts: strict parsing of the scheme payload, the EIP-712 digest (computed
directly, the same bytes as the SDK's typed data), the proxies' calldata, the meaning of their
reverts, and ``install``, which puts our Vyper Permit2 and proxies at the canonical addresses on
a development chain (as the channel contracts are) so SDK clients and servers work unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from x402.mechanisms.evm import constants as c

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.channels.onchain import install_multicall3
from agentbazaar.payments.eip3009 import address_field, uint_field
from agentbazaar.payments.errors import Rejected

PERMIT2_ADDRESS = to_checksum_address(c.PERMIT2_ADDRESS)
UPTO_PROXY_ADDRESS = to_checksum_address(c.X402_UPTO_PERMIT2_PROXY_ADDRESS)
EXACT_PROXY_ADDRESS = to_checksum_address(c.X402_EXACT_PERMIT2_PROXY_ADDRESS)

UPTO_WITNESS_TYPE_STRING = (
    "Witness witness)TokenPermissions(address token,uint256 amount)"
    "Witness(address to,address facilitator,uint256 validAfter)"
)
EXACT_WITNESS_TYPE_STRING = (
    "Witness witness)TokenPermissions(address token,uint256 amount)"
    "Witness(address to,uint256 validAfter)"
)
_STUB = (
    "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,"
    "uint256 deadline,"
)
DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,uint256 chainId,address verifyingContract)")
TOKEN_PERMISSIONS_TYPEHASH = keccak(b"TokenPermissions(address token,uint256 amount)")
UPTO_WITNESS_TYPEHASH = keccak(b"Witness(address to,address facilitator,uint256 validAfter)")
EXACT_WITNESS_TYPEHASH = keccak(b"Witness(address to,uint256 validAfter)")
UPTO_PERMIT_TYPEHASH = keccak((_STUB + UPTO_WITNESS_TYPE_STRING).encode())
EXACT_PERMIT_TYPEHASH = keccak((_STUB + EXACT_WITNESS_TYPE_STRING).encode())

# reason codes the SDK has no constant for (its own strings, from its revert mapping)
ERR_INVALID_NONCE = "permit2_invalid_nonce"
ERR_PAYLOAD_FORMAT = "invalid_permit2_payload_format"
ERR_INVALID_AMOUNT = "permit2_invalid_amount"
ERR_PAYMENT_TOO_EARLY = "permit2_payment_too_early"

MAX_SIGNATURE_BYTES = 8 * 1024  # an ERC-6492 wrapper carries the factory call too
_SIGNATURE = re.compile(r"^0x(?:[0-9a-fA-F]{2})+$")
_PERMIT = "((address,uint256),uint256,uint256)"
_UPTO_SETTLE = f"settle({_PERMIT},uint256,address,(address,address,uint256),bytes)"
_EXACT_SETTLE = f"settle({_PERMIT},address,(address,uint256),bytes)"
_UPTO_SETTLE_SELECTOR = keccak(_UPTO_SETTLE.encode())[:4]
_EXACT_SETTLE_SELECTOR = keccak(_EXACT_SETTLE.encode())[:4]


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


# custom errors of Permit2 and the proxies -> the x402 reason the SDK gives them
_REVERTS: dict[bytes, str] = {
    _selector("SignatureExpired(uint256)"): c.ERR_PERMIT2_DEADLINE_EXPIRED,
    _selector("InvalidAmount(uint256)"): c.ERR_UPTO_AMOUNT_EXCEEDS_PERMITTED,
    _selector("InvalidNonce()"): ERR_INVALID_NONCE,
    _selector("InvalidSignatureLength()"): c.ERR_PERMIT2_INVALID_SIGNATURE,
    _selector("InvalidSignature()"): c.ERR_PERMIT2_INVALID_SIGNATURE,
    _selector("InvalidSigner()"): c.ERR_PERMIT2_INVALID_SIGNATURE,
    _selector("InvalidContractSignature()"): c.ERR_PERMIT2_INVALID_SIGNATURE,
    _selector("AmountExceedsPermitted()"): c.ERR_UPTO_AMOUNT_EXCEEDS_PERMITTED,
    _selector("UnauthorizedFacilitator()"): c.ERR_UPTO_UNAUTHORIZED_FACILITATOR,
    _selector("InvalidDestination()"): c.ERR_PERMIT2_INVALID_DESTINATION,
    _selector("InvalidOwner()"): c.ERR_PERMIT2_INVALID_OWNER,
    _selector("InvalidAmount()"): ERR_INVALID_AMOUNT,
    _selector("PaymentTooEarly()"): ERR_PAYMENT_TOO_EARLY,
    _selector("Permit2612AmountMismatch()"): "permit2_2612_amount_mismatch",
}
TRANSFER_FAILED = "TRANSFER_FROM_FAILED"  # Permit2's revert string when the token refuses


@dataclass(frozen=True)
class Permit2Authorization:
    """A parsed ``permit2Authorization`` and its signature (as sent: maybe ERC-6492 wrapped).

    ``facilitator`` is set for ``upto`` (the witness names who may settle), None for ``exact``.
    """

    payer: str
    token: str
    amount: int  # the permitted maximum
    spender: str
    nonce: int
    deadline: int
    to: str
    valid_after: int
    facilitator: str | None
    signature: bytes

    @property
    def upto(self) -> bool:
        return self.facilitator is not None

    @property
    def nonce_hex(self) -> str:
        return f"0x{self.nonce:064x}"

    @property
    def permit_tuple(self) -> tuple[tuple[str, int], int, int]:
        return ((to_checksum_address(self.token), self.amount), self.nonce, self.deadline)

    @property
    def witness_tuple(self) -> tuple[Any, ...]:
        if self.facilitator is not None:
            return (
                to_checksum_address(self.to),
                to_checksum_address(self.facilitator),
                self.valid_after,
            )
        return (to_checksum_address(self.to), self.valid_after)


def is_permit2_payload(payload: Mapping[str, Any]) -> bool:
    return "permit2Authorization" in payload


def parse_permit2(payload: Mapping[str, Any], *, upto: bool) -> Permit2Authorization:
    """Parse ``{permit2Authorization: {...}, signature}`` strictly; ``Rejected`` otherwise."""
    auth = payload.get("permit2Authorization")
    if not isinstance(auth, dict):
        raise Rejected(ERR_PAYLOAD_FORMAT, "payload.permit2Authorization is missing")
    permitted, witness = auth.get("permitted"), auth.get("witness")
    if not isinstance(permitted, dict) or not isinstance(witness, dict):
        raise Rejected(ERR_PAYLOAD_FORMAT, "permit2Authorization.permitted/witness are missing")
    where = "permit2Authorization"
    payer = address_field(auth.get("from"), "from", where)
    return Permit2Authorization(
        payer=payer,
        token=address_field(permitted.get("token"), "token", f"{where}.permitted"),
        amount=uint_field(permitted.get("amount"), "amount", f"{where}.permitted"),
        spender=address_field(auth.get("spender"), "spender", where),
        nonce=uint_field(auth.get("nonce"), "nonce", where),
        deadline=uint_field(auth.get("deadline"), "deadline", where),
        to=address_field(witness.get("to"), "to", f"{where}.witness"),
        valid_after=uint_field(witness.get("validAfter"), "validAfter", f"{where}.witness"),
        facilitator=(
            address_field(witness.get("facilitator"), "facilitator", f"{where}.witness")
            if upto
            else None
        ),
        signature=_signature(payload.get("signature"), payer),
    )


def _signature(value: object, payer: str) -> bytes:
    if not isinstance(value, str) or not _SIGNATURE.match(value):
        raise Rejected(c.ERR_PERMIT2_INVALID_SIGNATURE, "payload.signature must be hex", payer)
    raw = bytes.fromhex(value[2:])
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise Rejected(c.ERR_PERMIT2_INVALID_SIGNATURE, "payload.signature is too long", payer)
    return raw


def domain_separator(chain_id: int) -> bytes:
    """Permit2's EIP-712 domain separator (name "Permit2", chainId, verifyingContract)."""
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(b"Permit2"), chain_id, PERMIT2_ADDRESS],
        )
    )


def permit2_digest(auth: Permit2Authorization, chain_id: int) -> bytes:
    """The EIP-712 digest the payer signed (what Permit2 recovers the signature against)."""
    if auth.facilitator is not None:
        witness = keccak(
            abi_encode(
                ["bytes32", "address", "address", "uint256"],
                [UPTO_WITNESS_TYPEHASH, auth.to, auth.facilitator, auth.valid_after],
            )
        )
        typehash = UPTO_PERMIT_TYPEHASH
    else:
        witness = keccak(
            abi_encode(
                ["bytes32", "address", "uint256"],
                [EXACT_WITNESS_TYPEHASH, auth.to, auth.valid_after],
            )
        )
        typehash = EXACT_PERMIT_TYPEHASH
    permissions = keccak(
        abi_encode(
            ["bytes32", "address", "uint256"], [TOKEN_PERMISSIONS_TYPEHASH, auth.token, auth.amount]
        )
    )
    struct = keccak(
        abi_encode(
            ["bytes32", "bytes32", "address", "uint256", "uint256", "bytes32"],
            [typehash, permissions, auth.spender, auth.nonce, auth.deadline, witness],
        )
    )
    return keccak(b"\x19\x01" + domain_separator(chain_id) + struct)


def settle_calldata(auth: Permit2Authorization, amount: int, signature: bytes) -> str:
    """Calldata of the proxy's ``settle`` (``amount`` is used by ``upto`` only; ``exact``
    always moves the permitted amount). ``signature`` is the unwrapped (non-6492) one."""
    if auth.upto:
        args: list[Any] = [auth.permit_tuple, amount, auth.payer, auth.witness_tuple, signature]
        types = [_PERMIT, "uint256", "address", "(address,address,uint256)", "bytes"]
        return "0x" + (_UPTO_SETTLE_SELECTOR + abi_encode(types, args)).hex()
    args = [auth.permit_tuple, auth.payer, auth.witness_tuple, signature]
    types = [_PERMIT, "address", "(address,uint256)", "bytes"]
    return "0x" + (_EXACT_SETTLE_SELECTOR + abi_encode(types, args)).hex()


def revert_code(data: bytes) -> str | None:
    """The x402 reason for a Permit2 / proxy revert (custom error selector), or None."""
    return _REVERTS.get(bytes(data[:4])) if len(data) >= 4 else None


def install(chain: Chain, deployer: LocalAccount) -> dict[str, ChecksumAddress]:
    """Place Permit2 and the x402 upto and exact Permit2 proxies at their canonical addresses
    on a development chain (idempotent), and a Multicall3 where there is none (ERC-6492 checks
    simulate a wallet's deployment through it). On other chains the canonical deployments are
    used as they are. Permit2's domain separator uses the address it runs at, and the proxies'
    one immutable (Permit2's address) lives in their runtime code, so a verbatim copy is
    complete.
    """

    placed = {
        "Permit2": PERMIT2_ADDRESS,
        "X402UptoPermit2Proxy": UPTO_PROXY_ADDRESS,
        "X402ExactPermit2Proxy": EXACT_PROXY_ADDRESS,
    }
    if not chain.is_dev:
        return placed
    for name, target in placed.items():
        art = compile_contract(name)
        args = () if name == "Permit2" else (PERMIT2_ADDRESS,)
        staging, _ = chain.deploy(deployer, art.abi, art.bytecode, *args, name=name)
        code = chain.code_at(staging.address)
        if chain.code_at(target) != code:
            chain.set_code(target, code)
    install_multicall3(chain, deployer)
    return placed


def deployed(chain: Chain) -> bool:
    """Are Permit2 and the upto proxy on this chain?"""
    return bool(chain.code_at(PERMIT2_ADDRESS)) and bool(chain.code_at(UPTO_PROXY_ADDRESS))
