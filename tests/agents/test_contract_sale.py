"""The contract author sold over HTTP on a real anvil: a `kind = "contract-author"` agent served
as `bazaar serve` serves it (no embedding model loaded), a buyer agent hires "contract" with
x402 and checks the delivery as a contract (signature, terms, every hash); a seller that edits
its delivery after signing is refused and blocked with paid-only feedback 0; a sentence no
template covers is refused at the quote with nothing paid."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agentbazaar.agents.contracts import ContractAuthorSkill, ContractRequest
from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.hiring import Buyer
from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet, usdc_balance
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.skills import Payment
from agentbazaar.agents.spec import Running, load_served_spec, start_agent
from agentbazaar.authoring import RecordStore
from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.sources import SourceBundle, build
from agentbazaar.config import BazaarConfig, load_config
from agentbazaar.errors import InputError
from agentbazaar.wallet import KeyStore

pytestmark = pytest.mark.anvil
SENTENCE = "vest 1,000 USDC to bob over 12 months with a 3 month cliff"
PRICE = 250_000  # 0.25 USDC, as the agent file says
MAX = 500_000
PASSPHRASE = "test-passphrase"


@dataclass
class Sale:
    net: Network
    minter: Any
    cfg: BazaarConfig
    home: Path
    seller: Running
    buyer: Buyer
    bob: str
    started: list[Agent]

    def balance(self, address: str) -> int:
        return usdc_balance(self.net, address)

    def request(self, sentence: str = SENTENCE) -> dict[str, Any]:
        book = [("bob", self.bob), ("carol", Account.create().address)]
        return ContractRequest.for_sentence(sentence, self.buyer.agent.address, book).to_json()


@pytest.fixture(scope="module")
def sale(shared_anvil: AnvilNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sale]:
    home = tmp_path_factory.mktemp("contract-sale")
    chain = Chain.rpc(shared_anvil.running_url(), backend="local")
    cfg = load_config(home / "home", env={})
    net, minter = deploy_agent_network(chain, cfg)
    address = KeyStore(cfg.keystore_dir, scrypt_cost=2**10).create("author", PASSPHRASE)
    fund(net, minter, address, 0)
    spec_file = home / "author.toml"
    spec_file.write_text(
        '[agent]\nname = "author"\nkind = "contract-author"\nwallet = "author"\n'
        '[contracts]\nprice = "0.25"\nexamples = 3\n'
    )

    def no_model() -> Any:
        raise AssertionError("a contract author does not load the embedding model")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BAZAAR_PASSPHRASE", PASSPHRASE)
        mp.setattr("agentbazaar.models.embedding.shared_model", no_model)
        seller = start_agent(load_served_spec(spec_file), cfg, net)
    wallet = new_wallet("buyer", home / "wallets", net.token)
    fund(net, minter, wallet.address, 2_000 * 10**6)  # the deployer funds the vesting: 1,000
    me = Agent("buyer", wallet, net, data_dir=home / "buyer")
    me.start()
    s = Sale(net, minter, cfg, home, seller, Buyer(me), Account.create().address, [me])
    try:
        yield s
    finally:
        s.buyer.close()
        for agent in s.started:
            agent.stop()
        seller.stop()


def test_a_contract_is_bought_paid_once_checked_and_rebuilt(sale: Sale) -> None:
    seller = sale.seller.agent
    assert [s.id for s in seller.skills.values()] == ["contract"]
    buyer = sale.buyer.agent
    before = sale.balance(buyer.address), sale.balance(seller.address)
    hired = sale.buyer.hire("contract", sale.request(), MAX)
    assert hired.provider.agent_id == seller.agent_id and hired.price == PRICE
    assert (sale.balance(buyer.address), sale.balance(seller.address)) == (
        before[0] - PRICE,
        before[1] + PRICE,
    )
    out = hired.output
    assert isinstance(out, dict)
    assert out["template"] == "vesting" and out["passed"] is True, out["report"]
    assert out["params"]["values"]["beneficiary"] == sale.bob
    assert RecordStore(sale.home / "records").put(out["record"]) == out["source_id"]
    rebuilt = build(SourceBundle.from_json(out["record"]["bundle"]))
    assert rebuilt.runtime.hex() == out["build"]["runtime"]
    (kept,) = buyer.receipts.query(receipt_id=hired.receipt.id)
    assert kept.role == "received" and kept.status != "rejected" and kept.tx_hash == hired.tx_hash
    assert len(seller.receipts.query(role="issued")) == 1
    fb = sale.net.registries.reputation.read_feedback(seller.agent_id or 0, buyer.address, 1)
    assert (fb.value, fb.tag1, fb.tag2) == (100, "contract", "delivered")


class EditsAfterSigning(ContractAuthorSkill):
    """Signs the honest delivery, then ships another runtime."""

    def perform(self, agent: Agent, payload: Any, payment: Payment) -> dict[str, Any]:
        out = super().perform(agent, payload, payment)
        out["build"]["runtime"] = out["build"]["runtime"][:-2] + "00"
        return out


def test_a_delivery_edited_after_signing_is_refused_and_its_seller_blocked(sale: Sale) -> None:
    wallet = new_wallet("liar", sale.home / "wallets", sale.net.token)
    fund(sale.net, sale.minter, wallet.address, 0)
    liar = Agent("liar", wallet, sale.net, skills=[EditsAfterSigning(PRICE - 50_000, examples=3)],
                 data_dir=sale.home / "liar")  # fmt: skip
    sale.started.append(liar)
    liar.start()
    buyer = sale.buyer.agent
    before = sale.balance(liar.address)
    with pytest.raises(BadReceipt, match="build_hash"):
        sale.buyer.hire("contract", sale.request(), MAX)
    assert sale.balance(liar.address) - before == PRICE - 50_000  # paid, then caught
    assert liar.agent_id in sale.buyer.blocked
    (rejected,) = [r for r in buyer.receipts.query(role="received") if r.status == "rejected"]
    assert "build_hash" in (rejected.note or "")
    fb = sale.net.registries.reputation.read_feedback(liar.agent_id or 0, buyer.address, 1)
    assert (fb.value, fb.tag1, fb.tag2) == (0, "contract", "bad-receipt")
    offers = [o.name for o in sale.buyer.offers("contract")]
    assert "liar" in offers  # still listed, but this buyer will not quote it again


def test_a_sentence_no_template_covers_is_refused_at_the_quote(sale: Sale) -> None:
    seller = sale.seller.agent
    buyer = sale.buyer.agent
    before = sale.balance(buyer.address), sale.balance(seller.address)
    issued = len(seller.receipts.query(role="issued"))
    with pytest.raises(InputError, match="no contract template covers"):
        sale.buyer.hire("contract", sale.request("lend 100 USDC to bob at 5% interest"), MAX)
    assert (sale.balance(buyer.address), sale.balance(seller.address)) == before
    assert len(seller.receipts.query(role="issued")) == issued
