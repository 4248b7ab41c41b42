"""Lineage from a signed inference receipt to datasets, licences, contributors and payments."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from agentbazaar.agents.receipts import Receipt, sign_receipt
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.data.cid import cid_of_bytes
from agentbazaar.data.lineage import Citation, LineageStore, cite, verify_citation, walk
from agentbazaar.errors import DataError
from conftest import DataWorld


def _receipt_id(provider: Account, chain_id: int) -> str:
    receipt = Receipt(
        provider_agent_id=1, provider=provider.address, model_id="sentence-transformers/all-MiniLM-L6-v2",
        weights_hash="0x" + "11" * 32, input_hash="0x" + "22" * 32, output_hash="0x" + "33" * 32,
        asset="0x" + "44" * 20, price=1_000, payment_ref="0x" + "55" * 32, timestamp=1_700_000_000,
    )  # fmt: skip
    return sign_receipt(provider, receipt, chain_id).id


def test_walk_from_a_receipt_to_datasets_contributors_and_payments(data_world: DataWorld) -> None:
    w = data_world
    alice, bob, carol = (Account.create().address for _ in range(3))
    root_cid, child_cid = cid_of_bytes(os.urandom(40)), cid_of_bytes(os.urandom(40))
    root = w.registry.publish(
        w.publisher, cid=root_cid, agent_id=w.agent_id, licence=1, token=w.usdc.address,
        price=10_000, royalty_bps=1_000, contributors=[alice, bob], shares=[5_000, 5_000],
    )  # fmt: skip
    child = w.registry.publish(
        w.publisher, cid=child_cid, agent_id=w.agent_id, licence=2, token=w.usdc.address,
        price=20_000, parents=[root], contributors=[carol],
    )  # fmt: skip
    buyer = dev_account(6)
    w.mint(buyer.address, 20_000)
    child_splitter = w.registry.dataset(child).splitter
    w.chain.fund_native(buyer.address, 10**18)
    w.chain.transact(buyer, w.usdc.functions.transfer(child_splitter, 20_000))  # a sale
    w.chain.transact(dev_account(0), w.registry.splitter(child).functions.release(carol))

    provider = Account.create()
    receipt_id = _receipt_id(provider, w.chain.chain_id)
    store = LineageStore(None)
    store.add(cite(provider, receipt_id, [str(child_cid)], w.chain.chain_id))

    report = walk(receipt_id, w.registry, w.usdc, store)
    assert report["citation"]["signer"] == provider.address
    by_id = {d["id"]: d for d in report["datasets"]}
    assert set(by_id) == {root, child}
    assert by_id[child]["parents"] == [root]
    assert by_id[child]["licence"]["key"] == "non-commercial"
    assert by_id[root]["licence"]["commercialUse"] is True
    assert by_id[child]["contributors"] == [{"address": carol, "shares": 10_000}]
    assert {c["address"] for c in by_id[root]["contributors"]} == {alice, bob}
    payments = by_id[child]["payments"]
    assert [(p["sender"], p["value"]) for p in payments["received"]] == [(buyer.address, "20000")]
    assert [(p["upstream"], p["amount"]) for p in payments["royalties_paid"]] == [
        (by_id[root]["splitter"], "2000")
    ]
    assert [(p["payee"], p["amount"]) for p in payments["released"]] == [(carol, "18000")]
    assert [p["value"] for p in by_id[root]["payments"]["received"]] == ["2000"]

    from_cid = walk(str(root_cid), w.registry, w.usdc)
    assert [d["id"] for d in from_cid["datasets"]] == [root]


def test_citations_are_checked(data_world: DataWorld) -> None:
    provider, other = Account.create(), Account.create()
    receipt_id = "0x" + "ab" * 32
    citation = cite(provider, receipt_id, [str(cid_of_bytes(b"x"))], 31337)
    assert verify_citation(citation) == provider.address
    forged = Citation(citation.receipt_id, citation.cids, other.address, citation.signature, 31337)
    with pytest.raises(DataError, match="not signed by its signer"):
        verify_citation(forged)
    moved = Citation(
        citation.receipt_id, (str(cid_of_bytes(b"y")),), provider.address, citation.signature, 31337
    )
    with pytest.raises(DataError):
        verify_citation(moved)
    with pytest.raises(DataError, match="at least one"):
        cite(provider, receipt_id, [], 31337)
    with pytest.raises(DataError, match="no dataset citation"):
        walk("0x" + "cd" * 32, data_world.registry, data_world.usdc, LineageStore(None))
    with pytest.raises(DataError, match="not in the registry"):
        walk(str(cid_of_bytes(b"unpublished")), data_world.registry, data_world.usdc)
