"""The dataset registry through the Python client on the embedded chain, and licence acceptance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.data.cid import cid_of_bytes
from agentbazaar.data.errors import DatasetInputError, LicenceNotAccepted, UnknownDataset
from agentbazaar.data.licences import (
    TEMPLATES,
    SignedAcceptance,
    licence_id,
    sign_acceptance,
    template,
    verify_acceptance,
)
from agentbazaar.errors import DataError, TransactionReverted
from conftest import DataWorld


def test_suite_adds_the_licence_templates(data_world: DataWorld) -> None:
    for number, tpl in enumerate(TEMPLATES, start=1):
        on_chain = data_world.registry.licence(number)
        assert on_chain.terms_hash == tpl.terms_hash
        assert (on_chain.commercial, on_chain.derivatives, on_chain.attribution) == (
            tpl.commercial,
            tpl.derivatives,
            tpl.attribution,
        )
    with pytest.raises(DataError):
        data_world.registry.licence(len(TEMPLATES) + 1)


def test_publish_read_back_and_pay_contributors(data_world: DataWorld) -> None:
    w = data_world
    alice, bob = Account.create().address, Account.create().address
    cid = cid_of_bytes(os.urandom(64))
    dataset_id = w.registry.publish(
        w.publisher,
        cid=cid,
        agent_id=w.agent_id,
        licence=licence_id("open"),
        token=w.usdc.address,
        price=500_000,
        royalty_bps=250,
        contributors=[alice, bob],
        shares=[6_000, 4_000],
    )
    entry = w.registry.by_cid(cid)
    assert entry.id == dataset_id and entry.publisher == w.publisher.address
    assert (entry.price, entry.royalty_bps, entry.version) == (500_000, 250, 1)
    w.mint(entry.splitter, 1_000_001)
    splitter = w.registry.splitter(dataset_id)
    w.chain.transact(dev_account(0), splitter.functions.release(alice))
    assert w.balance(alice) == 600_000
    child = w.registry.publish(
        w.publisher,
        cid=cid_of_bytes(os.urandom(64)),
        agent_id=w.agent_id,
        licence=1,
        token=w.usdc.address,
        price=1,
        parents=[dataset_id],
    )
    assert w.registry.parents(child) == [dataset_id]


def test_bad_terms_are_refused_before_signing(data_world: DataWorld) -> None:
    w = data_world
    nonce = w.chain.w3.eth.get_transaction_count(w.publisher.address)
    common = {
        "cid": cid_of_bytes(os.urandom(8)),
        "agent_id": w.agent_id,
        "licence": 1,
        "token": w.usdc.address,
        "price": 1,
    }
    with pytest.raises(DatasetInputError, match="sum to 10000"):
        w.registry.publish(
            w.publisher,
            **common,
            contributors=[w.publisher.address, dev_account(5).address],
            shares=[5_000, 4_000],
        )
    with pytest.raises(DatasetInputError, match="above 100%"):
        w.registry.publish(w.publisher, **common, royalty_bps=10_001)
    with pytest.raises(DataError):
        w.registry.publish(w.publisher, **{**common, "licence": 99})
    assert w.chain.w3.eth.get_transaction_count(w.publisher.address) == nonce
    with pytest.raises(TransactionReverted, match="parent does not exist"):
        w.registry.publish(w.publisher, **common, parents=[10_000])
    with pytest.raises(UnknownDataset):
        w.registry.by_cid(cid_of_bytes(b"never published"))


# ---- licence acceptance ----------------------------------------------------------------------
CID = str(cid_of_bytes(b"a dataset"))
ASSET = "0x" + "ab" * 20
REGISTRY = "0x" + "cd" * 20


def _terms(**over: object) -> dict[str, object]:
    return {
        "dataset_cid": CID,
        "licence": 2,
        "asset": ASSET,
        "price": 700_000,
        "chain_id": 31337,
        "registry": REGISTRY,
        **over,
    }


def test_acceptance_round_trips_and_names_the_buyer() -> None:
    buyer = Account.create()
    signed = sign_acceptance(buyer, **_terms())  # type: ignore[arg-type]
    again = SignedAcceptance.from_dict(signed.to_dict())
    assert verify_acceptance(again, **_terms(), buyer=buyer.address) == buyer.address  # type: ignore[arg-type]
    assert again.acceptance.terms_hash == "0x" + template("non-commercial").terms_hash.hex()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dataset_cid": str(cid_of_bytes(b"another"))}, "dataset_cid"),
        ({"licence": 1}, "licence_id"),
        ({"price": 699_999}, "price"),
        ({"asset": "0x" + "ef" * 20}, "asset"),
        ({"chain_id": 1}, "chain_id"),
        ({"registry": "0x" + "12" * 20}, "registry"),
    ],
)
def test_acceptance_of_other_terms_is_refused(change: dict[str, object], field: str) -> None:
    signed = sign_acceptance(Account.create(), **_terms())  # type: ignore[arg-type]
    with pytest.raises(LicenceNotAccepted) as err:
        verify_acceptance(signed, **_terms(**change))  # type: ignore[arg-type]
    assert err.value.fields["field"] == field


def test_forged_or_foreign_acceptances_are_refused() -> None:
    buyer, other = Account.create(), Account.create()
    signed = sign_acceptance(buyer, **_terms())  # type: ignore[arg-type]
    data = signed.to_dict()
    data["buyer"] = other.address  # claims another buyer: the signature no longer matches it
    with pytest.raises(LicenceNotAccepted, match="not signed by its buyer"):
        verify_acceptance(SignedAcceptance.from_dict(data), **_terms())  # type: ignore[arg-type]
    with pytest.raises(LicenceNotAccepted, match="another buyer"):
        verify_acceptance(signed, **_terms(), buyer=other.address)  # type: ignore[arg-type]
    data = signed.to_dict()
    data["signature"] = "0x1234"
    with pytest.raises(LicenceNotAccepted, match="malformed"):
        verify_acceptance(SignedAcceptance.from_dict(data), **_terms())  # type: ignore[arg-type]
    with pytest.raises(LicenceNotAccepted, match="malformed"):
        SignedAcceptance.from_dict({"buyer": "nobody"})


def test_unknown_licences_are_refused() -> None:
    with pytest.raises(DataError, match="unknown licence"):
        licence_id("all-rights-reserved")
    with pytest.raises(DataError, match="unknown licence"):
        licence_id(0)
    assert licence_id("open") == 1 and licence_id("4") == 4


def test_suite_step_rebinds_the_registry_and_adds_licences_once(tmp_path: Path) -> None:
    from agentbazaar.chain import Chain
    from agentbazaar.chain.compiler import default_cache_dir
    from agentbazaar.chain.deploy import deploy_contract
    from agentbazaar.config import load_config
    from agentbazaar.deployment import deploy_suite

    (tmp_path / "artifacts").symlink_to(default_cache_dir(), target_is_directory=True)
    chain, cfg = Chain.embedded(), load_config(tmp_path, env={})
    first = deploy_suite(chain, cfg)
    registry = first.contracts["DatasetRegistry"]
    deploy_contract(  # a new identity registry, as after a change of its source
        chain, first.deployer, first.manifest, "IdentityRegistry", "IdentityRegistry",
        ("agentbazaar Agent", "AGENT"), artifacts_dir=cfg.artifacts_dir, force=True,
    )  # fmt: skip
    again = deploy_suite(chain, cfg, manifest=first.manifest)
    moved = again.contracts["DatasetRegistry"]
    assert again.statuses["DatasetRegistry"] == "changed" and moved.address != registry.address
    identity = again.contracts["IdentityRegistry"].address
    assert chain.call(moved.functions.identity()) == identity
    assert chain.call(moved.functions.licenceCount()) == len(TEMPLATES)
    third = deploy_suite(chain, cfg, manifest=first.manifest)
    assert third.contracts["DatasetRegistry"].address == moved.address
    assert chain.call(moved.functions.licenceCount()) == len(TEMPLATES)
