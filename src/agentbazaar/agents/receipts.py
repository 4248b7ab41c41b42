"""Verifiable inference receipts: what a provider signs for every paid response, and checks on them.

A receipt is EIP-712 typed data signed by the provider's key::

    InferenceReceipt(uint256 providerAgentId,address provider,string modelId,bytes32 weightsHash,
                     bytes32 inputHash,bytes32 outputHash,address asset,uint256 price,
                     bytes32 paymentRef,uint64 timestamp)

under the domain ``{name: "agentbazaar InferenceReceipt", version: "1", chainId}``.

Canonical bytes (what the hashes cover):

- input: the UTF-8 of the JSON array of the input texts, without spaces, non-ASCII kept as is
  (``json.dumps(texts, ensure_ascii=False, separators=(",", ":"))``; for a list of strings this is
  the RFC 8785 canonical form); ``inputHash = keccak256(those bytes)``.
- output: an embedding matrix of ``rows x cols`` float32 values is ``b"F32LE"`` + rows (4 bytes,
  big-endian) + cols (4 bytes, big-endian) + the values row-major as little-endian IEEE-754
  float32; ``outputHash = keccak256(those bytes)``. JSON carries the values as decimal floats; a
  float32 converted to a Python float prints and parses back exactly, so the buyer rebuilds the
  same bytes. NaN and infinities are refused.
- weightsHash: sha256 over the model files (see ``models.embedding``).
- paymentRef: the EIP-3009 authorization nonce of the x402 payment that bought the work (known
  before settlement, and checkable on-chain with ``authorizationState(payer, nonce)``); the
  settlement tx hash is stored beside the receipt once known.

``verify_receipt`` checks the signature (the signer must be the provider's address), then every
hash against the data actually received, then the commercial terms the buyer expected. Any
mismatch raises ``BadReceipt`` naming the field. The receipt id is the EIP-712 digest.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from agentbazaar.errors import AgentError
from agentbazaar.models.embedding import Matrix

DOMAIN_NAME = "agentbazaar InferenceReceipt"
DOMAIN_VERSION = "1"
RECEIPT_TYPES: dict[str, list[dict[str, str]]] = {
    "InferenceReceipt": [
        {"name": "providerAgentId", "type": "uint256"},
        {"name": "provider", "type": "address"},
        {"name": "modelId", "type": "string"},
        {"name": "weightsHash", "type": "bytes32"},
        {"name": "inputHash", "type": "bytes32"},
        {"name": "outputHash", "type": "bytes32"},
        {"name": "asset", "type": "address"},
        {"name": "price", "type": "uint256"},
        {"name": "paymentRef", "type": "bytes32"},
        {"name": "timestamp", "type": "uint64"},
    ]
}
_OUTPUT_MAGIC = b"F32LE"


class BadReceipt(AgentError):
    """A receipt whose signature, hashes or terms do not match what was delivered or agreed."""


class ReceiptSigner(Protocol):
    @property
    def address(self) -> str: ...

    def sign_message(self, signable_message: SignableMessage) -> Any: ...


# ---- canonical bytes -----------------------------------------------------------------------
def input_bytes(texts: list[str]) -> bytes:
    return json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def input_hash(texts: list[str]) -> str:
    return "0x" + keccak(input_bytes(texts)).hex()


def matrix_from_json(rows: object) -> Matrix:
    """Rebuild a float32 matrix from JSON lists; refuses ragged, empty or non-finite data."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise BadReceipt("embeddings must be a non-empty list of lists of numbers")
    width = len(rows[0])
    if width == 0 or any(len(r) != width for r in rows):
        raise BadReceipt("embeddings must be a rectangular matrix")
    for row in rows:
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadReceipt("embeddings must contain only numbers")
            if not math.isfinite(value):
                raise BadReceipt("embeddings must be finite numbers")
    return np.asarray(rows, dtype=np.float32)


def matrix_to_json(matrix: Matrix) -> list[list[float]]:
    return [[float(v) for v in row] for row in np.asarray(matrix, dtype=np.float32)]


def output_bytes(matrix: Matrix) -> bytes:
    m = np.asarray(matrix)
    if m.ndim != 2 or m.dtype != np.float32:
        raise BadReceipt("an embedding output must be a 2-D float32 matrix")
    if not np.isfinite(m).all():
        raise BadReceipt("an embedding output must be finite")
    rows, cols = int(m.shape[0]), int(m.shape[1])
    return (
        _OUTPUT_MAGIC
        + rows.to_bytes(4, "big")
        + cols.to_bytes(4, "big")
        + bytes(np.ascontiguousarray(m, dtype="<f4").tobytes())
    )


def matrix_from_bytes(data: bytes) -> Matrix:
    """Inverse of ``output_bytes``; refuses anything that is not exactly such an encoding."""
    head = len(_OUTPUT_MAGIC) + 8
    if len(data) < head or not data.startswith(_OUTPUT_MAGIC):
        raise BadReceipt("not a canonical embedding matrix")
    rows = int.from_bytes(data[len(_OUTPUT_MAGIC) : len(_OUTPUT_MAGIC) + 4], "big")
    cols = int.from_bytes(data[len(_OUTPUT_MAGIC) + 4 : head], "big")
    if len(data) != head + 4 * rows * cols:
        raise BadReceipt("canonical embedding matrix has the wrong length")
    return np.frombuffer(data[head:], dtype="<f4").astype(np.float32).reshape(rows, cols)


def output_hash(matrix: Matrix) -> str:
    return "0x" + keccak(output_bytes(matrix)).hex()


# ---- the receipt ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Receipt:
    """The signed fields; hashes and references are 0x-hex strings of 32 bytes."""

    provider_agent_id: int
    provider: str
    model_id: str
    weights_hash: str
    input_hash: str
    output_hash: str
    asset: str
    price: int
    payment_ref: str
    timestamp: int

    def message(self) -> dict[str, Any]:
        return {
            "providerAgentId": self.provider_agent_id,
            "provider": self.provider,
            "modelId": self.model_id,
            "weightsHash": HexBytes(self.weights_hash),
            "inputHash": HexBytes(self.input_hash),
            "outputHash": HexBytes(self.output_hash),
            "asset": self.asset,
            "price": self.price,
            "paymentRef": HexBytes(self.payment_ref),
            "timestamp": self.timestamp,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Receipt:
        if not isinstance(data, dict):
            raise BadReceipt("a receipt must be a JSON object")
        try:
            values = {f.name: data[f.name] for f in fields(cls)}
        except KeyError as exc:
            raise BadReceipt(f"receipt field missing: {exc.args[0]}") from exc
        for name in ("provider_agent_id", "price", "timestamp"):
            if isinstance(values[name], bool) or not isinstance(values[name], int):
                raise BadReceipt(f"receipt field {name} must be an integer")
        for name in ("provider", "model_id", "weights_hash", "input_hash", "output_hash"):
            if not isinstance(values[name], str):
                raise BadReceipt(f"receipt field {name} must be a string")
        for name in ("asset", "payment_ref"):
            if not isinstance(values[name], str):
                raise BadReceipt(f"receipt field {name} must be a string")
        return cls(**values)


def typed_data(receipt: Receipt, chain_id: int) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            **RECEIPT_TYPES,
        },
        "primaryType": "InferenceReceipt",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id},
        "message": receipt.message(),
    }


def _signable(receipt: Receipt, chain_id: int) -> SignableMessage:
    try:
        return encode_typed_data(full_message=typed_data(receipt, chain_id))
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadReceipt(f"receipt fields cannot be encoded: {exc}") from exc


def receipt_id(receipt: Receipt, chain_id: int) -> str:
    """The EIP-712 digest of the receipt: its stable id."""
    s = _signable(receipt, chain_id)
    return "0x" + keccak(b"\x19" + s.version + s.header + s.body).hex()


@dataclass(frozen=True)
class SignedReceipt:
    receipt: Receipt
    signature: str
    chain_id: int

    @property
    def id(self) -> str:
        return receipt_id(self.receipt, self.chain_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "receipt": self.receipt.to_json(),
            "signature": self.signature,
            "chainId": self.chain_id,
        }

    @classmethod
    def from_json(cls, data: object) -> SignedReceipt:
        if not isinstance(data, dict):
            raise BadReceipt("a signed receipt must be a JSON object")
        sig, chain_id = data.get("signature"), data.get("chainId")
        if not isinstance(sig, str) or isinstance(chain_id, bool) or not isinstance(chain_id, int):
            raise BadReceipt("a signed receipt needs a hex signature and an integer chainId")
        return cls(Receipt.from_json(data.get("receipt")), sig, chain_id)


def sign_receipt(signer: ReceiptSigner, receipt: Receipt, chain_id: int) -> SignedReceipt:
    if receipt.provider.lower() != signer.address.lower():
        raise BadReceipt("a provider signs only receipts that name its own address")
    signed = signer.sign_message(_signable(receipt, chain_id))
    return SignedReceipt(receipt, "0x" + bytes(signed.signature).hex(), chain_id)


def recover_signer(signed: SignedReceipt) -> str:
    try:
        return str(
            Account.recover_message(
                _signable(signed.receipt, signed.chain_id), signature=HexBytes(signed.signature)
            )
        )
    except BadReceipt:
        raise
    except Exception as exc:  # malformed signature bytes of any kind
        raise BadReceipt(f"receipt signature is malformed: {exc}", field="signature") from exc


@dataclass(frozen=True)
class Expected:
    """What the buyer knows independently of the receipt."""

    provider: str
    provider_agent_id: int
    chain_id: int
    texts: list[str]
    output: Matrix
    asset: str
    max_price: int
    payment_ref: str | None = None
    price: int | None = None  # the exact amount paid, when known
    model_id: str | None = None
    weights_hash: str | None = None


def verify_receipt(signed: SignedReceipt, expected: Expected) -> None:
    """Signature, then hashes, then terms; raises ``BadReceipt`` naming the first bad field."""
    r = signed.receipt
    if signed.chain_id != expected.chain_id:
        raise BadReceipt("receipt signed for another chain", field="chainId")
    if recover_signer(signed).lower() != expected.provider.lower():
        raise BadReceipt("receipt not signed by the provider", field="signature")
    checks: list[tuple[str, bool]] = [
        ("provider", r.provider.lower() == expected.provider.lower()),
        ("provider_agent_id", r.provider_agent_id == expected.provider_agent_id),
        ("input_hash", r.input_hash.lower() == input_hash(expected.texts)),
        ("output_hash", r.output_hash.lower() == output_hash(expected.output)),
        ("asset", r.asset.lower() == expected.asset.lower()),
        ("price", 0 <= r.price <= expected.max_price),
    ]
    if expected.price is not None:
        checks.append(("price", r.price == expected.price))
    if expected.payment_ref is not None:
        checks.append(("payment_ref", r.payment_ref.lower() == expected.payment_ref.lower()))
    if expected.model_id is not None:
        checks.append(("model_id", r.model_id == expected.model_id))
    if expected.weights_hash is not None:
        checks.append(("weights_hash", r.weights_hash.lower() == expected.weights_hash.lower()))
    for name, ok in checks:
        if not ok:
            raise BadReceipt(f"receipt field {name} does not match what was delivered", field=name)
