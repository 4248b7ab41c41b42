"""End-to-end swaps from a sentence, on the embedded chain and on anvil: plan (route, expected
and minimum output, gas, fees, eth_call simulation), policy check before any signature,
execution through the wallet's spend, and the result checked against the plan."""

from __future__ import annotations

import pytest
from dex_fixtures import Deployed

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import (
    ChainUnavailable,
    InsufficientFunds,
    PolicyViolation,
    TransactionReverted,
)
from agentbazaar.intents import PlanError, parse_intent
from agentbazaar.intents.plan import (
    _APPROVE_ABI,
    _full_tx,
    erc20_balance,
    execute_swap,
    plan_swap,
)
from agentbazaar.wallet import KeyStore, PolicyStore, Wallet, open_wallet, reconcile

PASSPHRASE = "swap-test-passphrase"


@pytest.fixture(autouse=True)
def _cheap_keystores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test keystores with the lowest scrypt cost the keystore accepts (speed only)."""
    monkeypatch.setenv("BAZAAR_SCRYPT_N", "1024")


_created: dict[tuple[str, int], Wallet] = {}


def wallet_for(d: Deployed, index: int, usdc: str = "10000") -> Wallet:
    """A keystore wallet on dev account ``index``, holding ``usdc`` USDC and some gas."""
    key = (str(d.cfg.home), index)
    if key not in _created:
        name = f"trader{index}"
        KeyStore(d.cfg.keystore_dir).import_key(name, bytes(dev_account(index).key), PASSPHRASE)
        _created[key] = open_wallet(d.cfg, name, PASSPHRASE)
        wallet = _created[key]
        d.chain.fund_native(wallet.address, 10**19)
        token = d.suite.token_contract("USDC")
        units = d.suite.tokens.get("USDC").parse(usdc)
        d.chain.transact(dev_account(0), token.functions.mint(wallet.address, units))
    return _created[key]


def plan_for(d: Deployed, wallet: Wallet, sentence: str):  # type: ignore[no-untyped-def]
    return plan_swap(
        parse_intent(sentence),
        chain=d.chain,
        amm=d.amm,
        tokens=d.suite.tokens,
        payer=wallet.address,
        policy=wallet.policy,
        wallet_name=wallet.name,
    )


def test_swap_100_usdc_for_weth_end_to_end(deployed: Deployed) -> None:
    d = deployed
    wallet = wallet_for(d, 5)
    usdc, weth = d.suite.tokens.get("USDC"), d.suite.tokens.get("WETH")
    plan = plan_for(d, wallet, "swap 100 USDC for WETH with at most 0.5% slippage")
    assert plan.amount_in == 100_000_000
    assert plan.simulated_out == plan.expected_out > 0
    assert plan.min_out == plan.expected_out * 9950 // 10000
    # 0.3% of the input stays in the pools (floored per route)
    usdc_fee = dict(plan.pool_fees)["USDC"]
    assert 300_000 - len(plan.quote.routes) < usdc_fee <= 300_000
    routes = plan.to_dict()["routes"]
    assert routes and all(r["symbols"][0] == "USDC" and r["symbols"][-1] == "WETH" for r in routes)
    before_in = erc20_balance(d.chain, usdc, wallet.address)
    before_out = erc20_balance(d.chain, weth, wallet.address)
    result = execute_swap(plan, chain=d.chain, amm=d.amm, wallet=wallet, approve=True)
    assert result.received == plan.expected_out  # nobody traded in between: exact
    assert erc20_balance(d.chain, usdc, wallet.address) == before_in - plan.amount_in
    assert erc20_balance(d.chain, weth, wallet.address) == before_out + result.received
    record = wallet.ledger.get(wallet.name, result.idempotency_key)
    assert record is not None and record.status == "settled" and record.amount == plan.amount_in
    if result.approval_tx is not None:
        allowance = wallet.ledger.get(wallet.name, f"{result.idempotency_key}:allowance")
        assert allowance is not None and (allowance.kind, allowance.status) == (
            "allowance",
            "settled",
        )
        # the budget counts the swap once, the allowance not at all
        spent = wallet.ledger.spent_in_window(wallet.name, record.token, 86_400)
        assert spent == plan.amount_in
    findings = reconcile(wallet.ledger, d.chain, wallet=wallet.name)
    mine = [f for f in findings if f.idempotency_key == result.idempotency_key]
    assert [(f.before, f.after) for f in mine] == [("settled", "settled")]


def test_retry_with_the_same_key_never_swaps_twice(deployed: Deployed) -> None:
    d = deployed
    wallet = wallet_for(d, 19)
    usdc = d.suite.tokens.get("USDC")
    plan = plan_for(d, wallet, "swap 50 USDC for DAI")
    first = execute_swap(plan, chain=d.chain, amm=d.amm, wallet=wallet, idempotency_key="k-1")
    after_first = erc20_balance(d.chain, usdc, wallet.address)
    again = plan_for(d, wallet, "swap 50 USDC for DAI")  # a new plan, the same spend
    second = execute_swap(again, chain=d.chain, amm=d.amm, wallet=wallet, idempotency_key="k-1")
    assert second.replayed and not first.replayed
    assert second.tx_hash == first.tx_hash and second.received == first.received
    assert second.approval_tx is None
    assert erc20_balance(d.chain, usdc, wallet.address) == after_first


def test_a_crash_after_signing_is_finished_with_the_same_bytes(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = deployed
    wallet = wallet_for(d, 20)
    usdc, dai = d.suite.tokens.get("USDC"), d.suite.tokens.get("DAI")
    plan = plan_for(d, wallet, "swap 40 USDC for DAI")
    token = d.suite.token_contract("USDC")
    d.chain.transact(dev_account(20), token.functions.approve(d.amm.router.address, 10**12))

    def lost(raw: bytes, *, action: str = "") -> None:
        raise ChainUnavailable("the node went away")

    monkeypatch.setattr(d.chain, "broadcast_raw", lost)
    with pytest.raises(ChainUnavailable):
        execute_swap(plan, chain=d.chain, amm=d.amm, wallet=wallet, idempotency_key="crash-1")
    record = wallet.ledger.get(wallet.name, "crash-1")
    assert record is not None and record.status == "signed" and record.raw_tx
    assert erc20_balance(d.chain, usdc, wallet.address) == usdc.parse("10000")
    monkeypatch.undo()
    again = plan_for(d, wallet, "swap 40 USDC for DAI")
    done = execute_swap(again, chain=d.chain, amm=d.amm, wallet=wallet, idempotency_key="crash-1")
    assert done.replayed and done.tx_hash == record.tx_hash
    assert erc20_balance(d.chain, usdc, wallet.address) == usdc.parse("9960")
    assert erc20_balance(d.chain, dai, wallet.address) == done.received > 0
    settled = wallet.ledger.get(wallet.name, "crash-1")
    assert settled is not None and settled.status == "settled"


def test_buy_exact_output_gets_at_least_that_much(deployed: Deployed) -> None:
    d = deployed
    wallet = wallet_for(d, 6)
    weth = d.suite.tokens.get("WETH")
    plan = plan_for(d, wallet, "buy 0.5 WETH with USDC")
    assert plan.expected_out >= weth.parse("0.5")
    assert plan.expected_out < weth.parse("0.5") * 1_000_010 // 1_000_000  # not overpaying
    result = execute_swap(plan, chain=d.chain, amm=d.amm, wallet=wallet, approve=True)
    assert result.received >= plan.min_out


def test_policy_refuses_before_anything_is_signed(deployed: Deployed) -> None:
    d = deployed
    wallet = wallet_for(d, 7)
    usdc = d.suite.tokens.get("USDC")
    store = PolicyStore(d.cfg.policy_dir)
    store.save(
        wallet.name,
        store.load(wallet.name).with_limits(
            str(usdc.address), "USDC", 6, max_per_payment=usdc.parse("50")
        ),
    )
    nonce = d.chain.w3.eth.get_transaction_count(wallet.address)
    records = wallet.ledger.count()
    with pytest.raises(PolicyViolation, match="per-payment maximum"):
        plan_for(d, wallet, "swap 100 USDC for WETH")
    assert d.chain.w3.eth.get_transaction_count(wallet.address) == nonce
    assert wallet.ledger.count() == records


@pytest.mark.parametrize(
    ("sentence", "error", "match"),
    [
        ("swap 100 USDC for WETH with 10% slippage", PlanError, "beyond the limit"),
        ("swap 100000000 USDC for WETH", InsufficientFunds, "needs"),
        ("swap 1 ETH for USDC", PlanError, "say WETH"),
        ("swap 100 USDC for WETH at most 1 USDC per WETH", PlanError, "above the limit"),
        ("swap 100 FOO for WETH", Exception, "unknown token"),
    ],
)
def test_bad_requests_are_refused_at_plan_time(
    deployed: Deployed, sentence: str, error: type[Exception], match: str
) -> None:
    wallet = wallet_for(deployed, 8)
    with pytest.raises(error, match=match):
        plan_for(deployed, wallet, sentence)


def _whale_moves_the_pools(d: Deployed, usdc_amount: str) -> None:
    """Someone else buys WETH with a lot of USDC through the same pools."""
    usdc, weth = d.suite.tokens.get("USDC"), d.suite.tokens.get("WETH")
    whale = dev_account(4)
    big = usdc.parse(usdc_amount)
    d.chain.fund_native(whale.address, 10**19)
    token = d.suite.token_contract("USDC")
    d.chain.transact(dev_account(0), token.functions.mint(whale.address, big))
    d.chain.transact(whale, token.functions.approve(d.amm.router.address, big))
    whale_quote = d.amm.quote(usdc, weth, big, weth=weth)
    deadline = d.chain.timestamp() + 600
    d.chain.transact(whale, d.amm.swap_function(whale_quote, 0, whale.address, deadline))


def test_pool_moved_between_plan_and_execution_signs_no_approval(deployed: Deployed) -> None:
    """The plan needs the router's approval; the pools move before it is executed. The whole
    plan is simulated again first: refused, and neither the approval nor the swap is signed
    (ledger) or mined (nonce, allowance on chain)."""
    d = deployed
    wallet = wallet_for(d, 9, usdc="200000")
    usdc = d.suite.tokens.get("USDC")
    plan = plan_for(d, wallet, "swap 20000 USDC for WETH with at most 0.1% slippage")
    assert plan.allowance_short and plan.simulated_out == plan.expected_out
    _whale_moves_the_pools(d, "900000")
    token = d.suite.token_contract("USDC")
    router = d.amm.router.address
    before = erc20_balance(d.chain, usdc, wallet.address)
    nonce = d.chain.w3.eth.get_transaction_count(wallet.address)
    with pytest.raises(PlanError, match="pools moved since the plan") as info:
        execute_swap(plan, chain=d.chain, amm=d.amm, wallet=wallet, approve=True)
    assert erc20_balance(d.chain, usdc, wallet.address) == before
    assert d.chain.w3.eth.get_transaction_count(wallet.address) == nonce  # nothing mined
    assert d.chain.call(token.functions.allowance(wallet.address, router)) == 0
    records = wallet.ledger.records(wallet.name)
    assert records and all(r.status == "failed" and not r.raw_tx for r in records)
    assert not [r for r in records if r.kind == "allowance"]  # the approval never got a spend
    assert info.value.fields["reason"] == "slippage"
    assert info.value.fields["quoted"] < plan.min_out


def test_plan_simulates_the_approval_and_the_swap_together(deployed: Deployed) -> None:
    """Without an allowance, the plan's simulation is the real swap (after a simulated
    approval), not the router's arithmetic: its output and gas are the swap's."""
    d = deployed
    wallet = wallet_for(d, 18)
    plan = plan_for(d, wallet, "swap 300 USDC for WETH")
    assert plan.allowance_short
    result = execute_swap(plan, chain=d.chain, amm=d.amm, wallet=wallet, approve=True)
    assert result.approval_tx is not None and result.received == plan.simulated_out
    receipts = [d.chain.receipt(h) for h in (result.approval_tx, result.tx_hash)]
    used = sum(int(r["gasUsed"]) for r in receipts if r is not None)
    assert used <= plan.gas_estimate  # the estimate covers both transactions


def test_below_minimum_reverts_on_chain_and_costs_only_gas(deployed: Deployed) -> None:
    d = deployed
    me = dev_account(10)
    d.chain.fund_native(me.address, 10**19)
    usdc, weth = d.suite.tokens.get("USDC"), d.suite.tokens.get("WETH")
    amount = usdc.parse("10")
    token = d.suite.token_contract("USDC")
    d.chain.transact(dev_account(0), token.functions.mint(me.address, amount))
    d.chain.transact(me, token.functions.approve(d.amm.router.address, amount))
    quote = d.amm.quote(usdc, weth, amount, weth=weth)
    fn = d.amm.swap_function(quote, quote.amount_out + 1, me.address, d.chain.timestamp() + 600)
    native = d.chain.native_balance(me.address)
    with pytest.raises(TransactionReverted):
        d.chain.transact(me, fn, gas=400_000)  # skip estimation: it is mined, and reverts
    assert erc20_balance(d.chain, usdc, me.address) == amount
    assert d.chain.native_balance(me.address) < native  # gas was paid


def test_a_crash_after_the_router_approval_leaves_the_budget_untouched(
    deployed: Deployed,
) -> None:
    """The process dies after the allowance was signed and mined, before the swap: reconcile
    finds the approval on chain, and the budget counts nothing for it; the swap run again
    counts its amount once."""
    d = deployed
    wallet = wallet_for(d, 17)
    plan = plan_for(d, wallet, "swap 40 USDC for WETH")
    router = str(d.amm.router.address)
    token = d.chain.contract(str(plan.token_in.address), _APPROVE_ABI)
    with pytest.raises(RuntimeError, match="killed"):
        with wallet.spend(
            kind="allowance",
            token=plan.token_in,
            amount=plan.amount_in,
            counterparty=router,
            idempotency_key="crash-1:allowance",
            approve=True,
            chain_id=d.chain.chain_id,
        ) as spend:
            tx = _full_tx(
                d.chain, wallet.address, token.functions.approve(router, plan.amount_in), None
            )
            tx_hash, raw = spend.sign_transaction(tx)
            d.chain.broadcast_raw(raw, action="approve the router")
            d.chain.wait_for_receipt(tx_hash, action="approve the router")
            raise RuntimeError("killed before the swap")
    findings = reconcile(wallet.ledger, d.chain, wallet=wallet.name)
    assert [(f.before, f.after) for f in findings if f.idempotency_key == "crash-1:allowance"] == [
        ("signed", "settled")
    ]
    allowance = wallet.ledger.get(wallet.name, "crash-1:allowance")
    assert allowance is not None and allowance.amount == plan.amount_in
    usdc = allowance.token
    assert wallet.ledger.spent_in_window(wallet.name, usdc, 86_400) == 0
    result = execute_swap(plan, chain=d.chain, amm=d.amm, wallet=wallet, idempotency_key="crash-1")
    assert result.approval_tx is None  # the allowance from before the crash is used
    assert wallet.ledger.spent_in_window(wallet.name, usdc, 86_400) == plan.amount_in
