"""AmmPool / AmmFactory / AmmRouter on titanoboa: exact outputs vs agentbazaar.dex, reverts,
liquidity helpers, end-to-end quote == execution, and a stateful conservation test."""

from __future__ import annotations

import functools
import math
from typing import Any

import boa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from agentbazaar.dex import Path, Pool, amount_out, path_output, quote_routes, route_best_execution
from agentbazaar.testing import boa_deployer

DEADLINE_SLACK = 3600

TEST_TOKEN = """
# pragma version ~=0.4.3
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)

@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount

@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True

@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True

@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True
"""


@functools.cache
def token_deployer() -> Any:
    """The test token, compiled once per process."""
    return boa.loads_partial(TEST_TOKEN, name="TestToken")


MAX = 2**256 - 1


class Amm:
    """A deployed factory + router, some tokens, and a funded user who approved the router."""

    def __init__(self, n_tokens: int = 3, funds: int = 10**30) -> None:
        self.deployer = boa.env.generate_address("deployer")
        self.user = boa.env.generate_address("user")
        with boa.env.prank(self.deployer):
            blueprint = boa_deployer("AmmPool").deploy_as_blueprint()
            self.factory = boa_deployer("AmmFactory").deploy(blueprint.address)
            self.router = boa_deployer("AmmRouter").deploy(self.factory.address)
        self.pool_deployer = boa_deployer("AmmPool")
        self.tokens = [token_deployer().deploy() for _ in range(n_tokens)]
        for token in self.tokens:
            token.mint(self.user, funds)
            with boa.env.prank(self.user):
                token.approve(self.router.address, MAX)
        self.pools: list[Any] = []

    def new_pool(self, token_a: Any, token_b: Any, amount_a: int, amount_b: int) -> Any:
        address = self.factory.createPool(token_a.address, token_b.address)
        pool = self.pool_deployer.at(address)
        if pool.token0() == token_a.address:
            amounts = (amount_a, amount_b)
        else:
            amounts = (amount_b, amount_a)
        with boa.env.prank(self.user):
            pool.approve(self.router.address, MAX)
            self.router.addLiquidity(pool.address, *amounts, 0, 0, self.user, self.deadline())
        self.pools.append(pool)
        return pool

    def deadline(self) -> int:
        return boa.env.timestamp + DEADLINE_SLACK

    def snapshot(self, pool: Any) -> Pool:
        r0, r1 = pool.getReserves()
        return Pool(str(pool.address), str(pool.token0()), str(pool.token1()), r0, r1)

    def snapshots(self) -> list[Pool]:
        return [self.snapshot(pool) for pool in self.pools]

    def balance(self, token: Any, who: Any) -> int:
        return int(token.balanceOf(who))


@pytest.fixture
def amm() -> Any:
    with boa.env.anchor():
        yield Amm()


def v2_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    return amount_in * 997 * reserve_out // (reserve_in * 1000 + amount_in * 997)


def test_factory_keeps_several_pools_per_pair(amm: Amm) -> None:
    a, b, c = amm.tokens
    p1 = amm.factory.createPool(a.address, b.address)
    p2 = amm.factory.createPool(b.address, a.address)
    p3 = amm.factory.createPool(a.address, c.address)
    assert amm.factory.poolsFor(a.address, b.address) == [p1, p2]
    assert amm.factory.poolsFor(b.address, a.address) == [p1, p2]
    assert amm.factory.allPoolsLength() == 3
    assert [amm.factory.allPools(i) for i in range(3)] == [p1, p2, p3]
    assert amm.factory.isPool(p2) and not amm.factory.isPool(a.address)
    pool = amm.pool_deployer.at(p1)
    assert int(pool.token0(), 16) < int(pool.token1(), 16)
    assert pool.factory() == amm.factory.address
    with boa.reverts("identical tokens"):
        amm.factory.createPool(a.address, a.address)


def test_pool_states_pages_through_all_pools_at_one_block(amm: Amm) -> None:
    a, b, c = amm.tokens
    amm.new_pool(a, b, 10**20, 2 * 10**20)
    amm.new_pool(b, c, 3 * 10**20, 10**20)
    amm.factory.createPool(a.address, c.address)  # empty pool: reserves (0, 0)
    states = amm.factory.poolStates(0, 10)
    assert len(states) == 3
    for state, pool in zip(states, [*amm.pools, None], strict=True):
        if pool is None:
            assert state[3:] == (0, 0)
            continue
        assert state[0] == pool.address
        assert (state[1], state[2]) == (pool.token0(), pool.token1())
        assert state[3:] == pool.getReserves()
    assert amm.factory.poolStates(1, 1) == states[1:2]
    assert amm.factory.poolStates(2, 10) == states[2:]
    assert amm.factory.poolStates(3, 10) == []
    assert len(amm.factory.poolStates(0, 10**6)) == 3  # clipped, never reverts


def test_liquidity_add_and_remove_through_router(amm: Amm) -> None:
    a, b, _ = amm.tokens
    pool = amm.new_pool(a, b, 4 * 10**18, 9 * 10**18)
    shares = pool.balanceOf(amm.user)
    assert shares == math.isqrt(36 * 10**36) - 1000
    assert pool.totalSupply() == shares + 1000
    r0, r1 = pool.getReserves()
    assert (r0, r1) == (
        a.balanceOf(pool.address) if pool.token0() == a.address else b.balanceOf(pool.address),
        r1,
    )
    t0 = a if pool.token0() == a.address else b
    t1 = b if t0 is a else a
    before0, before1 = amm.balance(t0, amm.user), amm.balance(t1, amm.user)
    with boa.env.prank(amm.user):
        out0, out1 = amm.router.removeLiquidity(
            pool.address, shares // 2, 0, 0, amm.user, amm.deadline()
        )
    assert out0 == (shares // 2) * r0 // (shares + 1000)
    assert out1 == (shares // 2) * r1 // (shares + 1000)
    assert amm.balance(t0, amm.user) - before0 == out0
    assert amm.balance(t1, amm.user) - before1 == out1
    assert pool.getReserves() == (t0.balanceOf(pool.address), t1.balanceOf(pool.address))
    with boa.env.prank(amm.user), boa.reverts("insufficient token0 amount"):
        amm.router.removeLiquidity(pool.address, 10**9, 10**30, 0, amm.user, amm.deadline())


def test_add_liquidity_uses_the_pool_ratio(amm: Amm) -> None:
    a, b, _ = amm.tokens
    pool = amm.new_pool(a, b, 10**18, 2 * 10**18)
    r0, r1 = pool.getReserves()
    with boa.env.prank(amm.user):
        used0, used1, minted = amm.router.addLiquidity(
            pool.address, 10**17, 10**20, 0, 0, amm.user, amm.deadline()
        )
    assert used0 == 10**17 and used1 == 10**17 * r1 // r0
    assert minted == min(
        used0 * (pool.totalSupply() - minted) // r0, used1 * (pool.totalSupply() - minted) // r1
    )


def test_single_hop_swap_pays_the_exact_formula(amm: Amm) -> None:
    a, b, _ = amm.tokens
    pool = amm.new_pool(a, b, 10**21, 3 * 10**21)
    snap = amm.snapshot(pool)
    amount = 12_345_678_901_234_567
    expected = amount_out(snap, str(a.address), amount)
    r_in, r_out = snap.reserves_for(str(a.address))
    assert expected == v2_out(amount, r_in, r_out)
    assert amm.router.getAmountsOut([pool.address], a.address, amount) == [amount, expected]
    before = amm.balance(b, amm.user)
    with boa.env.prank(amm.user):
        got = amm.router.swapExactIn(
            [pool.address], a.address, amount, expected, amm.user, amm.deadline()
        )
    assert got == expected == amm.balance(b, amm.user) - before
    assert pool.getReserves() == (
        a.balanceOf(pool.address),
        b.balanceOf(pool.address),
    ) or pool.getReserves() == (b.balanceOf(pool.address), a.balanceOf(pool.address))


def test_multi_hop_swap_matches_python(amm: Amm) -> None:
    a, b, c = amm.tokens
    ab = amm.new_pool(a, b, 10**21, 2 * 10**21)
    bc = amm.new_pool(b, c, 5 * 10**20, 10**21)
    path = Path(
        (amm.snapshot(ab), amm.snapshot(bc)), (str(a.address), str(b.address), str(c.address))
    )
    amount = 7 * 10**18
    expected = path_output(path, amount)
    before_c = amm.balance(c, amm.user)
    with boa.env.prank(amm.user):
        got = amm.router.swapExactIn(
            [ab.address, bc.address], a.address, amount, 0, amm.user, amm.deadline()
        )
    assert got == expected == amm.balance(c, amm.user) - before_c
    assert amm.balance(b, amm.router.address) == 0  # nothing stays in the router


def test_split_swap_with_shared_pool_matches_sequential_quote(amm: Amm) -> None:
    a, b, c = amm.tokens
    ab1 = amm.new_pool(a, b, 10**21, 10**21)
    ab2 = amm.new_pool(a, b, 3 * 10**20, 3 * 10**20)
    ac = amm.new_pool(a, c, 10**21, 10**21)
    cb = amm.new_pool(c, b, 10**21, 10**21)
    snap = {p.address: amm.snapshot(p) for p in (ab1, ab2, ac, cb)}
    A, B, C = str(a.address), str(b.address), str(c.address)
    plan = [
        (Path((snap[ab1.address],), (A, B)), 4 * 10**19),
        (Path((snap[ab2.address],), (A, B)), 10**19),
        (Path((snap[ac.address], snap[cb.address]), (A, C, B)), 2 * 10**19),
        (Path((snap[ab1.address],), (A, B)), 10**19),  # shares ab1 with the first route
    ]
    quote = quote_routes(plan)
    before = amm.balance(b, amm.user)
    with boa.env.prank(amm.user):
        with boa.reverts("slippage"):
            amm.router.swapSplit(
                quote.router_routes(), a.address, quote.amount_out + 1, amm.user, amm.deadline()
            )
        got = amm.router.swapSplit(
            quote.router_routes(), a.address, quote.amount_out, amm.user, amm.deadline()
        )
    assert got == quote.amount_out == amm.balance(b, amm.user) - before


def test_reverts_slippage_deadline_unknown_pool_and_k(amm: Amm) -> None:
    a, b, _ = amm.tokens
    pool = amm.new_pool(a, b, 10**21, 10**21)
    amount = 10**18
    expected = amm.router.getAmountsOut([pool.address], a.address, amount)[-1]
    with boa.env.prank(amm.user):
        with boa.reverts("slippage"):
            amm.router.swapExactIn(
                [pool.address], a.address, amount, expected + 1, amm.user, amm.deadline()
            )
        with boa.reverts("expired"):
            amm.router.swapExactIn(
                [pool.address], a.address, amount, 0, amm.user, boa.env.timestamp - 1
            )
        with boa.reverts("unknown pool"):
            amm.router.swapExactIn([a.address], a.address, amount, 0, amm.user, amm.deadline())
        # direct V2-style swap asking one unit more than the formula allows breaks k
        a.transfer(pool.address, amount)
        t0_is_a = pool.token0() == a.address
        too_much = (0, expected + 1) if t0_is_a else (expected + 1, 0)
        with boa.reverts("k"):
            pool.swap(*too_much, amm.user)
        exact = (0, expected) if t0_is_a else (expected, 0)
        before = amm.balance(b, amm.user)
        pool.swap(*exact, amm.user)
    assert amm.balance(b, amm.user) - before == expected


def test_end_to_end_best_execution_quote_equals_execution(amm: Amm) -> None:
    a, b, c = amm.tokens
    amm.new_pool(a, b, 10**21, 2 * 10**21)
    amm.new_pool(a, b, 2 * 10**20, 4 * 10**20)
    amm.new_pool(a, c, 10**21, 10**21)
    amm.new_pool(c, b, 8 * 10**20, 1_700 * 10**18)
    amount = 10**20
    quote = route_best_execution(
        amm.snapshots(), str(a.address), str(b.address), amount, gas_price_wei=10**9
    )
    assert len(quote.routes) >= 2  # deep enough pools make splitting worth it
    before = amm.balance(b, amm.user)
    with boa.env.prank(amm.user):
        got = amm.router.swapSplit(
            quote.router_routes(), a.address, quote.min_amount_out(50), amm.user, amm.deadline()
        )
    assert got == quote.amount_out == amm.balance(b, amm.user) - before
    # the router's own view agrees route by route before execution would have, too
    assert quote.amount_in == amount


class AmmConservation(RuleBasedStateMachine):
    """Random swaps (1-2 hops, split), adds and removes on two pools of one pair plus a third
    token. Checks: k never decreases on a swap; every token's total over users and pools is
    constant; each pool's reserves equal its balances."""

    shared: Amm | None = None  # deployed once by the test below; boa anchors every example

    @initialize()
    def deploy(self) -> None:
        assert self.shared is not None
        self.amm = self.shared
        self.holders = [self.amm.user] + [p.address for p in self.amm.pools]
        self.totals = [self._total(t) for t in self.amm.tokens]

    def _total(self, token: Any) -> int:
        return sum(self.amm.balance(token, h) for h in self.holders)

    def _k(self, pool: Any) -> int:
        r0, r1 = pool.getReserves()
        return int(r0) * int(r1)

    @rule(pool_index=st.integers(0, 2), forward=st.booleans(), amount=st.integers(1, 10**21))
    def swap_one_hop(self, pool_index: int, forward: bool, amount: int) -> None:
        pool = self.amm.pools[pool_index]
        token_in = pool.token0() if forward else pool.token1()
        snap = self.amm.snapshot(pool)
        expected = amount_out(snap, str(token_in), amount)
        k_before = self._k(pool)
        with boa.env.prank(self.amm.user):
            if expected == 0:
                with boa.reverts():
                    self.amm.router.swapExactIn(
                        [pool.address], token_in, amount, 0, self.amm.user, self.amm.deadline()
                    )
                return
            got = self.amm.router.swapExactIn(
                [pool.address], token_in, amount, 0, self.amm.user, self.amm.deadline()
            )
        assert got == expected
        assert self._k(pool) >= k_before

    @rule(amount=st.integers(10**6, 10**20), first=st.integers(0, 1))
    def swap_two_hops_split(self, amount: int, first: int) -> None:
        a, _, c = self.amm.tokens
        ab = self.amm.pools[first]
        bc = self.amm.pools[2]
        routes = [
            ([ab.address, bc.address], amount),
            ([self.amm.pools[1 - first].address, bc.address], amount // 3),
        ]
        ks = [self._k(p) for p in self.amm.pools]
        snaps = {p.address: self.amm.snapshot(p) for p in self.amm.pools}
        A, B, C = str(a.address), str(self.amm.tokens[1].address), str(c.address)
        plan = [(Path(tuple(snaps[x] for x in pools), (A, B, C)), amt) for pools, amt in routes]
        try:
            quote = quote_routes(plan)
        except Exception:
            return  # a hop would pay zero; the router would revert
        with boa.env.prank(self.amm.user):
            got = self.amm.router.swapSplit(
                routes, a.address, quote.amount_out, self.amm.user, self.amm.deadline()
            )
        assert got == quote.amount_out
        assert all(self._k(p) >= k for p, k in zip(self.amm.pools, ks, strict=True))

    @rule(
        pool_index=st.integers(0, 2),
        amount0=st.integers(10**3, 10**21),
        amount1=st.integers(10**3, 10**21),
    )
    def add(self, pool_index: int, amount0: int, amount1: int) -> None:
        pool = self.amm.pools[pool_index]
        with boa.env.prank(self.amm.user):
            try:
                self.amm.router.addLiquidity(
                    pool.address, amount0, amount1, 0, 0, self.amm.user, self.amm.deadline()
                )
            except boa.BoaError:
                pass  # e.g. too little to mint one share; must change nothing (checked below)

    @rule(pool_index=st.integers(0, 2), fraction=st.integers(1, 100))
    def remove(self, pool_index: int, fraction: int) -> None:
        pool = self.amm.pools[pool_index]
        shares = pool.balanceOf(self.amm.user) * fraction // 100
        if shares == 0:
            return
        supply = pool.totalSupply()
        owed = [
            shares * self._token(t).balanceOf(pool.address) // supply
            for t in (pool.token0(), pool.token1())
        ]
        with boa.env.prank(self.amm.user):
            if 0 in owed:  # a burn that pays nothing of one token is refused (as Uniswap v2)
                with boa.reverts("insufficient liquidity burned"):
                    self.amm.router.removeLiquidity(
                        pool.address, shares, 0, 0, self.amm.user, self.amm.deadline()
                    )
                return  # and changes nothing (the invariant checks it)
            self.amm.router.removeLiquidity(
                pool.address, shares, 0, 0, self.amm.user, self.amm.deadline()
            )

    @invariant()
    def tokens_are_conserved_and_reserves_match(self) -> None:
        if not hasattr(self, "amm"):
            return
        assert [self._total(t) for t in self.amm.tokens] == self.totals
        for pool in self.amm.pools:
            r0, r1 = pool.getReserves()
            assert (r0, r1) == (
                self._token(pool.token0()).balanceOf(pool.address),
                self._token(pool.token1()).balanceOf(pool.address),
            )
        for token in self.amm.tokens:
            assert token.balanceOf(self.amm.router.address) == 0

    def _token(self, address: Any) -> Any:
        return next(t for t in self.amm.tokens if t.address == address)


def test_amm_conservation() -> None:
    amm = Amm(funds=10**24)
    a, b, c = amm.tokens
    amm.new_pool(a, b, 10**21, 10**21)
    amm.new_pool(a, b, 10**20, 3 * 10**20)
    amm.new_pool(b, c, 10**21, 5 * 10**20)
    AmmConservation.shared = amm
    try:
        run_state_machine_as_test(
            AmmConservation,
            settings=settings(max_examples=25, stateful_step_count=12, deadline=None),
        )
    finally:
        AmmConservation.shared = None
