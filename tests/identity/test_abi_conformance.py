"""Selectors, return types and event topics of our registries equal ERC-8004's.

The signatures below are copied as text from the standard (January 2026 revision, as summarised
in STANDARDS.md); selectors and topics are computed from them with keccak and compared with the
ones computed from the ABI the pinned Vyper compiler produces for our sources.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from eth_utils import keccak

from agentbazaar.chain.compiler import compile_contract

STRUCTS = {"MetadataEntry": "(string,bytes)"}

STANDARD = {
    "IdentityRegistry": """
function register(string agentURI, MetadataEntry[] metadata) returns (uint256 agentId)
function register(string agentURI) returns (uint256 agentId)
function register() returns (uint256 agentId)
function setAgentURI(uint256 agentId, string newURI)
function getMetadata(uint256 agentId, string metadataKey) view returns (bytes)
function setMetadata(uint256 agentId, string metadataKey, bytes metadataValue)
function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes signature)
function getAgentWallet(uint256 agentId) view returns (address)
function unsetAgentWallet(uint256 agentId)
event Registered(uint256 indexed agentId, string agentURI, address indexed owner)
event MetadataSet(uint256 indexed agentId, string indexed indexedMetadataKey, string metadataKey, bytes metadataValue)
event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy)
function balanceOf(address owner) view returns (uint256)
function ownerOf(uint256 tokenId) view returns (address)
function safeTransferFrom(address from, address to, uint256 tokenId, bytes data)
function safeTransferFrom(address from, address to, uint256 tokenId)
function transferFrom(address from, address to, uint256 tokenId)
function approve(address approved, uint256 tokenId)
function setApprovalForAll(address operator, bool approved)
function getApproved(uint256 tokenId) view returns (address)
function isApprovedForAll(address owner, address operator) view returns (bool)
function supportsInterface(bytes4 interfaceId) view returns (bool)
function name() view returns (string)
function symbol() view returns (string)
function tokenURI(uint256 tokenId) view returns (string)
event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)
event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId)
event ApprovalForAll(address indexed owner, address indexed operator, bool approved)
""",
    "ReputationRegistry": """
function getIdentityRegistry() view returns (address)
function giveFeedback(uint256 agentId, int128 value, uint8 valueDecimals, string tag1, string tag2, string endpoint, string feedbackURI, bytes32 feedbackHash)
function revokeFeedback(uint256 agentId, uint64 feedbackIndex)
function appendResponse(uint256 agentId, address clientAddress, uint64 feedbackIndex, string responseURI, bytes32 responseHash)
function getSummary(uint256 agentId, address[] clientAddresses, string tag1, string tag2) view returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals)
function readFeedback(uint256 agentId, address clientAddress, uint64 feedbackIndex) view returns (int128 value, uint8 valueDecimals, string tag1, string tag2, bool isRevoked)
function readAllFeedback(uint256 agentId, address[] clientAddresses, string tag1, string tag2, bool includeRevoked) view returns (address[] clients, uint64[] feedbackIndexes, int128[] values, uint8[] valueDecimals, string[] tag1s, string[] tag2s, bool[] revokedStatuses)
function getResponseCount(uint256 agentId, address clientAddress, uint64 feedbackIndex, address[] responders) view returns (uint64 count)
function getClients(uint256 agentId) view returns (address[])
function getLastIndex(uint256 agentId, address clientAddress) view returns (uint64)
event NewFeedback(uint256 indexed agentId, address indexed clientAddress, uint64 feedbackIndex, int128 value, uint8 valueDecimals, string indexed indexedTag1, string tag1, string tag2, string endpoint, string feedbackURI, bytes32 feedbackHash)
event FeedbackRevoked(uint256 indexed agentId, address indexed clientAddress, uint64 indexed feedbackIndex)
event ResponseAppended(uint256 indexed agentId, address indexed clientAddress, uint64 feedbackIndex, address indexed responder, string responseURI, bytes32 responseHash)
""",
    "ValidationRegistry": """
function validationRequest(address validatorAddress, uint256 agentId, string requestURI, bytes32 requestHash)
function validationResponse(bytes32 requestHash, uint8 response, string responseURI, bytes32 responseHash, string tag)
function getValidationStatus(bytes32 requestHash) view returns (address validatorAddress, uint256 agentId, uint8 response, bytes32 responseHash, string tag, uint256 lastUpdate)
function getSummary(uint256 agentId, address[] validatorAddresses, string tag) view returns (uint64 count, uint8 averageResponse)
function getAgentValidations(uint256 agentId) view returns (bytes32[])
function getValidatorRequests(address validatorAddress) view returns (bytes32[])
event ValidationRequest(address indexed validatorAddress, uint256 indexed agentId, string requestURI, bytes32 indexed requestHash)
event ValidationResponse(address indexed validatorAddress, uint256 indexed agentId, bytes32 indexed requestHash, uint8 response, string responseURI, bytes32 responseHash, string tag)
""",
}

_LINE = re.compile(
    r"^(function|event) (\w+)\(([^)]*)\)(?:\s*(?:view|pure))?(?:\s*returns \(([^)]*)\))?$"
)


def _params(text: str) -> list[tuple[str, bool]]:
    """[(canonical type, indexed)] of a Solidity parameter list."""
    out = []
    for raw in filter(None, (p.strip() for p in text.split(","))):
        words = raw.split()
        base = words[0]
        for struct, tuple_type in STRUCTS.items():
            base = base.replace(struct, tuple_type)
        out.append((base, "indexed" in words[1:]))
    return out


def standard_entries(contract: str) -> list[dict[str, Any]]:
    entries = []
    for line in STANDARD[contract].strip().splitlines():
        match = _LINE.match(line.strip())
        assert match, f"unparsed standard line: {line}"
        kind, name, params, returns = match.groups()
        inputs = _params(params)
        types = ",".join(t for t, _ in inputs)
        entries.append(
            {
                "kind": kind,
                "signature": f"{name}({types})",
                "indexed": [i for _, i in inputs],
                "outputs": [t for t, _ in _params(returns or "")],
            }
        )
    return entries


def _abi_type(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def compiled_entries(contract: str) -> dict[bytes, dict[str, Any]]:
    """By selector (4 bytes) or topic (32 bytes): the compiled ABI's entries."""
    out = {}
    for item in compile_contract(contract).abi:
        if item["type"] not in ("function", "event"):
            continue
        sig = f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
        digest = keccak(text=sig)
        key = digest[:4] if item["type"] == "function" else digest
        out[key] = item
    return out


CASES = [
    (contract, entry)
    for contract in STANDARD
    for entry in standard_entries(contract)
    if contract  # keep the comprehension flat for readable ids
]


@pytest.mark.parametrize(
    ("contract", "entry"), CASES, ids=[f"{c}.{e['signature']}" for c, e in CASES]
)
def test_standard_entry_is_in_compiled_abi(contract: str, entry: dict[str, Any]) -> None:
    compiled = compiled_entries(contract)
    digest = keccak(text=entry["signature"])
    if entry["kind"] == "function":
        item = compiled.get(digest[:4])
        assert item is not None, f"{contract} lacks selector of {entry['signature']}"
        assert [_abi_type(o) for o in item["outputs"]] == entry["outputs"]
    else:
        item = compiled.get(digest)
        assert item is not None, f"{contract} lacks event topic of {entry['signature']}"
        assert [bool(i["indexed"]) for i in item["inputs"]] == entry["indexed"]


def test_known_selector_values() -> None:
    """Anchor the computation itself on selectors that other tools publish."""
    assert keccak(text="register(string)")[:4].hex() == "f2c298be"
    assert keccak(text="ownerOf(uint256)")[:4].hex() == "6352211e"
    assert keccak(text="transferFrom(address,address,uint256)")[:4].hex() == "23b872dd"


def test_every_standard_line_parsed() -> None:
    counts = {c: len(standard_entries(c)) for c in STANDARD}
    assert counts == {"IdentityRegistry": 28, "ReputationRegistry": 13, "ValidationRegistry": 8}
