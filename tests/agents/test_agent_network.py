"""End to end on loopback: providers, a validator and buyers as real HTTP services on the
embedded chain, paying with x402, checking receipts, building (and losing) reputation.

The tests of this module share one network and run in order: providers registered by an earlier
test stay discoverable by the later ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from agents_world import World

from agentbazaar.agents.assistant import Assistant, AssistantAgent
from agentbazaar.agents.errors import BadReceipt, NoProvider
from agentbazaar.agents.hiring import Buyer
from agentbazaar.agents.protocol import VALIDATION_TAG
from agentbazaar.agents.provision import usdc_balance
from agentbazaar.agents.receipts import matrix_from_json, output_hash
from agentbazaar.agents.runtime import Agent
from agentbazaar.agents.skills import EmbeddingSkill, Payment
from agentbazaar.agents.validator import Validator
from agentbazaar.errors import InputError, PolicyViolation
from agentbazaar.identity.cards import from_data_uri, parse_card
from agentbazaar.payments import PaymentDeclined

pytestmark = pytest.mark.inference

TEXTS = ["the cat sat on the mat", "stablecoins settle in seconds", "a quiet harbour at dawn"]


class TamperingSkill(EmbeddingSkill):
    """Signs an honest receipt, then changes the vectors it sends (caught by the buyer)."""

    def perform(self, agent: Agent, payload: Any, payment: Payment) -> dict[str, Any]:
        answer = super().perform(agent, payload, payment)
        answer["embeddings"][0][0] += 0.5
        return answer


@pytest.fixture(scope="module")
def honest(world: World, validator: Validator) -> Agent:
    return world.provider("honest", 2_000, validator=validator.agent.address)


def test_agent_registers_serves_a_signed_card_and_is_discoverable(
    world: World, honest: Agent, validator: Validator
) -> None:
    ident = world.net.registries.identity
    assert honest.agent_id is not None
    assert ident.get_agent_wallet(honest.agent_id) == honest.address
    registration = json.loads(from_data_uri(ident.agent_uri(honest.agent_id)))
    assert registration["services"][0]["endpoint"] == f"{honest.url}/.well-known/agent-card.json"
    card_json = httpx.get(f"{honest.url}/.well-known/agent-card.json").json()
    card = parse_card(card_json)  # verifies the signature
    assert card.wallet == honest.address
    assert card.skills[0].id == "embed" and card.skills[0].prices[0].units == 2_000
    assert httpx.get(f"{honest.url}/healthz").json()["agentId"] == honest.agent_id
    buyer = world.buyer("reader", [validator.agent.address], usdc=0)
    (offer,) = [o for o in buyer.offers("embed") if o.agent_id == honest.agent_id]
    assert offer.base_url == honest.url and offer.unit_price == 2_000
    buyer.close()


def test_validator_catches_the_dishonest_provider_and_the_buyer_switches(
    world: World, honest: Agent, validator: Validator
) -> None:
    cheat = world.provider("cheat", 1_000, mode="perturbed", validator=validator.agent.address)
    buyer = world.buyer("buyer-1", [validator.agent.address])
    before = usdc_balance(world.net, buyer.agent.address)

    first = buyer.hire("embed", {"texts": TEXTS}, 10_000)
    assert first.provider.agent_id == cheat.agent_id  # the cheaper one, before any verdict
    (verdict,) = validator.process_pending()
    assert verdict.provider_agent_id == cheat.agent_id and verdict.score == 0
    status = world.net.registries.validation.status(first.receipt.id)
    assert status.response == 0 and status.tag == VALIDATION_TAG

    second = buyer.hire("embed", {"texts": TEXTS}, 10_000)
    assert second.provider.agent_id == honest.agent_id
    assert {"provider": "cheat", "reason": "failed validation"} in second.skipped
    (verdict,) = validator.process_pending()
    assert verdict.score == 100 and verdict.max_abs_diff <= 1e-4

    # money: exactly the two prices moved, to the two providers
    assert usdc_balance(world.net, buyer.agent.address) == before - first.price - second.price
    assert usdc_balance(world.net, cheat.address) == first.price
    assert first.price == -(-first.units * 1_000 // 1000)
    # receipts are stored by both sides, and the honest output is the model's
    (issued,) = honest.receipts.query(role="issued")
    received = buyer.agent.receipts.query(role="received", provider_agent_id=honest.agent_id)
    assert issued.signed == received[0].signed and received[0].tx_hash == second.tx_hash
    assert output_hash(world.model.embed(TEXTS).vectors) == second.receipt.receipt.output_hash
    # paid-only feedback on chain, and the reputation the next buyer sees
    fb = world.net.registries.reputation.read_feedback(honest.agent_id, buyer.agent.address, 1)
    assert fb.value == 100 and fb.tag1 == "embed"
    offers = {o.name: o for o in buyer.offers("embed")}
    assert offers["cheat"].avoided and offers["cheat"].validation_avg == 0
    assert not offers["honest"].avoided and offers["honest"].rep_count == 1
    buyer.close()


def test_bad_receipt_is_recorded_against_the_provider_then_it_goes_offline(
    world: World, honest: Agent, validator: Validator
) -> None:
    liar = world.agent(
        "liar",
        skills=[TamperingSkill(world.model, 500)],
        validator=validator.agent.address,
    )
    buyer = world.buyer("buyer-2", [validator.agent.address])
    before = usdc_balance(world.net, buyer.agent.address)
    with pytest.raises(BadReceipt, match="output_hash"):
        buyer.hire("embed", {"texts": TEXTS}, 10_000)
    paid = before - usdc_balance(world.net, buyer.agent.address)
    assert paid > 0  # it paid before it could see the lie: the failure is on record
    (rejected,) = buyer.agent.receipts.query(role="received")
    assert rejected.status == "rejected" and "output_hash" in (rejected.note or "")
    fb = world.net.registries.reputation.read_feedback(liar.agent_id or 0, buyer.agent.address, 1)
    assert fb.value == 0 and fb.tag2 == "bad-receipt"

    again = buyer.hire("embed", {"texts": TEXTS}, 10_000)
    assert again.provider.agent_id == honest.agent_id
    assert any(s["provider"] == "liar" for s in again.skipped)

    liar.stop()  # offline: buyers skip it, and its evidence is gone
    other = world.buyer("buyer-3", [validator.agent.address])
    hired = other.hire("embed", {"texts": TEXTS[:1]}, 10_000)
    assert hired.provider.agent_id == honest.agent_id
    assert any(s["provider"] == "liar" and "offline" in s["reason"] for s in hired.skipped)
    verdicts = {v.provider_agent_id: v for v in validator.process_pending()}
    assert verdicts[liar.agent_id or 0].score == 0
    assert "evidence" in verdicts[liar.agent_id or 0].reason
    buyer.close()
    other.close()


def test_price_above_the_maximum_pays_nothing(world: World, validator: Validator) -> None:
    buyer = world.buyer("buyer-4", [validator.agent.address])
    before = usdc_balance(world.net, buyer.agent.address)
    with pytest.raises(NoProvider):
        buyer.hire("embed", {"texts": TEXTS}, 1)
    with pytest.raises(NoProvider):
        buyer.hire("translate", {"texts": TEXTS}, 10_000)  # unknown skill
    assert usdc_balance(world.net, buyer.agent.address) == before
    assert buyer.agent.wallet.ledger.records("buyer-4") == []
    buyer.close()


def test_spending_policy_refuses_before_signing(world: World, validator: Validator) -> None:
    buyer = world.buyer("buyer-5", [validator.agent.address], max_per_payment=1)
    before = usdc_balance(world.net, buyer.agent.address)
    with pytest.raises(PolicyViolation):
        buyer.hire("embed", {"texts": TEXTS}, 10_000)
    assert usdc_balance(world.net, buyer.agent.address) == before
    records = buyer.agent.wallet.ledger.records("buyer-5")
    assert all(r.status == "failed" for r in records) and not any(r.payload for r in records)
    buyer.close()


@pytest.mark.parametrize(
    "payload",
    [{"texts": ["x"] * 300}, {"texts": ["word " * 400]}, {"texts": []}, {"text": "a"}, [1]],
)
def test_bad_input_is_refused_by_every_provider_and_nothing_is_paid(
    world: World, validator: Validator, payload: Any
) -> None:
    buyer = Buyer(world.agents[0], validators=[validator.agent.address])  # no funds needed
    with pytest.raises(InputError):
        buyer.hire("embed", payload, 10_000)
    buyer.close()


def test_http_bad_input_gets_4xx_json_never_500(honest: Agent) -> None:
    url = honest.url
    with httpx.Client() as http:
        r = http.post(f"{url}/skills/nope/quote", json={"texts": TEXTS})
        assert r.status_code == 400 and "unknown skill" in r.json()["message"]
        r = http.post(f"{url}/skills/embed/quote", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"] == "InputError"
        r = http.post(f"{url}/skills/embed/quote", json={"texts": ["x"] * 300})
        assert r.status_code == 400 and r.json()["error"] == "InputTooLarge"
        r = http.post(f"{url}/skills/embed", json={"texts": TEXTS})
        assert r.status_code == 400 and r.json()["error"] == "unknown_quote"
        quote = http.post(f"{url}/skills/embed/quote", json={"texts": TEXTS}).json()
        r = http.post(f"{url}/skills/embed?quote={quote['quote']}", json={"texts": TEXTS})
        assert r.status_code == 402 and "payment-required" in {k.lower() for k in r.headers}
        # the payments guard's answers, now that the agents' skills sit behind its paywall
        paid = f"{url}/skills/embed?quote={quote['quote']}"
        for headers, reason in (
            ({"PAYMENT-SIGNATURE": "garbage"}, "invalid_payment_header"),
            ({"PAYMENT-SIGNATURE": "A" * 10_000}, "payment_header_too_large"),
            ({"X-PAYMENT": "e30="}, "x402_v1_not_supported"),
        ):
            r = http.post(paid, json={"texts": TEXTS}, headers=headers)
            assert r.status_code == 402 and r.json()["error"] == reason, r.text
        r = http.get(f"{url}/evidence/0x1234")
        assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"nope", -32700),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "message/send"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/cancel"}', -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}}', -32602),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"parts":'
            b'[{"kind":"data","data":{"skill":"nope","input":{}}}]}}}',
            -32602,
        ),
    ],
)
def test_malformed_tasks_get_jsonrpc_errors(honest: Agent, body: bytes, code: int) -> None:
    r = httpx.post(f"{honest.url}/a2a", content=body)
    assert r.status_code == 200 and r.json()["error"]["code"] == code


def test_message_send_answers_a_task_that_asks_for_payment(honest: Agent) -> None:
    params = {
        "message": {
            "parts": [{"kind": "data", "data": {"skill": "embed", "input": {"texts": TEXTS}}}]
        }
    }
    r = httpx.post(
        f"{honest.url}/a2a",
        json={"jsonrpc": "2.0", "id": 7, "method": "message/send", "params": params},
    )
    result = r.json()["result"]
    assert result["status"]["state"] == "input-required"
    message = result["status"]["message"]
    assert message["metadata"]["x402.payment.status"] == "payment-required"
    (req,) = message["metadata"]["x402.payment.required"]["accepts"]
    quote = message["parts"][1]["data"]
    assert int(req["amount"]) == int(quote["price"]) == -(-quote["units"] * 2_000 // 1000)
    assert req["payTo"] == honest.address


def test_assistant_takes_a_task_in_words_over_a2a(
    world: World, honest: Agent, validator: Validator
) -> None:
    agent = world.agent("assistant", usdc=100_000, cls=AssistantAgent)
    assert isinstance(agent, AssistantAgent)
    buyer = Buyer(agent, validators=[validator.agent.address])
    agent.assistant = Assistant(agent, buyer, batch=4)
    sentences = [f"sentence {i} about the sea" for i in range(10)]
    params = {
        "message": {
            "parts": [
                {"kind": "text", "text": "embed these 10 sentences, spend at most 0.01 USDC"},
                {"kind": "data", "data": {"texts": sentences}},
            ]
        }
    }
    r = httpx.post(
        f"{agent.url}/a2a",
        json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": params},
        timeout=120,
    )
    result = r.json()["result"]
    assert result["status"]["state"] == "completed"
    report = result["artifacts"][0]["parts"][0]["data"]
    assert report["embedded"] == 10 and len(report["purchases"]) == 3
    assert {p["provider"] for p in report["purchases"]} == {"honest"}
    assert int(report["spent"]) == 100_000 - usdc_balance(world.net, agent.address)
    vectors = [
        matrix_from_json(json.loads(json.dumps(h.output.tolist())))
        for h in agent.assistant.reports[0].hires
    ]
    assert np.allclose(np.concatenate(vectors), world.model.embed(sentences).vectors, atol=1e-4)
    validator.process_pending()
    buyer.close()


def test_concurrent_purchases_by_one_buyer_each_pay_exactly_once(
    world: World, honest: Agent, validator: Validator
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    buyer = world.buyer("buyer-6", [validator.agent.address])
    before = usdc_balance(world.net, buyer.agent.address)
    honest_before = usdc_balance(world.net, honest.address)
    batches = [[f"parallel {i} line {j}" for j in range(4)] for i in range(6)]
    with ThreadPoolExecutor(3) as pool:
        hires = list(pool.map(lambda t: buyer.hire("embed", {"texts": t}, 10_000), batches))
    assert {h.provider.agent_id for h in hires} == {honest.agent_id}
    assert len({h.tx_hash for h in hires}) == len({h.nonce for h in hires}) == 6
    spent = sum(h.price for h in hires)
    assert before - usdc_balance(world.net, buyer.agent.address) == spent
    assert usdc_balance(world.net, honest.address) - honest_before == spent
    settled = buyer.agent.wallet.ledger.records("buyer-6", statuses=("settled",))
    assert sorted(r.amount for r in settled) == sorted(h.price for h in hires)
    assert len(buyer.agent.receipts.query(role="received")) == 6
    validator.process_pending()
    buyer.close()


class GreedyAgent(Agent):
    """Quotes one price and asks ten times more at payment time."""

    def _price_for(self, skill_id: str) -> Callable[[str | None], int | None]:
        honest_price = super()._price_for(skill_id)

        def price(quote_id: str | None) -> int | None:
            quoted = honest_price(quote_id)
            return None if quoted is None else quoted * 10

        return price


def test_a_provider_asking_more_than_it_quoted_is_refused_before_signing(
    world: World, validator: Validator
) -> None:
    greedy = world.agent("greedy", skills=[EmbeddingSkill(world.model, 100)], cls=GreedyAgent)
    buyer = world.buyer("buyer-7", [validator.agent.address])
    before = usdc_balance(world.net, buyer.agent.address)
    try:
        with pytest.raises(PolicyViolation, match=r"above the maximum"):
            buyer.hire("embed", {"texts": TEXTS}, 10_000)
        assert usdc_balance(world.net, buyer.agent.address) == before
        assert buyer.agent.wallet.ledger.records("buyer-7") == []  # nothing reserved or signed
    finally:
        greedy.stop()
        buyer.close()


class RedirectingAgent(Agent):
    """Asks buyers to pay some other address than its on-chain agent wallet."""

    def pay_to(self) -> str:
        return "0x000000000000000000000000000000000000dEaD"


def test_a_payee_other_than_the_agent_wallet_is_refused_before_signing(
    world: World, validator: Validator
) -> None:
    other = world.agent("redirect", skills=[EmbeddingSkill(world.model, 100)], cls=RedirectingAgent)
    buyer = world.buyer("buyer-8", [validator.agent.address])
    before = usdc_balance(world.net, buyer.agent.address)
    try:
        with pytest.raises(PaymentDeclined, match="not its wallet"):
            buyer.hire("embed", {"texts": TEXTS}, 10_000)
        assert usdc_balance(world.net, buyer.agent.address) == before
        assert buyer.agent.wallet.ledger.records("buyer-8") == []
    finally:
        other.stop()
        buyer.close()
