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

Generation (a language model's completion) is receipted by ``GenerationReceipt``, the same
fields plus what decides and prices the tokens, under the same domain::

    GenerationReceipt(uint256 providerAgentId,address provider,string modelId,bytes32 weightsHash,
                      bytes32 inputHash,bytes32 outputHash,address asset,uint256 price,
                      bytes32 paymentRef,uint64 timestamp,string runtime,Settings settings,
                      uint32 inputTokens,uint32 outputTokens,string finishReason,
                      uint256 inputPrice,uint256 outputPrice)
    Settings(uint32 maxTokens,uint32 temperatureE6,uint32 topK,uint32 topPE6,uint32 minPE6,
             uint64 seed,uint16 threads,uint32 contextSize,uint32 batchSize,uint32 ubatchSize,
             uint16 slots)

- inputHash (the prompt hash): keccak256 of the RFC 8785 canonical JSON of ``{"messages":
  [{role, content}...], "response_format": null | {...}}`` (schemas with integer numbers only);
- outputHash: keccak256 of ``b"U32BE"`` + the count (4 bytes, big-endian) + every generated
  token id as 4 big-endian bytes (the end-of-turn token included when generated);
- price = inputTokens x inputPrice + outputTokens x outputPrice (metered, checked).

A contract an agent wrote (``agents.contracts``) is receipted by ``ContractReceipt``: the base
fields (``modelId``/``weightsHash`` name the model that read the sentence, or
``deterministic`` and zero; ``inputHash`` is the request's, ``outputHash`` the keccak of the
five hashes below in order) plus, under the same domain::

    ContractReceipt(... the ten base fields ..., string template, bytes32 recordId,
                    bytes32 sourceHash, bytes32 buildHash, bytes32 reportHash,
                    bytes32 paramsHash, bool passed)

each hash the sha256 of a canonical JSON document of the delivery (see ``agents.contracts``):
the record ``bazaar contract verify`` rebuilds from, every source with the compiler settings,
the build, the checks and simulation, the parameters; ``passed``: every check and step passed.

``verify_receipt`` checks the signature (the signer must be the provider's address), then every
hash against the data actually received, then the commercial terms the buyer expected. Any
mismatch raises ``BadReceipt`` naming the field. The receipt id is the EIP-712 digest.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Protocol

import numpy as np
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from agentbazaar.agents.errors import BadReceipt
from agentbazaar.errors import InputError
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
_TOKENS_MAGIC = b"U32BE"
SETTINGS_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (receipt JSON key, EIP-712 name, type): sampling, then the runtime configuration
    ("max_tokens", "maxTokens", "uint32"),
    ("temperature_e6", "temperatureE6", "uint32"),
    ("top_k", "topK", "uint32"),
    ("top_p_e6", "topPE6", "uint32"),
    ("min_p_e6", "minPE6", "uint32"),
    ("seed", "seed", "uint64"),
    ("threads", "threads", "uint16"),
    ("context_size", "contextSize", "uint32"),
    ("batch_size", "batchSize", "uint32"),
    ("ubatch_size", "ubatchSize", "uint32"),
    ("slots", "slots", "uint16"),
)
GENERATION_TYPES: dict[str, list[dict[str, str]]] = {
    "GenerationReceipt": [
        *RECEIPT_TYPES["InferenceReceipt"],
        {"name": "runtime", "type": "string"},
        {"name": "settings", "type": "Settings"},
        {"name": "inputTokens", "type": "uint32"},
        {"name": "outputTokens", "type": "uint32"},
        {"name": "finishReason", "type": "string"},
        {"name": "inputPrice", "type": "uint256"},
        {"name": "outputPrice", "type": "uint256"},
    ],
    "Settings": [{"name": name, "type": kind} for _key, name, kind in SETTINGS_FIELDS],
}
CONTRACT_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (receipt JSON key, EIP-712 name, type)
    ("template", "template", "string"),
    ("record_id", "recordId", "bytes32"),
    ("source_hash", "sourceHash", "bytes32"),
    ("build_hash", "buildHash", "bytes32"),
    ("report_hash", "reportHash", "bytes32"),
    ("params_hash", "paramsHash", "bytes32"),
    ("passed", "passed", "bool"),
)
CONTRACT_TYPES: dict[str, list[dict[str, str]]] = {
    "ContractReceipt": [
        *RECEIPT_TYPES["InferenceReceipt"],
        *({"name": name, "type": kind} for _key, name, kind in CONTRACT_FIELDS),
    ]
}
FINISH_REASONS = ("stop", "length", "cancelled")


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


def prompt_hash(prompt: dict[str, Any]) -> str:
    """keccak256 of the canonical JSON of a generation prompt (messages + response format)."""
    from agentbazaar.identity.cards import canonical_json
    from agentbazaar.identity.errors import CardError

    try:
        return "0x" + keccak(canonical_json(prompt)).hex()
    except CardError as exc:
        raise InputError(f"the prompt cannot be receipted: {exc}") from exc


def tokens_bytes(token_ids: list[int] | tuple[int, ...]) -> bytes:
    if not all(
        isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**32 for t in token_ids
    ):
        raise BadReceipt("token ids are integers between 0 and 2**32 - 1")
    body = b"".join(t.to_bytes(4, "big") for t in token_ids)
    return _TOKENS_MAGIC + len(token_ids).to_bytes(4, "big") + body


def tokens_from_bytes(data: bytes) -> list[int]:
    head = len(_TOKENS_MAGIC) + 4
    if len(data) < head or not data.startswith(_TOKENS_MAGIC):
        raise BadReceipt("not a canonical token list")
    count = int.from_bytes(data[len(_TOKENS_MAGIC) : head], "big")
    if len(data) != head + 4 * count:
        raise BadReceipt("canonical token list has the wrong length")
    return [int.from_bytes(data[i : i + 4], "big") for i in range(head, len(data), 4)]


def tokens_hash(token_ids: list[int] | tuple[int, ...]) -> str:
    return "0x" + keccak(tokens_bytes(token_ids)).hex()


# ---- the receipt ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Receipt:
    """The signed fields; hashes and references are 0x-hex strings of 32 bytes."""

    PRIMARY_TYPE: ClassVar[str] = "InferenceReceipt"
    TYPES: ClassVar[dict[str, list[dict[str, str]]]] = RECEIPT_TYPES

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
        if isinstance(data, dict) and "runtime" in data and cls is Receipt:
            return GenerationReceipt.from_json(data)
        if isinstance(data, dict) and "record_id" in data and cls is Receipt:
            return ContractReceipt.from_json(data)
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


@dataclass(frozen=True, kw_only=True)
class GenerationReceipt(Receipt):
    """A completion's receipt: ``input_hash`` is the prompt hash, ``output_hash`` the hash of
    the generated token ids; ``settings`` holds every sampling and runtime parameter."""

    PRIMARY_TYPE: ClassVar[str] = "GenerationReceipt"
    TYPES: ClassVar[dict[str, list[dict[str, str]]]] = GENERATION_TYPES

    runtime: str
    settings: dict[str, int]
    input_tokens: int
    output_tokens: int
    finish_reason: str
    input_price: int
    output_price: int

    def message(self) -> dict[str, Any]:
        return {
            **super().message(),
            "runtime": self.runtime,
            "settings": {name: self.settings[key] for key, name, _ in SETTINGS_FIELDS},
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "finishReason": self.finish_reason,
            "inputPrice": self.input_price,
            "outputPrice": self.output_price,
        }

    @classmethod
    def from_json(cls, data: object) -> GenerationReceipt:
        if not isinstance(data, dict):
            raise BadReceipt("a receipt must be a JSON object")
        base = Receipt.from_json({k: v for k, v in data.items() if k != "runtime"})
        try:
            extra = {f.name: data[f.name] for f in fields(cls) if f.name not in _BASE_FIELDS}
        except KeyError as exc:
            raise BadReceipt(f"receipt field missing: {exc.args[0]}") from exc
        _check_generation_fields(extra)
        return cls(**asdict(base), **extra)


_BASE_FIELDS = frozenset(f.name for f in fields(Receipt))


@dataclass(frozen=True, kw_only=True)
class ContractReceipt(Receipt):
    """A written contract's receipt: the hashes that bind its source, build, report and
    parameters (see the module doc); the hashes are 0x-hex sha256 digests."""

    PRIMARY_TYPE: ClassVar[str] = "ContractReceipt"
    TYPES: ClassVar[dict[str, list[dict[str, str]]]] = CONTRACT_TYPES

    template: str
    record_id: str
    source_hash: str
    build_hash: str
    report_hash: str
    params_hash: str
    passed: bool

    def message(self) -> dict[str, Any]:
        out = super().message()
        for key, name, kind in CONTRACT_FIELDS:
            value = getattr(self, key)
            out[name] = HexBytes(value) if kind == "bytes32" else value
        return out

    @classmethod
    def from_json(cls, data: object) -> ContractReceipt:
        if not isinstance(data, dict):
            raise BadReceipt("a receipt must be a JSON object")
        base = Receipt.from_json({k: v for k, v in data.items() if k != "record_id"})
        try:
            extra = {key: data[key] for key, _name, _kind in CONTRACT_FIELDS}
        except KeyError as exc:
            raise BadReceipt(f"receipt field missing: {exc.args[0]}") from exc
        if not isinstance(extra["passed"], bool) or not isinstance(extra["template"], str):
            raise BadReceipt("receipt fields passed (true/false) and template (text) are typed")
        for key, _name, kind in CONTRACT_FIELDS:
            if kind == "bytes32" and not _is_hash(extra[key]):
                raise BadReceipt(f"receipt field {key} must be 32 bytes of 0x-hex", field=key)
        return cls(**asdict(base), **extra)


def _is_hash(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 66
        and value.startswith("0x")
        and all(c in "0123456789abcdefABCDEF" for c in value[2:])
    )


def _check_generation_fields(extra: dict[str, Any]) -> None:
    for name in ("input_tokens", "output_tokens", "input_price", "output_price"):
        if isinstance(extra[name], bool) or not isinstance(extra[name], int) or extra[name] < 0:
            raise BadReceipt(f"receipt field {name} must be a non-negative integer")
    if not isinstance(extra["runtime"], str) or extra["finish_reason"] not in FINISH_REASONS:
        raise BadReceipt("receipt fields runtime and finish_reason must be text")
    settings = extra["settings"]
    keys = {key for key, _name, _kind in SETTINGS_FIELDS}
    if not isinstance(settings, dict) or set(settings) != keys:
        raise BadReceipt(f"receipt settings must have exactly {sorted(keys)}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in settings.values()):
        raise BadReceipt("receipt settings are integers")


def typed_data(receipt: Receipt, chain_id: int) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            **receipt.TYPES,
        },
        "primaryType": receipt.PRIMARY_TYPE,
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


def check_generation(
    signed: SignedReceipt,
    *,
    signer: str,
    prompt: dict[str, Any],
    token_ids: list[int] | tuple[int, ...],
    max_price: int | None = None,
) -> GenerationReceipt:
    """A generation receipt is signed by ``signer`` and matches the prompt and the tokens
    delivered: prompt hash, token hash, output count, metered price (and at most
    ``max_price``). Raises ``BadReceipt`` naming the first bad field (pure: no model)."""
    r = signed.receipt
    if not isinstance(r, GenerationReceipt):
        raise BadReceipt("not a generation receipt", field="type")
    if recover_signer(signed).lower() != signer.lower():
        raise BadReceipt("receipt not signed by the provider", field="signature")
    checks: list[tuple[str, bool]] = [
        ("input_hash", r.input_hash.lower() == prompt_hash(prompt)),
        ("output_hash", r.output_hash.lower() == tokens_hash(token_ids)),
        ("output_tokens", r.output_tokens == len(token_ids)),
        ("price", r.price == r.input_tokens * r.input_price + r.output_tokens * r.output_price),
        ("price", max_price is None or r.price <= max_price),
        ("output_tokens", r.output_tokens <= r.settings["max_tokens"]),
    ]
    for name, ok in checks:
        if not ok:
            raise BadReceipt(f"receipt field {name} does not match what was delivered", field=name)
    return r
