"""RevenueSplitter.vy: shares, pull payments, upstream royalties; every revert; conservation."""

from __future__ import annotations

import warnings
from typing import Any

import boa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from token_helpers import deploy_stablecoin

from agentbazaar.testing import boa_deployer as deployer_of

SPLITTER = "RevenueSplitter"
ZERO = "0x0000000000000000000000000000000000000000"
BPS = 10_000

# A token whose transfer can be switched to return false (what some ERC-20s do on failure).
FAILING_TOKEN = """
# pragma version ~=0.4.3
balanceOf: public(HashMap[address, uint256])
fail: public(bool)

@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount

@external
def setFail(flag: bool):
    self.fail = flag

@external
def transfer(to: address, amount: uint256) -> bool:
    if self.fail:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True
"""


def addr(name: str) -> str:
    return str(boa.env.generate_address(name))


def deploy(
    token: Any,
    payees: list[str],
    shares: list[int],
    upstreams: list[str] | None = None,
    bps: list[int] | None = None,
    owner: str = ZERO,
) -> Any:
    token_address = token if isinstance(token, str) else token.address
    return deployer_of(SPLITTER).deploy(
        token_address, payees, shares, upstreams or [], bps or [], owner
    )


@pytest.fixture
def usdc_token(minter: str) -> Any:
    return deploy_stablecoin(minter)


def pay(token: Any, minter: str, to: Any, amount: int) -> None:
    with boa.env.prank(minter):
        token.mint(to if isinstance(to, str) else to.address, amount)


# ---- behaviour -------------------------------------------------------------------------------
def test_split_by_shares_with_the_remainder_carried(usdc_token: Any, minter: str) -> None:
    a, b, c = addr("a"), addr("b"), addr("c")
    splitter = deploy(usdc_token, [a, b, c], [1, 1, 1])
    pay(usdc_token, minter, splitter, 100)
    assert splitter.releasable(a) == 33
    assert splitter.release(a) == 33
    assert usdc_token.balanceOf(a) == 33
    assert splitter.carry() == 1  # 100 - 3 * 33, kept for the next split
    pay(usdc_token, minter, splitter, 2)  # pool = 2 + 1 = 3: one each
    assert [splitter.release(x) for x in (a, b, c)] == [1, 34, 34]
    assert splitter.carry() == 0
    assert usdc_token.balanceOf(splitter.address) == 0
    assert splitter.totalReceived() == 102 == splitter.totalReleased()


def test_upstream_royalties_are_pushed_and_chain(usdc_token: Any, minter: str) -> None:
    root_payee, mid_payee, leaf_payee = addr("root"), addr("mid"), addr("leaf")
    root = deploy(usdc_token, [root_payee], [1])
    mid = deploy(usdc_token, [mid_payee], [1], [root.address], [2_000])  # 20% to root
    leaf = deploy(usdc_token, [leaf_payee], [1], [mid.address], [1_000])  # 10% to mid
    pay(usdc_token, minter, leaf, 1_000_000)
    assert leaf.distribute() == 1_000_000
    assert usdc_token.balanceOf(mid.address) == 100_000
    assert mid.distribute() == 100_000
    assert usdc_token.balanceOf(root.address) == 20_000
    assert root.release(root_payee) == 20_000
    assert mid.release(mid_payee) == 80_000
    assert leaf.release(leaf_payee) == 900_000


def test_royalty_rounds_down_and_the_rest_goes_to_payees(usdc_token: Any, minter: str) -> None:
    up, payee = addr("up"), addr("payee")
    splitter = deploy(usdc_token, [payee], [1], [up], [333])
    pay(usdc_token, minter, splitter, 7)  # 7 * 333 / 10000 = 0.23 -> 0
    assert splitter.release(payee) == 7
    assert usdc_token.balanceOf(up) == 0


def test_owner_changes_shares_after_distributing_under_the_old_ones(
    usdc_token: Any, minter: str
) -> None:
    owner, a, b = addr("owner"), addr("a"), addr("b")
    splitter = deploy(usdc_token, [a], [1], owner=owner)
    pay(usdc_token, minter, splitter, 90)
    with boa.env.prank(owner):
        splitter.addShares(b, 2)  # the 90 received before belong to a alone
    pay(usdc_token, minter, splitter, 30)
    assert splitter.release(a) == 100
    assert splitter.release(b) == 20
    with boa.env.prank(owner):
        splitter.setShares([b], [5])
    pay(usdc_token, minter, splitter, 10)
    assert splitter.releasable(a) == 0
    assert splitter.release(b) == 10
    assert splitter.payeeCount() == 1


def test_release_with_nothing_owed_pays_nothing(usdc_token: Any) -> None:
    a = addr("a")
    splitter = deploy(usdc_token, [a], [1])
    assert splitter.release(a) == 0
    assert splitter.distribute() == 0


def test_ownership_moves_and_a_splitter_without_owner_is_fixed(usdc_token: Any) -> None:
    owner, new_owner, a = addr("owner"), addr("new"), addr("a")
    splitter = deploy(usdc_token, [a], [1], owner=owner)
    with boa.env.prank(owner):
        splitter.transferOwnership(new_owner)
    with boa.env.prank(new_owner):
        splitter.addShares(a, 1)
    assert splitter.totalShares() == 2
    fixed = deploy(usdc_token, [a], [1])
    with boa.env.prank(ZERO), boa.reverts("splitter: caller is not the owner"):
        fixed.addShares(a, 1)


# ---- every revert ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payees", "shares", "upstreams", "bps", "reason"),
    [
        (["a"], [1], ["u"], [], "splitter: upstreams and royalties differ in length"),
        (["a"], [1], [ZERO], [10], "splitter: bad upstream"),
        (["a"], [1], ["u"], [0], "splitter: zero royalty"),
        (["a"], [1], ["u", "v"], [6_000, 4_001], "splitter: royalties above 100%"),
        ([], [], [], [], "splitter: no payees"),
        (["a", "b"], [1], [], [], "splitter: payees and shares differ in length"),
        ([ZERO], [1], [], [], "splitter: zero payee"),
        (["a"], [0], [], [], "splitter: zero shares"),
        (["a", "a"], [1, 1], [], [], "splitter: duplicate payee"),
    ],
)
def test_bad_set_up_is_refused(
    usdc_token: Any,
    payees: list[str],
    shares: list[int],
    upstreams: list[str],
    bps: list[int],
    reason: str,
) -> None:
    names = {n: addr(n) for n in ("a", "b", "u", "v")}

    def resolve(xs: list[str]) -> list[str]:
        return [names.get(x, x) for x in xs]

    with boa.reverts(reason):
        deploy(usdc_token, resolve(payees), shares, resolve(upstreams), bps)


def test_royalties_of_exactly_100_percent_are_allowed(usdc_token: Any, minter: str) -> None:
    up, a = addr("up"), addr("a")
    splitter = deploy(usdc_token, [a], [1], [up], [BPS])
    pay(usdc_token, minter, splitter, 10)
    assert splitter.release(a) == 0
    assert usdc_token.balanceOf(up) == 10


def test_self_as_upstream_and_double_initialize_are_refused(usdc_token: Any) -> None:
    a = addr("a")
    splitter = deploy(usdc_token, [a], [1])
    with boa.reverts("splitter: already initialized"):
        splitter.initialize(usdc_token.address, [a], [1], [], [], ZERO)
    implementation = deployer_of(SPLITTER).deploy(ZERO, [], [], [], [], ZERO)
    with boa.reverts("splitter: already initialized"):
        implementation.initialize(usdc_token.address, [a], [1], [], [], ZERO)
    fresh = boa.loads(_CLONE_FACTORY).clone(implementation.address)
    with warnings.catch_warnings():  # a clone's code is the EIP-1167 proxy, not the splitter's
        warnings.simplefilter("ignore")
        clone = deployer_of(SPLITTER).at(fresh)
    with boa.reverts("splitter: bad upstream"):
        clone.initialize(usdc_token.address, [a], [1], [fresh], [10], ZERO)
    with boa.reverts("splitter: zero token"):
        clone.initialize(ZERO, [a], [1], [], [], ZERO)


_CLONE_FACTORY = """
# pragma version ~=0.4.3
@external
def clone(target: address) -> address:
    return create_minimal_proxy_to(target)
"""


def test_owner_only_functions_refuse_others(usdc_token: Any) -> None:
    owner, a = addr("owner"), addr("a")
    splitter = deploy(usdc_token, [a], [1], owner=owner)
    with boa.reverts("splitter: caller is not the owner"):
        splitter.setShares([a], [2])
    with boa.reverts("splitter: caller is not the owner"):
        splitter.addShares(a, 1)
    with boa.reverts("splitter: caller is not the owner"):
        splitter.transferOwnership(a)
    with boa.env.prank(owner):
        with boa.reverts("splitter: zero payee"):
            splitter.addShares(ZERO, 1)
        with boa.reverts("splitter: zero shares"):
            splitter.addShares(a, 0)
        with boa.reverts("splitter: duplicate payee"):
            splitter.setShares([a, a], [1, 1])


def test_payee_count_is_bounded(usdc_token: Any) -> None:
    owner = addr("owner")
    payees = [addr(f"p{i}") for i in range(64)]
    splitter = deploy(usdc_token, payees, [1] * 64, owner=owner)
    with boa.env.prank(owner), boa.reverts("splitter: too many payees"):
        splitter.addShares(addr("one-too-many"), 1)


def test_failed_transfers_revert() -> None:
    token = boa.loads(FAILING_TOKEN)
    up, a = addr("up"), addr("a")
    splitter = deploy(token.address, [a], [1], [up], [1_000])
    token.mint(splitter.address, 100)
    token.setFail(True)
    with boa.reverts("splitter: royalty transfer failed"):
        splitter.distribute()
    token.setFail(False)
    splitter.distribute()
    token.setFail(True)
    with boa.reverts("splitter: transfer failed"):
        splitter.release(a)


# ---- conservation under hypothesis -----------------------------------------------------------
class SplitterChain(RuleBasedStateMachine):
    """Three splitters in a royalty chain (leaf -> mid -> root), income arriving at any of them,
    distributions, releases and share changes in any order, checked against an integer model."""

    def __init__(self) -> None:
        super().__init__()
        self.minter = addr("chain-minter")
        self.token = deploy_stablecoin(self.minter)
        self.owner = addr("chain-owner")
        self.accounts = [addr(f"payee-{i}") for i in range(5)]
        self.root = deploy(self.token, self.accounts[:2], [3, 1], owner=self.owner)
        self.mid = deploy(
            self.token, self.accounts[1:4], [1, 1, 1], [self.root.address], [1_500], self.owner
        )
        self.leaf = deploy(
            self.token,
            [self.accounts[4], self.accounts[0]],
            [2, 5],
            [self.mid.address],
            [777],
            self.owner,
        )
        self.splitters = [self.root, self.mid, self.leaf]
        self.minted = 0
        self.model = {
            self.root.address: _Model(self.root, []),
            self.mid.address: _Model(self.mid, [(self.root.address, 1_500)]),
            self.leaf.address: _Model(self.leaf, [(self.mid.address, 777)]),
        }

    @rule(which=st.integers(0, 2), amount=st.integers(1, 10**12))
    def income(self, which: int, amount: int) -> None:
        pay(self.token, self.minter, self.splitters[which], amount)
        self.minted += amount

    @rule(which=st.integers(0, 2))
    def distribute(self, which: int) -> None:
        splitter = self.splitters[which]
        self.model[splitter.address].distribute(self.token, self.model)
        splitter.distribute()

    @rule(which=st.integers(0, 2), who=st.integers(0, 4))
    def release(self, which: int, who: int) -> None:
        splitter, account = self.splitters[which], self.accounts[who]
        expected = self.model[splitter.address].release(account, self.token, self.model)
        before = self.token.balanceOf(account)
        assert splitter.release(account) == expected
        assert self.token.balanceOf(account) - before == expected

    @rule(which=st.integers(0, 2), who=st.integers(0, 4), amount=st.integers(1, 1_000))
    def add_shares(self, which: int, who: int, amount: int) -> None:
        splitter = self.splitters[which]
        self.model[splitter.address].distribute(self.token, self.model)
        self.model[splitter.address].add(self.accounts[who], amount)
        with boa.env.prank(self.owner):
            splitter.addShares(self.accounts[who], amount)

    @invariant()
    def conserved(self) -> None:
        paid_out = sum(self.token.balanceOf(a) for a in self.accounts)
        held = sum(self.token.balanceOf(s.address) for s in self.splitters)
        assert paid_out + held == self.minted
        for splitter in self.splitters:
            model = self.model[splitter.address]
            assert (splitter.held(), splitter.carry()) == (model.held, model.carry)
            assert self.token.balanceOf(splitter.address) >= model.held

    @rule(which=st.integers(0, 2))
    def exact_to_the_unit(self, which: int) -> None:
        splitter = self.splitters[which]
        model = self.model[splitter.address]
        for account in self.accounts:
            assert splitter.owed(account) == model.owed.get(account, 0)
        assert splitter.totalReceived() == (
            splitter.totalReleased() + splitter.totalRoyalties() + splitter.held()
        )

    @rule()
    def releasable_matches_release(self) -> None:
        account = self.accounts[0]
        predicted = self.leaf.releasable(account)
        with boa.env.anchor():
            assert self.leaf.release(account) == predicted


class _Model:
    """The split in plain integers: what the contract must compute, unit for unit."""

    def __init__(self, splitter: Any, upstreams: list[tuple[str, int]]) -> None:
        self.address = splitter.address
        payees = [splitter.payees(i) for i in range(splitter.payeeCount())]
        self.shares = {p: splitter.shares(p) for p in payees}
        self.order = list(payees)
        self.upstreams = upstreams
        self.owed: dict[str, int] = {}
        self.carry = 0
        self.held = 0

    def distribute(self, token: Any, models: dict[str, _Model]) -> None:
        income = token.balanceOf(self.address) - self.held
        if income <= 0:
            return
        royalties = sum(income * bps // BPS for _, bps in self.upstreams)
        pool = income - royalties + self.carry
        total = sum(self.shares.values())
        credited = 0
        for payee in self.order:
            part = pool * self.shares[payee] // total
            self.owed[payee] = self.owed.get(payee, 0) + part
            credited += part
        self.carry = pool - credited
        self.held += income - royalties

    def release(self, account: str, token: Any, models: dict[str, _Model]) -> int:
        self.distribute(token, models)
        amount = self.owed.pop(account, 0)
        self.held -= amount
        return amount

    def add(self, account: str, amount: int) -> None:
        if account not in self.shares:
            self.order.append(account)
            self.shares[account] = 0
        self.shares[account] += amount


SplitterChain.TestCase.settings = settings(max_examples=6, stateful_step_count=20, deadline=None)
test_splitter_chain_conserves_funds_exactly = SplitterChain.TestCase
