"""The contract-author skill an agent sells: a request becomes a checked, simulated contract
with a signed receipt binding the record, sources, build, report and parameters; the buyer's
check catches any edit of the delivery; bad requests are refused before any receipt."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from authoring_helpers import World, make_world

from agentbazaar.agents.contracts import (
    ContractAuthorSkill,
    ContractRequest,
    SaleTerms,
    check_contract_delivery,
)
from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.receipts import ContractReceipt, SignedReceipt
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.skills import Payment
from agentbazaar.authoring import RecordStore
from agentbazaar.chain.sources import SourceBundle, build
from agentbazaar.errors import InputError, NeedsClarification, NoTemplate
from agentbazaar.primitives import parse_address

SENTENCE = "vest 1,000 USDC to bob over 12 months with a 3 month cliff"
PRICE = 250_000  # 0.25 USDC


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("skill"))


@pytest.fixture(scope="module")
def seller(world: World, tmp_path_factory: pytest.TempPathFactory) -> Agent:
    network = Network(world.chain, cast(Any, None), world.usdc)  # no registry is touched
    return Agent("author", world.wallet, network, agent_id=7,
                 data_dir=Path(tmp_path_factory.mktemp("seller")))  # fmt: skip


def _request(world: World, sentence: str = SENTENCE) -> dict[str, Any]:
    return {"sentence": sentence, "deployer": world.wallet.address,  # alice, who holds USDC
            "names": {"bob": world.address("bob")}}  # fmt: skip


def test_a_sold_contract_is_delivered_checked_and_receipted(world: World, seller: Agent) -> None:
    skill = ContractAuthorSkill(PRICE, examples=3)
    price, units, _ = skill.quote(_request(world))
    assert (price, units) == (PRICE, 1)
    out = skill.perform(seller, _request(world), Payment("0x" + "11" * 32, world.address("carol"),
                                                         PRICE))  # fmt: skip
    assert out["template"] == "vesting" and out["passed"] is True, out["report"]
    values = out["params"]["values"]
    assert values["beneficiary"] == world.address("bob") and values["amount"] == "1000000000"
    assert {c["result"] for c in out["report"]["checks"]} == {"pass"}
    assert out["report"]["simulation"] and all(s["ok"] for s in out["report"]["simulation"])
    signed = SignedReceipt.from_json(out["receipt"])
    r = check_contract_delivery(signed, out, provider=seller.address, chain_id=world.chain.chain_id)
    assert isinstance(r, ContractReceipt) and r.price == PRICE and r.model_id == "deterministic"
    stored = seller.receipts.query(receipt_id=signed.id)
    assert [s.role for s in stored] == ["issued"] and json.loads(stored[0].output) == {
        k: v for k, v in out.items() if k != "receipt"
    }
    # the delivered record rebuilds to the delivered build (what `contract verify` relies on)
    assert RecordStore(world.home / "buyer").put(out["record"]) == out["source_id"]
    rebuilt = build(SourceBundle.from_json(out["record"]["bundle"]))
    assert rebuilt.runtime.hex() == out["build"]["runtime"]

    for part, key in [("record", "constructor_args"), ("build", "runtime"),
                      ("report", "checks"), ("params", "values")]:  # fmt: skip
        edited = copy.deepcopy(out)
        edited[part][key] = "tampered"
        with pytest.raises(BadReceipt):
            check_contract_delivery(signed, edited, provider=seller.address,
                                    chain_id=world.chain.chain_id)  # fmt: skip
    with pytest.raises(BadReceipt, match="signed"):
        check_contract_delivery(signed, out, provider=world.address("bob"),
                                chain_id=world.chain.chain_id)  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("vest 5 USDC", InputError),
        ({"sentence": SENTENCE, "deployer": "0x12"}, InputError),
        ({"sentence": SENTENCE, "deployer": "0x" + "ab" * 20, "names": {"bob": 5}}, InputError),
    ],
)
def test_malformed_requests_are_refused_at_the_quote(payload: object, error: type) -> None:
    with pytest.raises(error):
        ContractAuthorSkill(PRICE).quote(payload)


@pytest.mark.parametrize(
    ("sentence", "error"),
    [
        ("lend 100 USDC to bob at 5% interest", NoTemplate),
        ("vest 1,000 USDC to zed over 12 months", InputError),  # zed is not in the names
        ("vest 1,000 USDC over 12 months", NeedsClarification),
    ],
)
def test_what_no_template_covers_is_refused_before_any_receipt(
    world: World, seller: Agent, sentence: str, error: type
) -> None:
    before = len(seller.receipts.query())
    with pytest.raises(error):
        ContractAuthorSkill(PRICE, examples=3).perform(
            seller, _request(world, sentence), Payment("0x" + "22" * 32, world.address("carol"), 1)
        )
    assert len(seller.receipts.query()) == before


def test_the_buyer_checks_the_sale_terms_of_a_contract_receipt(world: World, seller: Agent) -> None:
    nonce = "0x" + "33" * 32
    request = _request(world)
    out = ContractAuthorSkill(PRICE, examples=3).perform(
        seller, request, Payment(nonce, world.address("carol"), PRICE)
    )
    signed = SignedReceipt.from_json(out["receipt"])
    asset = world.usdc.address or ""
    terms = SaleTerms(request, 7, asset, PRICE, PRICE, nonce)

    def check(delivery: dict[str, Any], t: SaleTerms) -> ContractReceipt:
        return check_contract_delivery(signed, delivery, provider=seller.address,
                                       chain_id=world.chain.chain_id, terms=t)  # fmt: skip

    assert check(out, terms).payment_ref == nonce
    for field, changed in [
        ("provider_agent_id", replace(terms, provider_agent_id=8)),
        ("input_hash", replace(terms, request=_request(world, SENTENCE + " please"))),
        ("asset", replace(terms, asset="0x" + "ab" * 20)),
        ("price", replace(terms, max_price=PRICE - 1)),
        ("price", replace(terms, price=PRICE + 1)),
        ("payment_ref", replace(terms, payment_ref="0x" + "44" * 32)),
    ]:
        with pytest.raises(BadReceipt) as caught:
            check(out, changed)
        assert caught.value.fields["field"] == field
    with pytest.raises(BadReceipt, match="no build"):
        check({k: v for k, v in out.items() if k != "build"}, terms)


def test_a_request_carries_only_the_names_its_sentence_uses() -> None:
    bob, carol, me = ("0x" + c * 40 for c in "bcd")
    r = ContractRequest.for_sentence("pay 5 USDC to Bob.", me, [("bob", bob), ("carol", carol)])
    assert r.names == {"bob": parse_address(bob)} and r.deployer == parse_address(me)
