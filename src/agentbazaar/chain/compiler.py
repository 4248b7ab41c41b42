"""Compile our Vyper contracts with the pinned compiler; cache artifacts by source hash.

The source hash covers the compiler version, the EVM version, the contract's own source and every
local module it imports (recursively); snekmate modules are covered by the pinned snekmate version.
So a changed source (ours or an imported module of ours) yields a new hash, which the deployment
manifest uses to detect that a deployed contract is out of date.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from agentbazaar.config import default_cache_dir
from agentbazaar.errors import ContractError

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
EVM_VERSION = "cancun"
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+)?import\s+([\w.]+)", re.MULTILINE)
_lock = threading.Lock()


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime: bytes
    source_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "abi": self.abi,
            "bytecode": self.bytecode.hex(),
            "runtime": self.runtime.hex(),
            "source_hash": self.source_hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            name=data["name"],
            abi=data["abi"],
            bytecode=bytes.fromhex(data["bytecode"]),
            runtime=bytes.fromhex(data["runtime"]),
            source_hash=data["source_hash"],
        )


def contract_path(name: str) -> Path:
    """``Name`` or ``folder/Name`` (e.g. ``templates/LinearVesting``) under ``contracts/``."""
    path = CONTRACTS_DIR / f"{name}.vy"
    if not re.fullmatch(r"(?:[A-Za-z0-9_]+/)?[A-Za-z0-9_]+", name) or not path.is_file():
        known = ", ".join(
            sorted(str(p.relative_to(CONTRACTS_DIR).with_suffix("")) for p in _all_sources())
        )
        raise ContractError(f"unknown contract {name!r}; known contracts: {known}")
    return path


def _all_sources() -> list[Path]:
    return [*CONTRACTS_DIR.glob("*.vy"), *CONTRACTS_DIR.glob("*/*.vy")]


def _local_imports(path: Path) -> list[Path]:
    found: list[Path] = []
    for pkg, mod in _IMPORT.findall(path.read_text()):
        dotted = f"{pkg}.{mod}" if pkg else mod
        candidate = CONTRACTS_DIR.joinpath(*dotted.lstrip(".").split(".")).with_suffix(".vy")
        if candidate.is_file():
            found.append(candidate)
    return found


def source_hash(name: str) -> str:
    """Hash of everything that determines the compiled output of contract ``name``."""
    h = hashlib.sha256()
    h.update(
        f"vyper={metadata.version('vyper')};snekmate={metadata.version('snekmate')};"
        f"evm={EVM_VERSION}".encode()
    )
    seen: set[Path] = set()
    todo = [contract_path(name)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        h.update(str(path.relative_to(CONTRACTS_DIR)).encode() + b"\0" + path.read_bytes())
        extra = _extra_abi_path(path)
        if extra.is_file():
            h.update(str(extra.relative_to(CONTRACTS_DIR)).encode() + b"\0" + extra.read_bytes())
        todo.extend(_local_imports(path))
    return h.hexdigest()


def _extra_abi_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.abi-extra.json")


def _extra_abi(path: Path) -> list[dict[str, Any]]:
    """ABI entries Vyper does not emit: functions a contract dispatches itself in
    ``__default__``, and custom errors raised with ``raw_revert``.

    Vyper has no overloading by argument type, so e.g. the ``bytes signature`` overloads of
    EIP-3009 are routed by selector in the fallback, and no ``error`` declarations, so Permit2's
    errors are raw revert data; ``<Name>.abi-extra.json`` describes them.
    """
    extra = _extra_abi_path(path)
    if not extra.is_file():
        return []
    try:
        entries = json.loads(extra.read_text())
    except ValueError as exc:
        raise ContractError(f"{extra.name} is not valid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ContractError(f"{extra.name} must hold a JSON list of ABI entries")
    return entries


def compile_contract(name: str, *, cache_dir: Path | None = None) -> Artifact:
    """Compile ``contracts/<name>.vy`` (or load it from the cache when the source is unchanged)."""
    digest = source_hash(name)
    cache = (cache_dir or default_cache_dir()) / f"{name}-{digest[:20]}.json"
    with _lock:
        if cache.is_file():
            try:
                return Artifact.from_json(json.loads(cache.read_text()))
            except (ValueError, KeyError):
                cache.unlink(missing_ok=True)  # corrupt cache entry: recompile
        artifact = _compile(name, digest)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(artifact.to_json()))
        tmp.replace(cache)
        return artifact


def _compile(name: str, digest: str) -> Artifact:
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import Settings

    path = contract_path(name)
    search = [CONTRACTS_DIR, *(Path(p) for p in sys.path if p and Path(p).is_dir())]
    try:
        out = vyper.compile_code(
            path.read_text(),
            contract_path=path.name,
            resolved_path=path,
            input_bundle=FilesystemInputBundle(search),
            settings=Settings(evm_version=EVM_VERSION),
            output_formats=["abi", "bytecode", "bytecode_runtime"],
        )
    except Exception as exc:  # the compiler raises many types; all mean "does not compile"
        raise ContractError(f"contract {name} does not compile: {exc}") from exc
    return Artifact(
        name=name,
        abi=[*out["abi"], *_extra_abi(path)],
        bytecode=bytes.fromhex(out["bytecode"][2:]),
        runtime=bytes.fromhex(out["bytecode_runtime"][2:]),
        source_hash=digest,
    )
