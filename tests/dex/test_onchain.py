"""The AMM on a real EVM: the seeded pool set, one-batch reserve reads, quote == eth_call ==
what the user receives, reverts that cost nothing but gas, and an idempotent re-deploy."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dex_fixtures import Deployed

from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.deploy import Manifest
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.deployment import deploy_suite
from agentbazaar.dex import Quote, best_path
from agentbazaar.dex._seed import SEED_POOLS
from agentbazaar.dex.deployment import FACTORY_KEY
from agentbazaar.dex.onchain import Amm
from agentbazaar.errors import ContractError, TransactionReverted
from agentbazaar.suite import Suite
from agentbazaar.tokens import Token

MAX = 2**256 - 1
POOL_ABI = compile_contract("AmmPool").abi


def _trader(d: Deployed, symbol: str, amount: int) -> str:
    """dev account 3, funded with ``amount`` of ``symbol`` (minted or wrapped) and approved."""
    me = dev_account(3)
    d.chain.fund_native(me.address, 10**19 + amount)
    token = d.suite.token_contract(symbol)
    if symbol == "WETH":
        weth = d.suite.contract("WETH")
        d.chain.transact(me, weth.functions.deposit(), value=amount)
    else:
        d.chain.transact(dev_account(0), token.functions.mint(me.address, amount))
    d.chain.transact(me, token.functions.approve(d.amm.router.address, MAX))
    return me.address


def _balance(d: Deployed, token: Token, who: str) -> int:
    return int(d.chain.call(d.suite.token_contract(token.symbol).functions.balanceOf(who)))


def test_seeded_pool_set_is_read_in_one_batch(deployed: Deployed) -> None:
    d = deployed
    symbols = {t.symbol for t in d.suite.tokens.all()}
    assert {"USDC", "WETH", "DAI", "USDT", "WBTC"} <= symbols
    assert d.suite.tokens.get("WBTC").decimals == 8
    pools = d.amm.pools()
    assert len(pools) >= len(SEED_POOLS)
    for pool in pools:
        state = d.chain.call(d.chain.contract(pool.address, POOL_ABI).functions.getReserves())
        assert (pool.reserve0, pool.reserve1) == tuple(state)
        assert int(pool.token0, 16) < int(pool.token1, 16)
    usdc, weth = d.suite.tokens.get("USDC").address, d.suite.tokens.get("WETH").address
    pair = [p for p in pools if {p.token0, p.token1} == {usdc, weth}]
    assert len(pair) == 3  # several pools per pair, of different depths
    assert len({p.reserve0 for p in pair}) == 3


@pytest.mark.parametrize("human", ["100", "250000"])
def test_quote_equals_simulation_equals_received(deployed: Deployed, human: str) -> None:
    d = deployed
    usdc, weth = d.suite.tokens.get("USDC"), d.suite.tokens.get("WETH")
    amount = usdc.parse(human)
    me = _trader(d, "USDC", amount)
    quote = d.amm.quote(usdc, weth, amount, weth=weth)
    assert quote.amount_in == amount
    deadline = d.chain.timestamp() + 600
    min_out = quote.min_amount_out(50)
    sim = d.amm.simulate(quote, min_out, me, deadline)
    assert sim.amount_out == quote.amount_out
    before = _balance(d, weth, me)
    receipt = d.chain.transact(dev_account(3), d.amm.swap_function(quote, min_out, me, deadline))
    assert _balance(d, weth, me) - before == quote.amount_out
    assert d.amm.received(receipt, str(weth.address), me) == quote.amount_out


def test_large_swap_splits_and_beats_the_best_single_path(deployed: Deployed) -> None:
    d = deployed
    usdc, weth = d.suite.tokens.get("USDC"), d.suite.tokens.get("WETH")
    amount = usdc.parse("400000")
    pools = d.amm.pools()
    split = d.amm.quote(usdc, weth, amount, weth=weth, pools=pools)
    single: Quote = best_path(pools, str(usdc.address), str(weth.address), amount)
    assert len(split.routes) >= 2
    assert split.net_amount_out > single.amount_out


def test_below_minimum_reverts_and_moves_nothing(deployed: Deployed) -> None:
    d = deployed
    dai, wbtc = d.suite.tokens.get("DAI"), d.suite.tokens.get("WBTC")
    amount = dai.parse("5000")
    me = _trader(d, "DAI", amount)
    quote = d.amm.quote(dai, wbtc, amount, weth=d.suite.tokens.get("WETH"))
    deadline = d.chain.timestamp() + 600
    before = _balance(d, dai, me)
    with pytest.raises(TransactionReverted, match="slippage"):
        d.amm.simulate(quote, quote.amount_out + 1, me, deadline)
    with pytest.raises(TransactionReverted, match="expired"):
        d.amm.simulate(quote, 0, me, d.chain.timestamp() - 10)
    assert _balance(d, dai, me) == before


def test_deploy_again_reuses_and_does_not_seed_twice(deployed: Deployed) -> None:
    d = deployed
    count = d.chain.call(d.amm.factory.functions.allPoolsLength())
    ctx = deploy_suite(d.chain, d.cfg, manifest=d.suite.manifest)
    assert ctx.statuses[FACTORY_KEY] == "reused"
    again = Suite.from_context(ctx)
    assert d.chain.call(again.contract(FACTORY_KEY).functions.allPoolsLength()) == count


def test_without_a_local_suite_the_amm_comes_from_config(deployed: Deployed) -> None:
    d = deployed
    empty = Manifest(chain_id=d.chain.chain_id)
    with pytest.raises(ContractError, match=r"\[dex\] factory and router"):
        Amm.from_suite(Suite(d.chain, d.cfg, empty))
    addresses = {"factory": d.amm.factory.address, "router": d.amm.router.address}
    cfg = replace(d.cfg, extra={**d.cfg.extra, "dex": addresses})
    amm = Amm.from_suite(Suite(d.chain, cfg, empty))
    assert amm.pools() == d.amm.pools()
