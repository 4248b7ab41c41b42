"""The registry events the discovery index follows, and a fast decoder for their logs.

ABI fragments are the ERC-8004 standard's (January 2026): events are matched by topic and by the
number of indexed topics, so another contract's look-alike event is not decoded by mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from hexbytes import HexBytes
from web3 import Web3
from web3.types import LogReceipt

from agentbazaar.errors import AddressError, IdentityError
from agentbazaar.primitives import parse_address


# ---- events ------------------------------------------------------------------------------------
def _ev(name: str, inputs: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {
        "type": "event",
        "name": name,
        "anonymous": False,
        "inputs": [{"name": n, "type": t, "indexed": i} for n, t, i in inputs],
    }


IDENTITY_EVENTS = [
    _ev(
        "Registered",
        [("agentId", "uint256", True), ("agentURI", "string", False), ("owner", "address", True)],
    ),
    _ev(
        "URIUpdated",
        [("agentId", "uint256", True), ("newURI", "string", False), ("updatedBy", "address", True)],
    ),
    _ev(
        "MetadataSet",
        [
            ("agentId", "uint256", True),
            ("indexedMetadataKey", "string", True),
            ("metadataKey", "string", False),
            ("metadataValue", "bytes", False),
        ],
    ),
    _ev(
        "Transfer",
        [("from", "address", True), ("to", "address", True), ("tokenId", "uint256", True)],
    ),
]
REPUTATION_EVENTS = [
    _ev(
        "NewFeedback",
        [
            ("agentId", "uint256", True),
            ("clientAddress", "address", True),
            ("feedbackIndex", "uint64", False),
            ("value", "int128", False),
            ("valueDecimals", "uint8", False),
            ("indexedTag1", "string", True),
            ("tag1", "string", False),
            ("tag2", "string", False),
            ("endpoint", "string", False),
            ("feedbackURI", "string", False),
            ("feedbackHash", "bytes32", False),
        ],
    ),
    _ev(
        "FeedbackRevoked",
        [
            ("agentId", "uint256", True),
            ("clientAddress", "address", True),
            ("feedbackIndex", "uint64", True),
        ],
    ),
]


def _topic(abi: dict[str, Any]) -> HexBytes:
    sig = f"{abi['name']}({','.join(i['type'] for i in abi['inputs'])})"
    return HexBytes(Web3.keccak(text=sig))


@dataclass(frozen=True)
class RegistryEvent:
    """One registry log, decoded into JSON-able args (bytes as 0x hex, ints as int)."""

    block_number: int
    log_index: int
    block_hash: str
    name: str
    agent_id: int
    args: Mapping[str, Any]
    tx_hash: str = ""


@dataclass(frozen=True)
class _Decoder:
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) of topics 1..n
    data: tuple[tuple[str, str], ...]  # (name, type) of the data part


def _decoders(abis: list[dict[str, Any]]) -> dict[bytes, _Decoder]:
    out = {}
    for abi in abis:
        ins = abi["inputs"]
        out[bytes(_topic(abi))] = _Decoder(
            name=abi["name"],
            indexed=tuple((i["name"], i["type"]) for i in ins if i["indexed"]),
            data=tuple((i["name"], i["type"]) for i in ins if not i["indexed"]),
        )
    return out


_IDENTITY_DECODERS = _decoders(IDENTITY_EVENTS)
_REPUTATION_DECODERS = _decoders(REPUTATION_EVENTS)


def _topic_value(kind: str, topic: bytes) -> Any:
    if kind == "address":
        return _cs("0x" + topic[-20:].hex())
    if kind.startswith("uint"):
        return int.from_bytes(topic, "big")
    return "0x" + topic.hex()  # indexed strings are only their keccak hash


def decode_log(
    log: LogReceipt | Mapping[str, Any], identity: str, reputation: str | None
) -> RegistryEvent | None:
    """Decode a log of the identity or reputation registry (None for logs we do not index)."""
    address = str(log["address"]).lower()
    decoders: dict[bytes, _Decoder] = {}
    if address == identity.lower():
        decoders = _IDENTITY_DECODERS
    elif reputation and address == reputation.lower():
        decoders = _REPUTATION_DECODERS
    topics = [bytes(HexBytes(t)) for t in log["topics"]]
    dec = decoders.get(topics[0]) if topics else None
    if dec is None or len(topics) != 1 + len(dec.indexed):
        return None
    args: dict[str, Any] = {
        name: _topic_value(kind, t) for (name, kind), t in zip(dec.indexed, topics[1:], strict=True)
    }
    try:
        values = abi_decode([k for _, k in dec.data], bytes(HexBytes(log["data"])))
    except Exception:  # a log that only looks like ours (another contract's event layout)
        return None
    for (name, kind), value in zip(dec.data, values, strict=True):
        args[name] = _cs(value) if kind == "address" else _jsonable(value)
    agent_id = int(args["tokenId"] if dec.name == "Transfer" else args["agentId"])
    return RegistryEvent(
        block_number=_int(log["blockNumber"]),
        log_index=_int(log["logIndex"]),
        block_hash=HexBytes(log["blockHash"]).to_0x_hex(),
        name=dec.name,
        agent_id=agent_id,
        args=args,
        tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
    )


def _int(value: Any) -> int:
    """A quantity from a formatted log (int) or a raw JSON-RPC one (hex string)."""
    return int(value, 16) if isinstance(value, str) else int(value)


def _cs(address: str) -> str:
    try:
        return parse_address(address)
    except AddressError as exc:
        raise IdentityError(f"not an address in a registry event: {address!r}") from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value
