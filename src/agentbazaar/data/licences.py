"""Licence templates for datasets, and the buyer's signed acceptance of one.

Templates are machine-readable: commercial use yes/no, derivatives yes/no (a dataset that allows
them names the royalty in basis points that derived datasets pay it), attribution yes/no. Each
has the closest SPDX identifier for humans and a ``terms_hash``: keccak256 of the RFC 8785
canonical JSON of its terms, the hash the DatasetRegistry stores beside it. The on-chain licence
id of a template is its 1-based position in ``TEMPLATES`` (the suite adds them in that order).

A buyer accepts a dataset's licence before paying for it by signing EIP-712 typed data::

    LicenceAcceptance(bytes datasetCid,uint256 licenceId,bytes32 termsHash,address buyer,
                      address asset,uint256 price,uint64 acceptedAt)

under the domain ``{name: "agentbazaar DatasetLicence", version: "1", chainId,
verifyingContract: the DatasetRegistry}``. Accepting moves no money, so it is not a spend: it is
signed with the wallet's key the way agent cards and receipts are (``wallet.account_for_deploy()``,
the key for what is not a payment), never through ``Wallet.spend``. ``verify_acceptance`` checks
the signer and every field against what the seller expects; a mismatch raises
``LicenceNotAccepted`` naming the field.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from agentbazaar.data.cid import Cid
from agentbazaar.data.errors import LicenceError, LicenceNotAccepted
from agentbazaar.errors import AddressError
from agentbazaar.identity.cards import canonical_json
from agentbazaar.primitives import parse_address

DOMAIN_NAME = "agentbazaar DatasetLicence"
DOMAIN_VERSION = "1"
ACCEPTANCE_TYPES: dict[str, list[dict[str, str]]] = {
    "LicenceAcceptance": [
        {"name": "datasetCid", "type": "bytes"},
        {"name": "licenceId", "type": "uint256"},
        {"name": "termsHash", "type": "bytes32"},
        {"name": "buyer", "type": "address"},
        {"name": "asset", "type": "address"},
        {"name": "price", "type": "uint256"},
        {"name": "acceptedAt", "type": "uint64"},
    ]
}


@dataclass(frozen=True)
class LicenceTemplate:
    key: str
    name: str
    spdx: str
    commercial: bool
    derivatives: bool
    attribution: bool
    summary: str

    def terms(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "spdx": self.spdx,
            "commercialUse": self.commercial,
            "derivatives": self.derivatives,
            "attribution": self.attribution,
            "summary": self.summary,
        }

    @property
    def terms_hash(self) -> bytes:
        return bytes(keccak(canonical_json(self.terms())))


TEMPLATES: tuple[LicenceTemplate, ...] = (
    LicenceTemplate(
        "open",
        "Open with attribution",
        "CC-BY-4.0",
        True,
        True,
        True,
        "Any use, commercial included, and derived datasets (paying the royalty the dataset "
        "sets); credit the publisher and contributors.",
    ),
    LicenceTemplate(
        "non-commercial",
        "Non-commercial with attribution",
        "CC-BY-NC-4.0",
        False,
        True,
        True,
        "Research and personal use and derived datasets (paying the royalty), no commercial "
        "use; credit the publisher and contributors.",
    ),
    LicenceTemplate(
        "no-derivatives",
        "Use as is with attribution",
        "CC-BY-ND-4.0",
        True,
        False,
        True,
        "Any use of the data as published, commercial included; no derived datasets may be "
        "published; credit the publisher and contributors.",
    ),
    LicenceTemplate(
        "public-domain",
        "Public domain dedication",
        "CC0-1.0",
        True,
        True,
        False,
        "Any use without conditions; derived datasets pay the royalty the dataset sets.",
    ),
)


def licence_id(key_or_id: str | int) -> int:
    """The on-chain id (1-based) of a template given by key (``open``) or id."""
    if isinstance(key_or_id, int) or (isinstance(key_or_id, str) and key_or_id.isdigit()):
        number = int(key_or_id)
        if 1 <= number <= len(TEMPLATES):
            return number
    for number, template in enumerate(TEMPLATES, start=1):
        if template.key == key_or_id:
            return number
    known = ", ".join(t.key for t in TEMPLATES)
    raise LicenceError(f"unknown licence {key_or_id!r}: use one of {known}")


def template(key_or_id: str | int) -> LicenceTemplate:
    return TEMPLATES[licence_id(key_or_id) - 1]


# ---- acceptance ------------------------------------------------------------------------------
class MessageSigner(Protocol):
    @property
    def address(self) -> str: ...

    def sign_message(self, signable_message: SignableMessage) -> Any: ...


@dataclass(frozen=True)
class Acceptance:
    dataset_cid: str
    licence_id: int
    terms_hash: str
    buyer: str
    asset: str
    price: int
    accepted_at: int

    def message(self) -> dict[str, Any]:
        return {
            "datasetCid": Cid.parse(self.dataset_cid).binary,
            "licenceId": self.licence_id,
            "termsHash": HexBytes(self.terms_hash),
            "buyer": self.buyer,
            "asset": self.asset,
            "price": self.price,
            "acceptedAt": self.accepted_at,
        }


@dataclass(frozen=True)
class SignedAcceptance:
    acceptance: Acceptance
    signature: str
    chain_id: int
    registry: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.acceptance),
            "price": str(self.acceptance.price),
            "signature": self.signature,
            "chainId": self.chain_id,
            "registry": self.registry,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SignedAcceptance:
        try:
            acceptance = Acceptance(
                dataset_cid=str(data["dataset_cid"]),
                licence_id=int(data["licence_id"]),
                terms_hash=str(data["terms_hash"]),
                buyer=_address(data["buyer"], "buyer"),
                asset=_address(data["asset"], "asset"),
                price=int(str(data["price"])),
                accepted_at=int(data["accepted_at"]),
            )
            return cls(
                acceptance, str(data["signature"]), int(data["chainId"]), str(data["registry"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LicenceNotAccepted(f"malformed licence acceptance: {exc}") from exc


def _address(value: Any, what: str) -> str:
    try:
        return parse_address(value)
    except AddressError as exc:
        raise LicenceNotAccepted(f"licence acceptance: {what} is not an address") from exc


def _signable(acceptance: Acceptance, chain_id: int, registry: str) -> SignableMessage:
    return encode_typed_data(
        domain_data={
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": registry,
        },
        message_types=ACCEPTANCE_TYPES,
        message_data=acceptance.message(),
    )


def sign_acceptance(
    signer: MessageSigner,
    *,
    dataset_cid: str,
    licence: int,
    asset: str,
    price: int,
    chain_id: int,
    registry: str,
    accepted_at: int | None = None,
) -> SignedAcceptance:
    """The buyer's acceptance of template ``licence`` for ``dataset_cid`` at ``price``."""
    acceptance = Acceptance(
        dataset_cid=str(Cid.parse(dataset_cid)),
        licence_id=licence_id(licence),
        terms_hash="0x" + template(licence).terms_hash.hex(),
        buyer=_address(signer.address, "buyer"),
        asset=_address(asset, "asset"),
        price=price,
        accepted_at=int(time.time()) if accepted_at is None else accepted_at,
    )
    signed = signer.sign_message(_signable(acceptance, chain_id, registry))
    return SignedAcceptance(acceptance, "0x" + bytes(signed.signature).hex(), chain_id, registry)


def verify_acceptance(
    signed: SignedAcceptance,
    *,
    dataset_cid: str,
    licence: int,
    asset: str,
    price: int,
    chain_id: int,
    registry: str,
    buyer: str | None = None,
) -> str:
    """Check an acceptance against the sale; returns the buyer (the recovered signer)."""
    a = signed.acceptance
    expected = {
        "dataset_cid": (Cid.parse(a.dataset_cid), Cid.parse(dataset_cid)),
        "licence_id": (a.licence_id, licence_id(licence)),
        "terms_hash": (a.terms_hash.lower(), "0x" + template(licence).terms_hash.hex()),
        "asset": (a.asset.lower(), asset.lower()),
        "price": (a.price, price),
        "chain_id": (signed.chain_id, chain_id),
        "registry": (signed.registry.lower(), registry.lower()),
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise LicenceNotAccepted(f"the licence acceptance has another {name}", field=name)
    try:
        signer = str(
            Account.recover_message(
                _signable(a, signed.chain_id, signed.registry), signature=HexBytes(signed.signature)
            )
        )
    except Exception as exc:  # malformed signature bytes of any kind
        raise LicenceNotAccepted(f"licence acceptance signature is malformed: {exc}") from exc
    if signer.lower() != a.buyer.lower():
        raise LicenceNotAccepted("the licence acceptance is not signed by its buyer", field="buyer")
    if buyer is not None and signer.lower() != buyer.lower():
        raise LicenceNotAccepted("the licence was accepted by another buyer", field="buyer")
    return signer
