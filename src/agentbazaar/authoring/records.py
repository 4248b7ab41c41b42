"""Content-addressed records of what was built, and which address holds which record.

    <home>/contracts/sources/<sha256>.json          the record: template, every source, compiler
                                                    settings, parameters, constructor arguments
    <home>/contracts/deployed/<chain id>/<address>.json   source id, transaction, deployer,
                                                    block and its timestamp

A record's id is the sha256 of its canonical JSON (sorted keys, no whitespace), so the same
contract with the same parameters has one id, and a record changed on disk no longer matches its
id (refused on read). Files are written whole (temp file, then rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentbazaar.chain.sources import canonical_json
from agentbazaar.errors import ContractError, NotVerified

_ID = re.compile(r"[0-9a-f]{64}")


def record_id(record: Mapping[str, Any]) -> str:
    """A record's id: the sha256 of its canonical JSON (hex, no 0x)."""
    return hashlib.sha256(canonical_json(dict(record))).hexdigest()


class RecordStore:
    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "contracts"

    def put(self, record: Mapping[str, Any]) -> str:
        """Store ``record``; returns its id (the sha256 of its canonical JSON)."""
        data = canonical_json(dict(record))
        source_id = record_id(record)
        path = self.root / "sources" / f"{source_id}.json"
        if not path.is_file():
            _write(path, data)
        return source_id

    def get(self, source_id: str) -> dict[str, Any]:
        if not _ID.fullmatch(source_id):
            raise NotVerified(f"not a source id: {source_id!r} (64 hex digits)")
        path = self.root / "sources" / f"{source_id}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotVerified(f"no record {source_id} in {self.root}") from exc
        if hashlib.sha256(data).hexdigest() != source_id:
            raise NotVerified(f"record {path} does not match its id: it was changed on disk")
        try:
            return dict(json.loads(data))
        except ValueError as exc:  # pragma: no cover - a matching hash means we wrote it
            raise NotVerified(f"record {path} is not JSON: {exc}") from exc

    def link(self, chain_id: int, address: str, deployment: Mapping[str, Any]) -> Path:
        path = self._deployed(chain_id, address)
        _write(path, json.dumps(dict(deployment), sort_keys=True, indent=2).encode())
        return path

    def deployment(self, chain_id: int, address: str) -> dict[str, Any]:
        path = self._deployed(chain_id, address)
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise NotVerified(
                f"no record of a contract at {address} on chain {chain_id} in this data "
                "directory: only contracts made with `bazaar contract new` can be verified here"
            ) from exc
        except ValueError as exc:
            raise NotVerified(f"{path} is not JSON: {exc}") from exc

    def _deployed(self, chain_id: int, address: str) -> Path:
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
            raise ContractError(f"not an address: {address!r}")
        return self.root / "deployed" / str(int(chain_id)) / f"{address.lower()}.json"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
