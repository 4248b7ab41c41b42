"""Generation sold per token on loopback: receipts, the OpenAI client, budgets, the catch.

Real models (the 0.5B for most cases; the 1.5B only to re-run the substitution case), a real
agent service on the embedded chain, the official ``openai`` client, the validator posting its
verdicts on the ValidationRegistry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from eth_account import Account

from agentbazaar.agents.comparison import compare_tokens
from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.generation import GenerationSkill
from agentbazaar.agents.pricing import TokenPrices
from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet
from agentbazaar.agents.receipts import (
    GenerationReceipt,
    SignedReceipt,
    check_generation,
    prompt_hash,
    sign_receipt,
    tokens_hash,
)
from agentbazaar.agents.rerun import GENERATION_TAG, Rerunner
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.store import ReceiptStore
from agentbazaar.agents.validator import Validator
from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.identity.cards import parse_card
from agentbazaar.models import ChatRequest, LanguageModel

PRICES = TokenPrices(input=3, output=20)
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Name one city as JSON."}]
PROMPT = {"messages": ASK, "response_format": None}


# ---- receipts (pure: no model, no chain) -----------------------------------------------------
def _receipt(account: Any, **changes: Any) -> GenerationReceipt:
    tokens = [515, 220, 151645]
    settings = {"max_tokens": 8, "temperature_e6": 0, "top_k": 40, "top_p_e6": 10**6,
                "min_p_e6": 0, "seed": 1, "threads": 1, "context_size": 4096,
                "batch_size": 512, "ubatch_size": 512, "slots": 1}  # fmt: skip
    fields: dict[str, Any] = dict(
        provider_agent_id=7, provider=account.address, model_id="m", weights_hash="0x" + "11" * 32,
        input_hash=prompt_hash(PROMPT), output_hash=tokens_hash(tokens),
        asset="0x" + "22" * 20, price=PRICES.charge(10, 3), payment_ref="0x" + "00" * 32,
        timestamp=1, runtime="xllamacpp 1", settings=settings, input_tokens=10, output_tokens=3,
        finish_reason="stop", input_price=PRICES.input, output_price=PRICES.output,
    )  # fmt: skip
    fields.update(changes)
    return GenerationReceipt(**fields)


def test_a_generation_receipt_signs_round_trips_and_checks() -> None:
    account = Account.create()
    signed = sign_receipt(account, _receipt(account), 31337)
    again = SignedReceipt.from_json(json.loads(json.dumps(signed.to_json())))
    assert again == signed and again.id == signed.id
    assert check_generation(
        again, signer=account.address, prompt=PROMPT, token_ids=[515, 220, 151645]
    )
    store = ReceiptStore(None)
    store.add(signed, role="issued", texts=PROMPT, output=b"")
    stored = store.get(signed.id)
    assert stored is not None and stored.signed == signed and stored.texts == PROMPT


@pytest.mark.parametrize(
    ("change", "field"),
    [({"output_tokens": 4, "price": PRICES.charge(10, 4)}, "output_tokens"),
     ({"price": PRICES.charge(10, 3) + 1}, "price"),
     ({"input_hash": prompt_hash({"messages": ASK, "response_format": {"type": "json_object"}})},
      "input_hash"),
     ({"output_hash": tokens_hash([515, 220])}, "output_hash")],
)  # fmt: skip
def test_a_receipt_that_does_not_match_what_was_delivered_is_refused(
    change: dict[str, Any], field: str
) -> None:
    account = Account.create()
    signed = sign_receipt(account, _receipt(account, **change), 31337)
    with pytest.raises(BadReceipt) as caught:
        check_generation(
            signed, signer=account.address, prompt=PROMPT, token_ids=[515, 220, 151645]
        )
    assert caught.value.fields["field"] == field


def test_a_tampered_or_foreign_signature_is_refused() -> None:
    account, other = Account.create(), Account.create()
    signed = sign_receipt(account, _receipt(account), 31337)
    forged = SignedReceipt(replace(signed.receipt, output_tokens=2), signed.signature, 31337)
    for bad, signer in ((forged, account.address), (signed, other.address)):
        with pytest.raises(BadReceipt):
            check_generation(bad, signer=signer, prompt=PROMPT, token_ids=[515, 220, 151645])


@pytest.mark.parametrize(
    ("claimed", "finish", "verdict"),
    [([1, 2, 3], "stop", "identical"), ([1, 2], "stop", "truncated"),
     ([1, 2, 3, 3], "stop", "overstated"), ([1, 9, 3], "stop", "different tokens from token 1"),
     ([1, 2, 3], "length", "finish reason")],
)  # fmt: skip
def test_token_comparison_is_exact_and_says_how_a_completion_differs(
    claimed: list[int], finish: str, verdict: str
) -> None:
    result = compare_tokens(claimed, [1, 2, 3], claimed_finish=finish, rerun_finish="stop")
    assert result.passed == (verdict == "identical") and verdict in result.reason


# ---- the service and the catch (real models) ---------------------------------------------------
class GenWorld:
    def __init__(self, net: Network, minter: Any, home: Path) -> None:
        self.net, self.minter, self.home = net, minter, home
        self.agents: list[Agent] = []

    def agent(self, name: str, skills: list[Any], validator: str | None = None) -> Agent:
        wallet = new_wallet(name, self.home / "wallets", self.net.token)
        fund(self.net, self.minter, wallet.address, 0)
        agent = Agent(
            name, wallet, self.net, skills=skills, data_dir=self.home / name, validator=validator
        )
        self.agents.append(agent)
        agent.start()
        return agent


@pytest.fixture(scope="module")
def gen_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenWorld]:
    home = tmp_path_factory.mktemp("generation")
    net, minter = deploy_agent_network(Chain.embedded(), load_config(home / "home", env={}))
    world = GenWorld(net, minter, home)
    try:
        yield world
    finally:
        for agent in world.agents:
            agent.stop()


@pytest.fixture(scope="module")
def gen_validator(gen_world: GenWorld, small_model: LanguageModel) -> Iterator[Validator]:
    agent = gen_world.agent("gen-validator", [])
    validator = Validator(agent, None, language=Rerunner({small_model.model_id: small_model}))
    try:
        yield validator
    finally:
        validator.stop()


@pytest.fixture(scope="module")
def provider(gen_world: GenWorld, small_model: LanguageModel, gen_validator: Validator) -> Agent:
    skill = GenerationSkill(small_model, PRICES)
    return gen_world.agent("generator", [skill], validator=gen_validator.agent.address)


@pytest.mark.generation
def test_the_card_lists_per_token_prices_and_the_offer(provider: Agent) -> None:
    card = parse_card(httpx.get(f"{provider.url}/.well-known/agent-card.json").json())
    skill = card.skills[0]
    assert skill.id == "generate"
    assert [(p.units, p.model_extra["unit"]) for p in skill.prices] == [
        (3, "input token"), (20, "output token")
    ]  # fmt: skip
    assert (
        skill.model_extra["offer"]["weightsHash"] == provider.skills["generate"].model.weights_hash
    )


@pytest.mark.generation
def test_the_openai_client_works_unchanged_json_and_streamed(provider: Agent) -> None:
    client = openai.OpenAI(base_url=f"{provider.url}/v1", api_key="unused", max_retries=0)
    model = client.models.list().data[0].id
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
    answer = client.chat.completions.create(
        model=model, messages=ASK, max_tokens=16, temperature=0, seed=3, response_format=fmt
    )
    assert "city" in json.loads(answer.choices[0].message.content or "")
    usage = answer.usage
    assert usage is not None and usage.completion_tokens > 0
    bazaar = answer.model_extra["bazaar"]  # type: ignore[index]
    assert int(bazaar["price"]) == PRICES.charge(usage.prompt_tokens, usage.completion_tokens)
    chunks = list(client.chat.completions.create(
        model=model, messages=ASK, max_tokens=16, temperature=0, seed=3, response_format=fmt,
        stream=True,
    ))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer.choices[0].message.content
    last = chunks[-1].model_extra or {}
    assert last["bazaar"]["token_ids"] == bazaar["token_ids"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "w " * 6000}]
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=ASK)


@pytest.mark.generation
def test_a_stream_stops_at_its_token_budget_and_charges_what_was_delivered(
    provider: Agent,
) -> None:
    skill = provider.skills["generate"]
    assert isinstance(skill, GenerationSkill)
    request = ChatRequest.chat(ASK, max_tokens=32, temperature=0, seed=1)
    delivered: list[int] = []
    completion, signed = skill.serve(
        provider, request, budget=lambda n: n <= 5, on_piece=lambda p: delivered.extend(p.token_ids)
    )
    assert completion.finish_reason == "cancelled" and list(completion.token_ids) == delivered
    assert len(delivered) == 5
    assert completion.prompt_tokens == skill.model.count_prompt_tokens(request) > 0
    assert signed.receipt.price == PRICES.charge(completion.prompt_tokens, 5)


@pytest.mark.generation
def test_the_honest_providers_sales_pass_validation_on_chain(
    gen_world: GenWorld, provider: Agent, gen_validator: Validator
) -> None:
    answer = httpx.post(
        f"{provider.url}/v1/chat/completions",
        json={"messages": ASK, "max_tokens": 8, "temperature": 0.7, "seed": 4},
        timeout=300,
    ).json()
    posted = gen_validator.process_pending()  # this sale, and the earlier tests' (one cancelled)
    assert len(posted) >= 2 and all(v.score == 100 for v in posted), [v.reason for v in posted]
    status = gen_world.net.registries.validation.status(
        SignedReceipt.from_json(answer["bazaar"]["receipt"]).id
    )
    assert status.response == 100 and status.tag == GENERATION_TAG


@pytest.mark.generation
def test_substitution_truncation_and_overcounting_are_caught_on_chain(
    gen_world: GenWorld,
    provider: Agent,
    gen_validator: Validator,
    small_model: LanguageModel,
    coder_model: LanguageModel,
) -> None:
    gen_validator.process_pending()  # nothing of the honest provider left to judge here
    gen_validator.language = Rerunner(
        {small_model.model_id: small_model, coder_model.model_id: coder_model}
    )
    liars = {
        mode: gen_world.agent(
            f"gen-{mode}",
            [GenerationSkill(
                coder_model if mode == "substitute" else small_model, PRICES, mode=mode,  # type: ignore[arg-type]
                substitute=small_model if mode == "substitute" else None,
            )],
            validator=gen_validator.agent.address,
        )
        for mode in ("substitute", "truncate", "overcount")
    }  # fmt: skip
    body = {"messages": ASK, "max_tokens": 16, "temperature": 0, "seed": 2}
    sales = {}
    for mode, agent in liars.items():
        answer = httpx.post(f"{agent.url}/v1/chat/completions", json=body, timeout=300).json()
        sales[mode] = SignedReceipt.from_json(answer["bazaar"]["receipt"])
    verdicts = {v.provider_agent_id: v for v in gen_validator.process_pending()}
    registry = gen_world.net.registries.validation
    for mode, agent in liars.items():
        verdict = verdicts[agent.agent_id or 0]
        assert verdict.score == 0, (mode, verdict.reason)
        status = registry.status(sales[mode].id)
        assert status.response == 0 and status.tag == GENERATION_TAG
    assert "different tokens" in verdicts[liars["substitute"].agent_id or 0].reason
    assert "truncated" in verdicts[liars["truncate"].agent_id or 0].reason
    # padded within max_tokens the re-run shows the padding; past it the receipt alone does
    overcount = verdicts[liars["overcount"].agent_id or 0].reason
    assert "overstated" in overcount or "output_tokens" in overcount, overcount
