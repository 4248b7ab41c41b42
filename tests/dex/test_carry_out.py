"""``agentbazaar.intents.act.carry_out``: a sentence's intent planned and executed for a wallet
on embedded and anvil: paying an agent by its ERC-8004 id, sending a share of a balance,
balances, and refusals that sign nothing."""

from __future__ import annotations

import pytest
from dex_fixtures import Deployed
from pydantic import ValidationError

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import PolicyViolation, UnknownWallet
from agentbazaar.identity.cards import (
    AgentConfig,
    build_registration,
    register_card,
    sign_card,
)
from agentbazaar.identity.contracts import IDENTITY_KEY, IdentityRegistry
from agentbazaar.intents import Intent, PlanError, parse_intent
from agentbazaar.intents.act import carry_out
from agentbazaar.intents.plan import erc20_balance
from agentbazaar.wallet import KeyStore, PolicyStore, Wallet, open_wallet, write_default_policy

PASSPHRASE = "act-test-passphrase"


@pytest.fixture(autouse=True)
def _cheap_keystores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAZAAR_SCRYPT_N", "1024")


def _wallet(d: Deployed, name: str, index: int, usdc: str) -> Wallet:
    store = KeyStore(d.cfg.keystore_dir)
    if name not in {w for w in store.names()}:
        store.import_key(name, bytes(dev_account(index).key), PASSPHRASE)
    wallet = open_wallet(d.cfg, name, PASSPHRASE)
    d.chain.fund_native(wallet.address, 10**19)
    token = d.suite.token_contract("USDC")
    units = d.suite.tokens.get("USDC").parse(usdc)
    d.chain.transact(dev_account(0), token.functions.mint(wallet.address, units))
    return wallet


def test_pay_agent_by_id_sends_to_its_verified_wallet(deployed: Deployed) -> None:
    d = deployed
    payer = _wallet(d, "payer11", 11, "10")
    owner, agent_wallet = dev_account(12), dev_account(13)
    d.chain.fund_native(owner.address, 10**19)
    registry = IdentityRegistry.from_suite(d.suite)
    agent_id = registry.register(owner, "data:application/json,{}")
    intent = parse_intent(f"pay agent {agent_id} 2.5 USDC")
    usdc = d.suite.tokens.get("USDC")
    # a new agent's wallet is its owner (ERC-8004); once bound, its own wallet
    first = carry_out(intent, suite=d.suite, wallet=payer, execute=False)
    assert first.plan["to"] == owner.address
    registry.bind_wallet(owner, agent_id, agent_wallet)
    before = erc20_balance(d.chain, usdc, agent_wallet.address)
    done = carry_out(intent, suite=d.suite, wallet=payer, execute=True)
    assert done.plan["to"] == agent_wallet.address
    assert done.result is not None and done.result["status"] == "settled"
    assert erc20_balance(d.chain, usdc, agent_wallet.address) - before == 2_500_000
    registry.unset_agent_wallet(owner, agent_id)
    with pytest.raises(PlanError, match="no verified wallet"):
        carry_out(intent, suite=d.suite, wallet=payer, execute=True)


def test_send_half_and_check_balances(deployed: Deployed) -> None:
    d = deployed
    sender = _wallet(d, "sender14", 14, "7")
    usdc = d.suite.tokens.get("USDC")
    have = erc20_balance(d.chain, usdc, sender.address)
    to = dev_account(15).address
    count = sender.ledger.count()
    plan = carry_out(
        parse_intent(f"send half my USDC to {to}"), suite=d.suite, wallet=sender, execute=False
    )
    assert plan.executed is False and plan.plan["amount"] == str(have // 2)
    assert sender.ledger.count() == count  # planning records nothing
    carry_out(
        parse_intent(f"send half my USDC to {to}"), suite=d.suite, wallet=sender, execute=True
    )
    assert erc20_balance(d.chain, usdc, sender.address) == have - have // 2
    shown = carry_out(
        parse_intent("what's my USDC balance"), suite=d.suite, wallet=sender, execute=False
    )
    assert shown.result == {
        "balances": [
            {
                "symbol": "USDC",
                "address": usdc.address,
                "decimals": 6,
                "units": str(have - have // 2),
                "amount": shown.result["balances"][0]["amount"],
            }
        ]
    }


def test_pay_agent_by_name_through_the_discovery_index(deployed: Deployed) -> None:
    d = deployed
    payer = _wallet(d, "payer17", 17, "5")
    owner = dev_account(18)
    d.chain.fund_native(owner.address, 10**19)
    config = AgentConfig(name="Translator Bot", skills=[])
    card = build_registration(config, owner.address, d.suite.tokens, d.chain.chain_id)
    identity = d.suite.contract(IDENTITY_KEY)
    agent_id, _ = register_card(d.chain, identity, owner, sign_card(card, owner, d.chain.chain_id))
    usdc = d.suite.tokens.get("USDC")
    before = erc20_balance(d.chain, usdc, owner.address)
    done = carry_out(
        parse_intent("pay agent translator-bot 1.25 USDC"),
        suite=d.suite,
        wallet=payer,
        execute=True,
    )
    assert done.plan["to"] == owner.address
    assert erc20_balance(d.chain, usdc, owner.address) - before == 1_250_000
    assert IdentityRegistry.from_suite(d.suite).get_agent_wallet(agent_id) == owner.address


@pytest.mark.parametrize(
    ("sentence", "match"),
    [
        ("pay agent nobody-by-this-name 1 USDC", "no trusted, active agent"),
        ("hire an agent to translate text", "not executed from a sentence"),
        ("buy the dataset eth-prices for at most 3 USDC", "not executed from a sentence"),
        ("send 1000 USDC to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "holds"),
    ],
)
def test_refusals_sign_nothing(deployed: Deployed, sentence: str, match: str) -> None:
    d = deployed
    wallet = _wallet(d, "refused16", 16, "1")
    count = wallet.ledger.count()
    nonce = d.chain.w3.eth.get_transaction_count(wallet.address)
    with pytest.raises(Exception, match=match):
        carry_out(parse_intent(sentence), suite=d.suite, wallet=wallet, execute=True)
    assert wallet.ledger.count() == count
    assert d.chain.w3.eth.get_transaction_count(wallet.address) == nonce


def test_intents_cannot_change_the_rules(deployed: Deployed) -> None:
    """Sentences and intents that try to get around the policy, the slippage limit or the
    recipient's identity: each is refused with a typed reason, no funds move, nothing is
    recorded as paid."""
    d = deployed
    wallet = _wallet(d, "rules21", 21, "1000")
    bob = _wallet(d, "rulesbob22", 22, "1")
    write_default_policy(d.cfg, wallet.name, d.suite.tokens)
    PolicyStore(d.cfg.policy_dir).save(
        wallet.name,
        wallet.policy.with_counterparties(deny=(dev_account(23).address,)),
    )
    usdc = d.suite.tokens.get("USDC")
    before = erc20_balance(d.chain, usdc, wallet.address)
    bob_before = erc20_balance(d.chain, usdc, bob.address)
    nonce = d.chain.w3.eth.get_transaction_count(wallet.address)
    attempts: list[tuple[str, type[Exception]]] = [
        ("send 150 USDC to rulesbob22", PolicyViolation),  # over the default maximum
        ("send all my USDC to rulesbob22", PolicyViolation),
        (f"send 1 USDC to {dev_account(23).address}", PolicyViolation),  # denied
        ("swap 100 USDC for WETH with at most 60% slippage", PlanError),
        ("swap 1 WETH for USDC", PolicyViolation),  # WETH is not in the default policy
        ("send 1 USDC to nobody-here", UnknownWallet),
    ]
    for sentence, error in attempts:
        with pytest.raises(error):
            carry_out(parse_intent(sentence), suite=d.suite, wallet=wallet, execute=True)
    for smuggled in ({"policy": "none"}, {"approve": True}, {"max_slippage_bps": 5000}):
        raw = {"action": "swap", "amount": "1", "token_in": "USDC", "token_out": "WETH"}
        try:
            intent = Intent.model_validate({**raw, "amount_side": "in", **smuggled})
        except ValidationError:
            continue  # a key the intent does not have: refused by its schema
        with pytest.raises(PlanError, match="beyond the limit"):
            carry_out(intent, suite=d.suite, wallet=wallet, execute=True)
    assert erc20_balance(d.chain, usdc, wallet.address) == before
    assert d.chain.w3.eth.get_transaction_count(wallet.address) == nonce
    assert all(r.status == "failed" for r in wallet.ledger.records(wallet.name))
    assert erc20_balance(d.chain, usdc, bob.address) == bob_before
