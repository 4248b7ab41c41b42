"""Verify a deployed contract against its record: rebuild from the recorded sources and settings,
compare with the chain, and say how well it matches, in Sourcify's terms.

- runtime: the code at the address against the rebuilt runtime with the immutables section
  masked ("match"); then the immutables too, reproduced by running the recorded constructor
  in a sandbox as the recorded deployer, at the recorded address, chain id and block time
  ("exact_match");
- creation: the deployment transaction's input against the rebuilt init code + the recorded
  constructor arguments: equal ("exact_match", the metadata's integrity hash included), equal
  but for the CBOR metadata ("match"), or different;
- status: "exact_match" when everything checked is exact, "match" when the code matches but
  something else (immutables, metadata) does not, "mismatch" otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode
from hexbytes import HexBytes

from agentbazaar.authoring.records import RecordStore
from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.fork import fork_env
from agentbazaar.chain.sources import Build, SourceBundle, build, metadata_integrity
from agentbazaar.errors import BazaarError, ContractError


@dataclass(frozen=True)
class Verification:
    address: str
    chain_id: int
    source_id: str
    status: str  # exact_match | match | mismatch
    runtime: str | None  # exact_match | match | None (no match)
    creation: str | None  # exact_match | match | None (no match or no transaction)
    reasons: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.status != "mismatch"

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "chain_id": self.chain_id,
            "source_id": self.source_id,
            "status": self.status,
            "verified": self.verified,
            "runtimeMatch": self.runtime,
            "creationMatch": self.creation,
            "reasons": list(self.reasons),
        }


def initcode(b: Build, args: list[Any]) -> bytes:
    ctor = next((e for e in b.abi if e.get("type") == "constructor"), None)
    if ctor is None:
        return b.bytecode
    from agentbazaar.authoring.sandbox import _type

    return b.bytecode + encode([_type(a) for a in ctor["inputs"]], args)


def verify_address(chain: Chain, store: RecordStore, address: str) -> Verification:
    """Reproduce the match of the contract at ``address`` from its record in ``store``."""
    addr = to_address(address)
    deployment = store.deployment(chain.chain_id, addr)
    record = store.get(str(deployment["source_id"]))
    return verify_record(chain, addr, record, deployment, str(deployment["source_id"]))


def verify_record(
    chain: Chain,
    address: str,
    record: Mapping[str, Any],
    deployment: Mapping[str, Any],
    source_id: str,
) -> Verification:
    rebuilt = build(SourceBundle.from_json(record["bundle"]))
    code = chain.code_at(address)
    init = initcode(rebuilt, list(record["constructor_args"]))
    reasons: list[str] = []
    runtime = _runtime_match(code, rebuilt, init, deployment, chain.chain_id, address, reasons)
    creation = _creation_match(chain, rebuilt, init, deployment, reasons)
    if runtime is None:
        status = "mismatch"
    elif runtime == "exact_match" and creation in ("exact_match", None):
        status = "exact_match"
    else:
        status = "match"
    return Verification(address, chain.chain_id, source_id, status, runtime, creation, reasons)


def _runtime_match(
    code: bytes,
    rebuilt: Build,
    init: bytes,
    deployment: Mapping[str, Any],
    chain_id: int,
    address: str,
    reasons: list[str],
) -> str | None:
    if not code:
        reasons.append("no code at the address")
        return None
    expected = reproduce_runtime(init, deployment, chain_id, address)
    n = len(rebuilt.runtime)
    if len(code) != len(expected) or code[:n] != rebuilt.runtime:
        reasons.append(
            f"runtime code differs from the rebuild ({len(code)} bytes on chain, "
            f"{len(expected)} expected)"
        )
        return None
    if code != expected:
        reasons.append("immutables differ from those the recorded constructor arguments make")
        return "match"
    return "exact_match"


def reproduce_runtime(
    init: bytes, deployment: Mapping[str, Any], chain_id: int, address: str
) -> bytes:
    """The code ``init`` leaves at ``address`` when the recorded deployer runs it at the
    recorded block time on chain ``chain_id`` (immutables included)."""
    env = fork_env(None)
    env.evm.patch.chain_id = chain_id
    env.timestamp = int(deployment["timestamp"])
    deployer = str(deployment["deployer"])
    env.set_balance(deployer, 10**24)
    target, computation = env.deploy(sender=deployer, bytecode=init, override_address=address)
    if computation.is_error:
        raise ContractError("the recorded constructor reverts when run again: record is wrong")
    return bytes(env.get_code(target))


def _creation_match(
    chain: Chain, rebuilt: Build, init: bytes, deployment: Mapping[str, Any], reasons: list[str]
) -> str | None:
    tx_hash = deployment.get("tx")
    if not tx_hash:
        reasons.append("no deployment transaction recorded: creation code not compared")
        return None
    try:
        tx = chain.w3.eth.get_transaction(HexBytes(str(tx_hash)))
    except Exception as exc:  # pruned node, unknown transaction: not comparable
        if isinstance(exc, BazaarError):
            raise
        reasons.append(f"deployment transaction {tx_hash} not available: {type(exc).__name__}")
        return None
    sent = bytes(HexBytes(tx.get("input") or tx.get("data") or b""))
    if sent == init:
        return "exact_match"
    n = len(rebuilt.bytecode)
    if len(sent) == len(init) and sent[n:] == init[n:]:
        theirs = metadata_integrity(sent[:n])
        if theirs is not None and _without_metadata(sent[:n]) == _without_metadata(init[:n]):
            reasons.append(f"metadata integrity {theirs[:12]}... differs from the rebuild's")
            return "match"
    reasons.append("the deployment transaction's init code differs from the rebuild")
    return None


def _without_metadata(code: bytes) -> bytes:
    """Init code with the 32-byte integrity hash zeroed (the rest of the CBOR kept)."""
    digest = metadata_integrity(code)
    if digest is None:
        return code
    i = code.rfind(bytes.fromhex(digest))
    return code[:i] + b"\0" * 32 + code[i + 32 :]
