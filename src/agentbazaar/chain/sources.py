"""Self-contained Vyper builds: every source a contract compiles from, and a build from them.

A ``SourceBundle`` holds the text of the contract and of every module it imports (snekmate's
included), under the paths it imports them by, with the compiler settings. Building from a
bundle writes those files to a fresh directory and compiles with that directory as the only
search path, so the same bundle rebuilds the same bytecode anywhere: it is what a deployed
contract is verified against (``agentbazaar.authoring.verify``). Builds are cached by the
bundle's sha256 (its canonical JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from agentbazaar.chain.compiler import (
    CONTRACTS_DIR,
    EVM_VERSION,
    _extra_abi,
    contract_path,
)
from agentbazaar.config import default_cache_dir
from agentbazaar.errors import ContractError

_lock = threading.Lock()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes a record's sha256 is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compiler_settings() -> dict[str, str]:
    """The settings every build uses (recorded, and checked again on a rebuild)."""
    return {
        "compiler": "vyper",
        "version": metadata.version("vyper"),
        "evm_version": EVM_VERSION,
        "optimize": "gas",
        "snekmate": metadata.version("snekmate"),
    }


@dataclass(frozen=True)
class SourceBundle:
    target: str  # path of the contract inside ``sources``, e.g. "templates/Escrow.vy"
    sources: Mapping[str, str]  # path -> text, the contract and every module it imports
    settings: Mapping[str, str] = field(default_factory=compiler_settings)
    extra_abi: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "sources": dict(sorted(self.sources.items())),
            "settings": dict(sorted(self.settings.items())),
            "extra_abi": list(self.extra_abi),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceBundle:
        try:
            sources = {str(k): str(v) for k, v in dict(data["sources"]).items()}
            target = str(data["target"])
            settings = {str(k): str(v) for k, v in dict(data["settings"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"not a source bundle: {exc}") from exc
        if target not in sources:
            raise ContractError(f"source bundle does not contain its target {target!r}")
        return cls(target, sources, settings, tuple(data.get("extra_abi") or ()))

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()


@dataclass(frozen=True)
class Build:
    """What the compiler made of a bundle. ``integrity`` is the hash Vyper embeds in the
    init code's CBOR metadata; ``warnings`` are the compiler's own."""

    bundle_digest: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime: bytes
    integrity: str
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle_digest": self.bundle_digest,
            "abi": self.abi,
            "bytecode": self.bytecode.hex(),
            "runtime": self.runtime.hex(),
            "integrity": self.integrity,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Build:
        return cls(
            bundle_digest=str(data["bundle_digest"]),
            abi=list(data["abi"]),
            bytecode=bytes.fromhex(str(data["bytecode"])),
            runtime=bytes.fromhex(str(data["runtime"])),
            integrity=str(data["integrity"]),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
        )


def _search_roots() -> list[Path]:
    return [CONTRACTS_DIR, *(Path(p) for p in sys.path if p and Path(p).is_dir())]


def gather(name: str) -> SourceBundle:
    """The bundle of our contract ``name`` (e.g. ``templates/LinearVesting``) as installed."""
    from vyper.compiler.input_bundle import FileInput, FilesystemInputBundle
    from vyper.compiler.phases import CompilerData
    from vyper.compiler.settings import Settings

    path = contract_path(name)
    roots = _search_roots()
    target = str(path.relative_to(CONTRACTS_DIR))
    file_input = FileInput(
        contents=path.read_text(), source_id=-1, path=Path(target), resolved_path=path
    )
    data = CompilerData(file_input, FilesystemInputBundle(roots), Settings(evm_version=EVM_VERSION))
    sources = {target: path.read_text()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            inputs = data.resolved_imports.compiler_inputs
        except Exception as exc:  # the compiler raises many types; all mean "cannot import"
            raise ContractError(f"contract {name} does not resolve its imports: {exc}") from exc
    for inp in inputs:
        if getattr(inp, "from_builtin", False):
            continue
        resolved = Path(inp.resolved_path)
        sources[_relative(resolved, roots)] = resolved.read_text()
    return SourceBundle(target, sources, extra_abi=tuple(_extra_abi(path)))


def _relative(path: Path, roots: list[Path]) -> str:
    """``path`` as the import that names it: relative to the most specific search root (a root
    that contains another, such as a project directory holding its virtualenv, must not win)."""
    resolved = path.resolve()
    names = []
    for root in roots:
        try:
            names.append(resolved.relative_to(root.resolve()))
        except ValueError:
            continue
    if not names:
        raise ContractError(f"imported module {path} is outside every search path")
    return str(min(names, key=lambda name: len(name.parts)))


def build(bundle: SourceBundle, *, cache_dir: Path | None = None) -> Build:
    """Compile ``bundle`` from its own files only (cached by the bundle's digest)."""
    if dict(bundle.settings) != compiler_settings():
        raise ContractError(
            f"the bundle was built with {dict(bundle.settings)}, this installation has "
            f"{compiler_settings()}: install the recorded versions to rebuild it"
        )
    digest = bundle.digest
    cache = (cache_dir or default_cache_dir()) / f"bundle-{digest[:24]}.json"
    with _lock:
        if cache.is_file():
            try:
                return Build.from_json(json.loads(cache.read_text()))
            except (ValueError, KeyError):
                cache.unlink(missing_ok=True)
        result = _compile_bundle(bundle, digest)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result.to_json()))
        tmp.replace(cache)
        return result


def materialize(bundle: SourceBundle, root: Path) -> Path:
    """Write the bundle's files under ``root``; returns the target's path."""
    for rel, text in bundle.sources.items():
        dest = (root / rel).resolve()
        if root.resolve() not in dest.parents:
            raise ContractError(f"source path {rel!r} escapes the bundle")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    return root / bundle.target


def _compile_bundle(bundle: SourceBundle, digest: str) -> Build:
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bazaar-build-") as tmp:
        root = Path(tmp)
        target = materialize(bundle, root)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = vyper.compile_code(
                    target.read_text(),
                    contract_path=bundle.target,
                    resolved_path=target,
                    input_bundle=FilesystemInputBundle([root]),
                    settings=Settings(evm_version=bundle.settings["evm_version"]),
                    output_formats=["abi", "bytecode", "bytecode_runtime", "integrity"],
                )
            except Exception as exc:  # the compiler raises many types; all mean "no build"
                raise ContractError(f"{bundle.target} does not compile: {exc}") from exc
    return Build(
        bundle_digest=digest,
        abi=[*out["abi"], *bundle.extra_abi],
        bytecode=bytes.fromhex(out["bytecode"][2:]),
        runtime=bytes.fromhex(out["bytecode_runtime"][2:]),
        integrity=str(out["integrity"]),
        warnings=tuple(str(w.message) for w in caught),
    )


def metadata_integrity(initcode: bytes) -> str | None:
    """The integrity hash in the CBOR metadata Vyper appends to init code, or None.

    The last two bytes give the metadata's length; its first item is ``0x5820`` + 32 bytes.
    """
    if len(initcode) < 2:
        return None
    size = int.from_bytes(initcode[-2:], "big")
    if size < 35 or size + 2 > len(initcode):
        return None
    meta = initcode[-(size + 2) : -2]
    start = meta.find(b"\x58\x20")
    if start < 0 or len(meta) < start + 34:
        return None
    return meta[start + 2 : start + 34].hex()
