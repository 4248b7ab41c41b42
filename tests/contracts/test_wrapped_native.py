"""WrappedNative.vy (WETH9 semantics) on titanoboa: wrap, unwrap, and native held == totalSupply."""

from __future__ import annotations

from typing import Any

import boa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from agentbazaar.testing import boa_deployer

ETHER = 10**18


def deploy(value: int = 0) -> Any:
    return boa_deployer("WrappedNative").deploy("Wrapped Ether", "WETH", value=value)


def funded(wei: int = 100 * ETHER) -> str:
    address = str(boa.env.generate_address())
    boa.env.set_balance(address, wei)
    return address


def test_metadata() -> None:
    weth = deploy()
    assert (weth.name(), weth.symbol(), weth.decimals()) == ("Wrapped Ether", "WETH", 18)
    assert weth.totalSupply() == 0
    assert not hasattr(weth, "mint") and not hasattr(weth, "burn")


def test_deposit_withdraw_and_plain_transfer() -> None:
    weth = deploy()
    alice = funded()
    weth.deposit(value=3 * ETHER, sender=alice)
    deposits = [e for e in weth.get_logs() if type(e).__name__ == "Deposit"]
    assert [(e.dst, e.wad) for e in deposits] == [(alice, 3 * ETHER)]
    boa.env.raw_call(str(weth.address), sender=alice, value=ETHER)  # __default__ wraps too
    assert weth.balanceOf(alice) == 4 * ETHER
    assert boa.env.get_balance(str(weth.address)) == weth.totalSupply() == 4 * ETHER
    weth.withdraw(ETHER, sender=alice)
    assert weth.balanceOf(alice) == 3 * ETHER
    assert boa.env.get_balance(alice) == 97 * ETHER
    assert boa.env.get_balance(str(weth.address)) == weth.totalSupply() == 3 * ETHER


def test_withdraw_more_than_balance_reverts() -> None:
    weth = deploy()
    alice, bob = funded(), funded()
    weth.deposit(value=ETHER, sender=alice)
    with boa.reverts("erc20: burn amount exceeds balance"):
        weth.withdraw(ETHER + 1, sender=alice)
    with boa.reverts("erc20: burn amount exceeds balance"):
        weth.withdraw(1, sender=bob)
    assert boa.env.get_balance(str(weth.address)) == ETHER


def test_transfer_from_self_needs_no_allowance() -> None:
    weth = deploy()
    alice, bob = funded(), funded()
    weth.deposit(value=ETHER, sender=alice)
    weth.transferFrom(alice, bob, ETHER // 4, sender=alice)
    with boa.reverts("erc20: insufficient allowance"):
        weth.transferFrom(alice, bob, 1, sender=bob)
    weth.approve(bob, 2**256 - 1, sender=alice)
    weth.transferFrom(alice, bob, ETHER // 4, sender=bob)
    assert weth.allowance(alice, bob) == 2**256 - 1
    assert weth.balanceOf(bob) == ETHER // 2 == weth.balanceOf(alice)


def test_deploy_with_value_wraps_for_deployer() -> None:
    deployer = funded()
    with boa.env.prank(deployer):
        weth = deploy(value=2 * ETHER)
    assert weth.balanceOf(deployer) == 2 * ETHER == boa.env.get_balance(str(weth.address))


REJECTS_ETHER = """
# pragma version ~=0.4.3
interface IWeth:
    def deposit(): payable
    def withdraw(wad: uint256): nonpayable

@external
@payable
def wrap(weth: address):
    extcall IWeth(weth).deposit(value=msg.value)

@external
def unwrap(weth: address, wad: uint256):
    extcall IWeth(weth).withdraw(wad)
"""


def test_withdraw_to_a_contract_that_refuses_ether_reverts_whole() -> None:
    weth = deploy()
    holder = boa.loads(REJECTS_ETHER)
    alice = funded()
    holder.wrap(weth.address, value=ETHER, sender=alice)
    assert weth.balanceOf(holder.address) == ETHER
    with boa.reverts(compiler="external call failed"):
        holder.unwrap(weth.address, ETHER)
    assert weth.balanceOf(holder.address) == ETHER == weth.totalSupply()


class WrappedNativeMachine(RuleBasedStateMachine):
    """Random deposits, withdrawals, transfers and approvals: native held == totalSupply."""

    @initialize()
    def setup(self) -> None:
        self.weth = deploy()
        self.users = [funded(10**6 * ETHER) for _ in range(3)]
        self.expected = dict.fromkeys(self.users, 0)

    @rule(who=st.integers(0, 2), wei=st.integers(0, 10 * ETHER))
    def deposit(self, who: int, wei: int) -> None:
        user = self.users[who]
        self.weth.deposit(value=wei, sender=user)
        self.expected[user] += wei

    @rule(who=st.integers(0, 2), wei=st.integers(0, 20 * ETHER))
    def withdraw(self, who: int, wei: int) -> None:
        user = self.users[who]
        before = boa.env.get_balance(user)
        if wei > self.expected[user]:
            with boa.reverts("erc20: burn amount exceeds balance"):
                self.weth.withdraw(wei, sender=user)
            return
        self.weth.withdraw(wei, sender=user)
        self.expected[user] -= wei
        assert boa.env.get_balance(user) == before + wei  # boa charges no gas by default

    @rule(src=st.integers(0, 2), dst=st.integers(0, 2), wei=st.integers(0, 20 * ETHER))
    def transfer_from(self, src: int, dst: int, wei: int) -> None:
        owner, spender = self.users[src], self.users[dst]
        self.weth.approve(spender, wei, sender=owner)
        if wei > self.expected[owner]:
            with boa.reverts("erc20: transfer amount exceeds balance"):
                self.weth.transferFrom(owner, spender, wei, sender=spender)
            return
        self.weth.transferFrom(owner, spender, wei, sender=spender)
        self.expected[owner] -= wei
        self.expected[spender] += wei

    @invariant()
    def native_backs_supply(self) -> None:
        held = boa.env.get_balance(str(self.weth.address))
        assert held == self.weth.totalSupply() == sum(self.expected.values())
        for user in self.users:
            assert self.weth.balanceOf(user) == self.expected[user]


TestWrappedNativeMachine = WrappedNativeMachine.TestCase
TestWrappedNativeMachine.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
