"""Lineage: from an inference or generation receipt, or a dataset CID, to the datasets behind it,
their licences, contributors and the payments that reached them.

A receipt cites datasets with a ``Citation`` signed by the same key that signed the receipt
(the provider's), as EIP-712 typed data::

    DatasetCitation(bytes32 receiptId,bytes32 datasetsHash)   datasetsHash = keccak256(cid_1 || ... )

under the domain ``{name: "agentbazaar DatasetCitation", version: "1", chainId}`` (the CIDs in
binary form, in the order cited). The receipt's own EIP-712 fields are unchanged; the citation
travels beside it (stored in ``LineageStore``), and anyone can check who made it.

``walk`` starts from a receipt id (its citations) or a CID, finds each dataset in the registry,
follows parents up to the roots, and for each dataset reports its licence template, publisher,
contributors and shares (read from its splitter) and the payments its splitter saw: sales (token
transfers to it), royalties it paid upstream, and releases to contributors (from the chain's
logs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.contract import Contract

from agentbazaar.data.cid import Cid
from agentbazaar.data.errors import LineageError
from agentbazaar.data.licences import TEMPLATES
from agentbazaar.data.registry import DatasetEntry, DatasetRegistry
from agentbazaar.sqlite import Database

DOMAIN_NAME = "agentbazaar DatasetCitation"
DOMAIN_VERSION = "1"
CITATION_TYPES = {
    "DatasetCitation": [
        {"name": "receiptId", "type": "bytes32"},
        {"name": "datasetsHash", "type": "bytes32"},
    ]
}
MAX_ANCESTORS = 256


class CitationSigner(Protocol):
    @property
    def address(self) -> str: ...

    def sign_message(self, signable_message: SignableMessage) -> Any: ...


@dataclass(frozen=True)
class Citation:
    receipt_id: str
    cids: tuple[str, ...]
    signer: str
    signature: str
    chain_id: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiptId": self.receipt_id,
            "cids": list(self.cids),
            "signer": self.signer,
            "signature": self.signature,
            "chainId": self.chain_id,
        }


def _datasets_hash(cids: Sequence[str]) -> bytes:
    return bytes(keccak(b"".join(Cid.parse(c).binary for c in cids)))


def _signable(receipt_id: str, cids: Sequence[str], chain_id: int) -> SignableMessage:
    receipt = HexBytes(receipt_id)
    if len(receipt) != 32:
        raise LineageError("a receipt id is 32 bytes of hex (the receipt's EIP-712 digest)")
    return encode_typed_data(
        domain_data={"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id},
        message_types=CITATION_TYPES,
        message_data={"receiptId": receipt, "datasetsHash": _datasets_hash(cids)},
    )


def cite(signer: CitationSigner, receipt_id: str, cids: Sequence[str], chain_id: int) -> Citation:
    """The receipt's signer states which datasets the work drew on."""
    if not cids:
        raise LineageError("a citation names at least one dataset CID")
    normalised = tuple(str(Cid.parse(c)) for c in cids)
    signed = signer.sign_message(_signable(receipt_id, normalised, chain_id))
    return Citation(
        receipt_id.lower(),
        normalised,
        signer.address,
        "0x" + bytes(signed.signature).hex(),
        chain_id,
    )


def verify_citation(citation: Citation) -> str:
    """The address that signed the citation (must be its ``signer``); LineageError otherwise."""
    try:
        signable = _signable(citation.receipt_id, citation.cids, citation.chain_id)
        signer = str(Account.recover_message(signable, signature=HexBytes(citation.signature)))
    except LineageError:
        raise
    except Exception as exc:  # malformed signature bytes of any kind
        raise LineageError(f"citation signature is malformed: {exc}") from exc
    if signer.lower() != citation.signer.lower():
        raise LineageError("the citation is not signed by its signer")
    return signer


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS citations (receipt_id TEXT NOT NULL, position INTEGER"
    " NOT NULL, cid TEXT NOT NULL, signer TEXT NOT NULL, signature TEXT NOT NULL,"
    " chain_id INTEGER NOT NULL, PRIMARY KEY (receipt_id, position))"
)


class LineageStore:
    """Citations by receipt id (SQLite; ``None`` keeps them in memory)."""

    def __init__(self, path: Path | None) -> None:
        self._db = Database(path, [_SCHEMA], synchronous="FULL")

    def add(self, citation: Citation) -> None:
        verify_citation(citation)
        rows = [
            (citation.receipt_id, i, cid, citation.signer, citation.signature, citation.chain_id)
            for i, cid in enumerate(citation.cids)
        ]
        with self._db.transaction() as db:
            db.execute("DELETE FROM citations WHERE receipt_id=?", (citation.receipt_id,))
            db.executemany("INSERT INTO citations VALUES (?,?,?,?,?,?)", rows)

    def get(self, receipt_id: str) -> Citation | None:
        with self._db.locked() as db:
            rows = db.execute(
                "SELECT cid, signer, signature, chain_id FROM citations WHERE receipt_id=?"
                " ORDER BY position",
                (receipt_id.lower(),),
            ).fetchall()
        if not rows:
            return None
        _, signer, signature, chain_id = rows[0]
        return Citation(receipt_id.lower(), tuple(r[0] for r in rows), signer, signature, chain_id)

    def close(self) -> None:
        self._db.close()


# ---- the walk --------------------------------------------------------------------------------
def walk(
    start: str,
    registry: DatasetRegistry,
    token: Contract,
    store: LineageStore | None = None,
) -> dict[str, Any]:
    """Lineage from a receipt id (``0x`` + 64 hex, cited in ``store``) or a dataset CID."""
    citation = None
    if start.startswith("0x") and len(start) == 66:
        citation = store.get(start) if store is not None else None
        if citation is None:
            raise LineageError(f"no dataset citation is recorded for receipt {start}")
        verify_citation(citation)
        cids = list(citation.cids)
    else:
        cids = [str(Cid.parse(start))]
    datasets: dict[int, DatasetEntry] = {}
    todo = [registry.by_cid(Cid.parse(c)).id for c in cids]
    while todo:
        dataset_id = todo.pop()
        if dataset_id in datasets:
            continue
        if len(datasets) >= MAX_ANCESTORS:
            raise LineageError(f"more than {MAX_ANCESTORS} datasets in the lineage")
        datasets[dataset_id] = registry.dataset(dataset_id)
        todo.extend(registry.parents(dataset_id))
    return {
        "start": start,
        "citation": citation.to_dict() if citation else None,
        "cited": cids,
        "datasets": [_describe(entry, registry, token) for _, entry in sorted(datasets.items())],
    }


def _describe(entry: DatasetEntry, registry: DatasetRegistry, token: Contract) -> dict[str, Any]:
    splitter = registry.splitter(entry.id)
    chain = registry.chain
    payees = [
        chain.call(splitter.functions.payees(i))
        for i in range(chain.call(splitter.functions.payeeCount()))
    ]
    template = TEMPLATES[entry.licence - 1] if 1 <= entry.licence <= len(TEMPLATES) else None
    return {
        **entry.to_dict(),
        "licence": {"id": entry.licence, **(template.terms() if template else {})},
        "parents": registry.parents(entry.id),
        "contributors": [
            {"address": p, "shares": int(chain.call(splitter.functions.shares(p)))} for p in payees
        ],
        "payments": _payments(splitter, token, entry.splitter),
    }


def _payments(splitter: Contract, token: Contract, address: str) -> dict[str, Any]:
    def rows(logs: Any, *fields: str) -> list[dict[str, Any]]:
        return [
            {
                **{f: _plain(log["args"][f]) for f in fields},
                "tx": log["transactionHash"].to_0x_hex(),
            }
            for log in logs
        ]

    transfer = token.events.Transfer()
    sender, receiver, value = (i["name"] for i in transfer.abi["inputs"])  # from, to, value
    sales = transfer.get_logs(from_block=0, argument_filters={receiver: address})
    return {
        "received": rows(sales, sender, value),
        "royalties_paid": rows(
            splitter.events.RoyaltyPaid().get_logs(from_block=0), "upstream", "amount"
        ),
        "released": rows(splitter.events.Released().get_logs(from_block=0), "payee", "amount"),
    }


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
