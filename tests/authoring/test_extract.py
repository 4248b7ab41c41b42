"""Sentence -> template + exact parameters: several sentences per template, the refusals, and a
filler (the seam a model plugs into) held to the same validation. No chain: names resolve
through a real keystore's address book, amounts through a token registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from agentbazaar.authoring import ResolveContext, fill
from agentbazaar.authoring.params import parse_duration
from agentbazaar.errors import BadParameters, NeedsClarification, NoTemplate
from agentbazaar.tokens import NATIVE, Token, TokenRegistry
from agentbazaar.wallet import KeyStore

USDC = Token("USDC", 6, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
NOW = 1_800_000_000
DAY = 86_400


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> ResolveContext:
    keys = KeyStore(tmp_path_factory.mktemp("keys"), scrypt_cost=1024)
    for name in ("alice", "bob", "carol", "dave"):
        keys.create(name, "pw")
    return ResolveContext(names=lambda n: keys.address_of(n, "pw"),
                          tokens=TokenRegistry([NATIVE, USDC]), now=NOW,
                          me=keys.address_of("alice", "pw"))  # fmt: skip


def test_the_issue_vesting_sentence(ctx: ResolveContext) -> None:
    f = fill("vest 1,000 USDC to bob over 12 months with a 3 month cliff", ctx)
    assert f.template.name == "vesting"
    p = f.params
    assert p["amount"] == 1_000_000_000 and p["token"] == USDC.address
    assert p["beneficiary"] == ctx.names("bob")
    assert (p["duration"], p["cliff"], p["start"]) == (360 * DAY, 90 * DAY, NOW)
    assert f.sources["cliff"] == "sentence" and f.sources["start"] == "default"


@pytest.mark.parametrize(
    ("sentence", "template", "expected"),
    [
        ("vest 500 USDC for carol over 2 years with a 6 month cliff", "vesting",
         {"amount": 500_000_000, "duration": 730 * DAY, "cliff": 180 * DAY}),
        ("vest 120 usdc to dave over 30 days", "vesting", {"cliff": 0, "duration": 30 * DAY}),
        ("split this agent's income 70/30 between alice and bob", "splitter",
         {"shares": [70, 30], "royalty_bps": 0, "upstream": None}),
        ("split USDC income 50/30/20 between alice, bob and carol", "splitter",
         {"shares": [50, 30, 20]}),
        ("split income equally between bob and carol with 10% royalty to dave", "splitter",
         {"shares": [1, 1], "royalty_bps": 1000}),
        ("hold 50 USDC in escrow for carol until dave approves or 7 days pass", "escrow",
         {"amount": 50_000_000, "deadline": NOW + 7 * DAY}),
        ("escrow 200 USDC for bob, approved by carol, deadline in 14 days", "escrow",
         {"amount": 200_000_000, "deadline": NOW + 14 * DAY}),
        ("hold 10 USDC for dave until carol approves or 48 hours pass", "escrow",
         {"deadline": NOW + 48 * 3600}),
        ("stream 300 USDC to bob over 30 days", "stream",
         {"amount": 300_000_000, "duration": 30 * DAY}),
        ("stream 10 USDC per day to carol for 2 weeks", "stream",
         {"amount": 140_000_000, "duration": 14 * DAY}),
        ("stream 1.5 USDC per hour to dave for 3 days", "stream", {"amount": 108_000_000}),
        ("let bob spend up to 20 USDC per day from a vault owned by me, paying only carol and "
         "dave", "vault", {"cap": 20_000_000, "period": DAY}),
        ("a vault where agent bob can spend 5 USDC per hour, only to carol", "vault",
         {"cap": 5_000_000, "period": 3600}),
        ("agent account for bob: 100 USDC per week, paying only carol and dave, fund it with "
         "300 USDC", "vault", {"cap": 100_000_000, "period": 7 * DAY, "fund": 300_000_000}),
        ("create a token called Gold with symbol GLD capped at 1,000,000 and mint 1,000 to "
         "alice", "token", {"symbol": "GLD", "cap": 10**24, "initial_supply": 10**21}),
        ("a capped token named Points (PTS) with a cap of 10,000,000, mint 500 to bob", "token",
         {"name": "Points", "cap": 10**25}),
        ("create a token called Credits with symbol CRD capped at 21m", "token",
         {"cap": 21 * 10**24, "initial_supply": 0}),
        ("a timelock with a 2 day delay where alice proposes and bob executes", "timelock",
         {"min_delay": 2 * DAY}),
        ("create a timelock: delay of 12 hours, proposers alice and carol, executors bob",
         "timelock", {"min_delay": 12 * 3600}),
        ("a 1 week timelock where carol proposes and dave executes", "timelock",
         {"min_delay": 7 * DAY}),
    ],
)  # fmt: skip
def test_sentences_per_template(
    ctx: ResolveContext, sentence: str, template: str, expected: dict[str, Any]
) -> None:
    f = fill(sentence, ctx)
    assert f.template.name == template
    for key, value in expected.items():
        assert f.params[key] == value, key


def test_names_become_addresses(ctx: ResolveContext) -> None:
    f = fill("let bob spend up to 20 USDC per day from a vault owned by me, paying only carol "
             "and dave", ctx)  # fmt: skip
    assert f.params["session_key"] == ctx.names("bob")
    assert f.params["owner"] == ctx.me
    assert f.params["payees"] == [ctx.names("carol"), ctx.names("dave")]
    t = fill("create a timelock: delay of 12 hours, proposers alice and carol, executors bob", ctx)
    assert t.params["proposers"] == [ctx.names("alice"), ctx.names("carol")]
    assert t.params["executors"] == [ctx.names("bob")]


def test_no_template_names_the_closest(ctx: ResolveContext) -> None:
    with pytest.raises(NoTemplate) as err:
        fill("lend 100 USDC to bob at 5% interest", ctx)
    assert len(err.value.closest) == 3
    assert "free-form code is never deployed" in str(err.value)
    with pytest.raises(NoTemplate) as err:
        fill("build me a DAO that votes on spending with a delay", ctx)
    assert "timelock" in err.value.closest


def test_missing_values_are_asked_not_guessed(ctx: ResolveContext) -> None:
    with pytest.raises(NeedsClarification) as err:
        fill("vest 1,000 USDC over 12 months", ctx)
    assert err.value.missing == ["beneficiary"]
    with pytest.raises(NeedsClarification) as err:
        fill("hold 50 USDC in escrow for carol", ctx)
    assert set(err.value.missing) == {"arbiter", "deadline"}


def test_a_name_that_is_no_wallet_is_asked(ctx: ResolveContext) -> None:
    with pytest.raises(NeedsClarification) as err:
        fill("vest 1,000 USDC to zed over 12 months", ctx)
    assert err.value.missing == ["beneficiary"] and "zed" in str(err.value)


def test_contradictions_are_refused(ctx: ResolveContext) -> None:
    with pytest.raises(BadParameters, match=r"cliff .* longer than the vesting"):
        fill("vest 1,000 USDC to bob over 3 months with a 12 month cliff", ctx)
    with pytest.raises(BadParameters, match="own arbiter"):
        fill("hold 50 USDC in escrow for carol until carol approves or 7 days pass", ctx)
    with pytest.raises(BadParameters, match="initial supply is more than the cap"):
        fill("create a token called Gold with symbol GLD capped at 1,000 and mint 5,000 to bob",
             ctx)  # fmt: skip
    with pytest.raises(BadParameters, match="decimal places"):
        fill("vest 0.0000001 USDC to bob over 12 months", ctx)


def test_a_filler_fills_only_what_the_sentence_lacks_and_is_held_to_the_sentence(
    ctx: ResolveContext,
) -> None:
    seen: list[Mapping[str, Any]] = []

    def filler(sentence: str, template: str, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen.append(schema)
        return {"beneficiary": "carol", "amount": "5 USDC", "duration": "1 year"}

    f = fill("vest 1,000 USDC over 12 months for the benefit of carol", ctx, filler=filler)
    assert f.params["beneficiary"] == ctx.names("carol")
    assert f.params["amount"] == 1_000_000_000  # the sentence's value wins
    assert f.params["duration"] == 360 * DAY
    assert f.sources["beneficiary"] == "filler" and f.sources["amount"] == "sentence"
    assert seen[0]["required"] == ["token", "amount", "beneficiary", "duration"]
    assert seen[0]["additionalProperties"] is False
    fill("vest 1,000 USDC to bob over 12 months", ctx, filler=filler)
    assert len(seen) == 1, "a sentence the parser reads whole never asks the filler"

    def bad(sentence: str, template: str, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"beneficiary": "0x12", "cliff": "20 years"}

    with pytest.raises(NeedsClarification, match="beneficiary") as err:
        fill("vest 1,000 USDC over 12 months", ctx, filler=bad)
    assert "not taken from the model" in str(err.value)


def test_a_filler_may_not_invent_a_value_the_sentence_does_not_say(ctx: ResolveContext) -> None:
    def inventive(sentence: str, template: str, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"beneficiary": "dave", "cliff": "3 months"}  # dave is a wallet, but unsaid

    with pytest.raises(NeedsClarification) as err:
        fill("vest 1,000 USDC over 12 months", ctx, filler=inventive)
    assert err.value.missing == ["beneficiary"] and "'dave'" in str(err.value)


def test_durations() -> None:
    assert parse_duration("a month") == 30 * DAY
    assert parse_duration("1.5 hours") == 5400
    assert parse_duration("3600") == 3600
    with pytest.raises(Exception, match="whole number of seconds"):
        parse_duration("0.1 seconds")
    with pytest.raises(Exception, match="time unit"):
        parse_duration("3 fortnights")
