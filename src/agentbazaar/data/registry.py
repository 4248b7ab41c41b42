"""Typed Python access to ``DatasetRegistry.vy`` and the dataset splitters it creates.

Writes take the sending ``LocalAccount`` (the publisher's key: registry transactions cost gas
only, they move no tokens, like the agents' registry transactions) and return after the receipt;
the call is simulated first, so a revert raises ``TransactionReverted`` with the contract's
reason and nothing is sent. Inputs are checked against the contract's rules before that, so the
common mistakes (shares that do not sum to the whole, a royalty above 100%) are typed
``DatasetInputError``s with nothing signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import TxReceipt

from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.data.cid import Cid
from agentbazaar.data.errors import DatasetInputError, LicenceError, UnknownDataset

if TYPE_CHECKING:
    from agentbazaar.suite import Suite

REGISTRY_KEY = "DatasetRegistry"
SPLITTER_KEY = "RevenueSplitter"
SHARE_WHOLE = 10_000
BPS = 10_000
MAX_PARENTS = 8
MAX_CONTRIBUTORS = 64


@dataclass(frozen=True)
class DatasetEntry:
    id: int
    cid: Cid
    agent_id: int
    publisher: str
    licence: int
    royalty_bps: int
    token: str
    price: int
    price_per_chunk: int
    splitter: str
    version: int
    first_version: int
    published_at: int

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["cid"] = str(self.cid)
        out["price"], out["price_per_chunk"] = str(self.price), str(self.price_per_chunk)
        return out


@dataclass(frozen=True)
class OnchainLicence:
    id: int
    name: str
    commercial: bool
    derivatives: bool
    attribution: bool
    terms_hash: bytes


def check_terms(
    *,
    royalty_bps: int,
    parents: Sequence[int],
    contributors: Sequence[str],
    shares: Sequence[int],
) -> None:
    """The registry's rules on royalty and shares, checked before anything is signed."""
    if not 0 <= royalty_bps <= BPS:
        raise DatasetInputError(f"royalty {royalty_bps} bps is above 100% (10000 bps)")
    if len(parents) > MAX_PARENTS or len(set(parents)) != len(parents):
        raise DatasetInputError(f"at most {MAX_PARENTS} distinct parent datasets")
    if not contributors or len(contributors) != len(shares):
        raise DatasetInputError("name at least one contributor, each with a share")
    if len(contributors) > MAX_CONTRIBUTORS or len(set(contributors)) != len(contributors):
        raise DatasetInputError(f"at most {MAX_CONTRIBUTORS} distinct contributors")
    if any(s <= 0 for s in shares) or sum(shares) != SHARE_WHOLE:
        raise DatasetInputError(
            f"contributor shares must be positive and sum to {SHARE_WHOLE} (got {sum(shares)})"
        )


class DatasetRegistry:
    """The registry contract on one chain."""

    def __init__(self, chain: Chain, contract: Contract) -> None:
        self.chain = chain
        self.contract = contract

    @classmethod
    def from_suite(cls, suite: Suite) -> DatasetRegistry:
        return cls(suite.chain, suite.contract(REGISTRY_KEY))

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def _call(self, fn: str, *args: Any) -> Any:
        return self.chain.call(getattr(self.contract.functions, fn)(*args))

    def _send(self, account: LocalAccount, fn: str, *args: Any) -> TxReceipt:
        return self.chain.transact(account, getattr(self.contract.functions, fn)(*args))

    def publish(
        self,
        account: LocalAccount,
        *,
        cid: Cid,
        agent_id: int,
        licence: int,
        token: str,
        price: int,
        price_per_chunk: int = 0,
        royalty_bps: int = 0,
        parents: Sequence[int] = (),
        contributors: Sequence[str] = (),
        shares: Sequence[int] = (),
    ) -> int:
        """Publish version 1 of a dataset; returns its id."""
        contributors = [str(to_address(c)) for c in contributors] or [account.address]
        shares = list(shares) or [SHARE_WHOLE]
        check_terms(
            royalty_bps=royalty_bps, parents=parents, contributors=contributors, shares=shares
        )
        if price < 0 or price_per_chunk < 0:
            raise DatasetInputError("prices must not be negative")
        self.licence(licence)
        args = (cid.binary, agent_id, licence, royalty_bps, to_address(token), price)
        receipt = self._send(
            account, "publish", *args, price_per_chunk, list(parents), contributors, shares
        )
        return self._published_id(receipt)

    def publish_version(
        self, account: LocalAccount, previous: int, cid: Cid, price: int, price_per_chunk: int = 0
    ) -> int:
        receipt = self._send(
            account, "publishVersion", previous, cid.binary, price, price_per_chunk
        )
        return self._published_id(receipt)

    def award_shares(
        self, account: LocalAccount, dataset_id: int, contributor: str, shares: int
    ) -> TxReceipt:
        if shares <= 0:
            raise DatasetInputError("awarded shares must be positive")
        return self._send(account, "awardShares", dataset_id, to_address(contributor), shares)

    def _published_id(self, receipt: TxReceipt) -> int:
        events = self.contract.events.DatasetPublished().process_receipt(receipt)
        return int(events[0]["args"]["datasetId"])

    # ---- reads ---------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._call("datasetCount"))

    def dataset(self, dataset_id: int) -> DatasetEntry:
        if not 1 <= dataset_id <= self.count():
            raise UnknownDataset(f"no dataset {dataset_id} in the registry")
        raw = self._call("getDataset", dataset_id)
        return DatasetEntry(dataset_id, Cid.from_binary(bytes(raw[0])), *raw[1:])

    def id_of(self, cid: Cid) -> int | None:
        found = int(self._call("idOf", cid.binary))
        return found or None

    def by_cid(self, cid: Cid) -> DatasetEntry:
        found = self.id_of(cid) or self.id_of(cid.to_v1())
        if found is None:
            raise UnknownDataset(f"dataset {cid} is not in the registry")
        return self.dataset(found)

    def parents(self, dataset_id: int) -> list[int]:
        return [int(p) for p in self._call("parentsOf", dataset_id)]

    def latest(self, first_version: int) -> int:
        return int(self._call("latestVersion", first_version))

    def licence(self, licence_id: int) -> OnchainLicence:
        if not 1 <= licence_id <= int(self._call("licenceCount")):
            raise LicenceError(f"licence {licence_id} is not in the registry")
        raw = self._call("getLicence", licence_id)
        name, commercial, derivatives, attribution, terms = raw
        return OnchainLicence(licence_id, name, commercial, derivatives, attribution, bytes(terms))

    def splitter(self, dataset_id: int) -> Contract:
        address = self.dataset(dataset_id).splitter
        return self.chain.contract(address, compile_contract("RevenueSplitter").abi)
