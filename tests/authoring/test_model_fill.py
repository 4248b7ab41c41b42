"""The real language model behind the parsers and behind `explain`'s prose, held in code:
the fast tests check the prose checker and the fixed prompt without the model; the two that
run the 0.5B model (one question each, greedy, so deterministic) are marked slow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentbazaar.authoring import TEMPLATES, ModelFiller, ResolveContext, fill
from agentbazaar.authoring.modelfill import answer_schema, messages, worked_examples
from agentbazaar.authoring.prose import check, facts_for_model, in_words
from agentbazaar.tokens import NATIVE, Token, TokenRegistry
from agentbazaar.wallet import KeyStore

USDC = Token("USDC", 6, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
BOB = "0x" + "b0" * 20
DOC: dict[str, Any] = {
    "title": "Linear vesting with a cliff",
    "address": "0x" + "c1" * 20,
    "params": {"amount": "1000000000", "beneficiary": BOB},
    "parameters_in_words": {
        "amount": "1,000 USDC",
        "beneficiary": f"bob ({BOB})",
        "cliff": "3 months (7776000 seconds)",
    },
    "facts": ["Vests 1,000 USDC to bob over 12 months, nothing before a 3 month cliff."],
    "invariants": ["bob never receives more than 1,000 USDC"],
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> ResolveContext:
    keys = KeyStore(tmp_path_factory.mktemp("keys"), scrypt_cost=1024)
    for name in ("alice", "bob", "carol"):
        keys.create(name, "pw")
    return ResolveContext(names=lambda n: keys.address_of(n, "pw"),
                          tokens=TokenRegistry([NATIVE, USDC]), now=1_800_000_000,
                          me=keys.address_of("alice", "pw"))  # fmt: skip


# ---- without the model ------------------------------------------------------------------------
def test_prose_that_adds_a_fact_is_refused_and_faithful_prose_passes() -> None:
    facts = json.dumps(facts_for_model(DOC))
    assert check("Bob receives 1,000 USDC over twelve months after a 3 month cliff.", facts,
                 ["bob"]) == []  # fmt: skip
    assert check("Bob receives 2,000 USDC.", facts, ["bob"])[0].startswith("numbers not")
    assert "eve" in check("Eve receives 1,000 USDC.", facts, ["bob", "eve"])[0]
    assert "0xdead" in check("It pays 0xdead.", facts)[0]
    assert "dai" in check("It pays 1,000 DAI.", facts)[0]
    assert check("", facts) == ["it is empty"]


def test_without_a_model_the_template_words_are_the_prose() -> None:
    out = in_words(DOC, None)
    assert out == {"text": DOC["facts"][0], "source": "template", "note": None}


def test_the_prompt_is_derived_from_the_templates() -> None:
    examples = worked_examples()
    assert [e[1]["template"] for e in examples[:-1]] == list(TEMPLATES)
    assert examples[-1][1] == {"template": "none"}
    sent = messages("vest 5 USDC to bob over a year")
    assert sent[-1] == {"role": "user", "content": "vest 5 USDC to bob over a year"}
    assert answer_schema("vesting")["properties"]["template"] == {"const": "vesting"}
    assert len(answer_schema(None)["anyOf"]) == len(TEMPLATES) + 1


# ---- the real model (0.5B, greedy) --------------------------------------------------------------
@pytest.mark.generation
@pytest.mark.slow  # one question of ~1,300 prompt tokens on the shared CPU
def test_the_model_fills_what_the_parser_missed_and_only_from_the_sentence(
    ctx: ResolveContext, small_model: Any
) -> None:
    filler = ModelFiller(small_model)
    f = fill("carol should receive 300 USDC streamed across 30 days", ctx, filler=filler)
    assert f.template.name == "stream"
    assert f.params["recipient"] == ctx.names("carol") and f.sources["recipient"] == "model"
    assert f.params["amount"] == 300_000_000 and f.params["duration"] == 30 * 86_400
    assert len(filler.answers) == 1 and filler.answers[0].template == "stream"


@pytest.mark.generation
@pytest.mark.slow
def test_the_model_prose_is_shown_only_when_it_adds_no_fact(small_model: Any) -> None:
    out = in_words(DOC, small_model, names=["bob", "alice", "carol"])
    facts = json.dumps(facts_for_model(DOC))
    if out["source"] == "model":
        assert out["text"] and check(out["text"], facts, ["bob", "alice", "carol"]) == []
    else:  # the model answered, and what it said was refused with the reason
        assert out["refused"] and out["note"].startswith("the model's text was not shown")
        assert check(out["refused"], facts, ["bob", "alice", "carol"])
