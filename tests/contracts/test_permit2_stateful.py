"""Conservation of funds through Permit2 and the x402 proxies, as a hypothesis state machine.

Payers sign upto and exact permits (sometimes reusing a nonce); the facilitator settles them for
any amount (within the maximum, above it, zero), replays them, and payers cancel nonces. A
model predicts each outcome; after every step the token's total supply equals the sum of all
balances, every payee holds exactly the settlements the model accepted, no settlement exceeded
its authorization, no permit moved money twice, and the proxies and Permit2 hold nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from permit2_helpers import MAX, Permit, deploy, make_permit, sign
from token_helpers import deploy_stablecoin, new_account

START = 50_000
PAYERS = [new_account() for _ in range(3)]
PAYEES = [new_account().address for _ in range(2)]


@dataclass
class Signed:
    permit: Permit
    payer: LocalAccount
    upto: bool
    settled: int = 0


_WORLD: list[tuple[Any, Any, Any, Any, str]] = []


@pytest.fixture(scope="module", autouse=True)
def world() -> Iterator[None]:
    """Token, Permit2, proxies and funded payers, deployed once for the module (titanoboa's
    pytest plugin runs each hypothesis example in a snapshot of this state)."""
    _WORLD.append(_deploy_world())
    yield
    _WORLD.clear()


def _deploy_world() -> tuple[Any, Any, Any, Any, str]:
    minter = str(boa.env.generate_address("minter"))
    usdc = deploy_stablecoin(minter)
    permit2 = deploy("Permit2")
    upto = deploy("X402UptoPermit2Proxy", permit2.address)
    exact = deploy("X402ExactPermit2Proxy", permit2.address)
    for payer in PAYERS:
        with boa.env.prank(minter):
            usdc.mint(payer.address, START)
        with boa.env.prank(payer.address):
            usdc.approve(permit2.address, MAX)
    return usdc, permit2, upto, exact, str(boa.env.generate_address("facilitator"))


class Permit2Machine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.usdc, self.permit2, self.upto, self.exact, self.facilitator = _WORLD[0]
        self.balances: dict[str, int] = {p: 0 for p in PAYEES}
        self.balances.update({payer.address: START for payer in PAYERS})
        self.used: set[tuple[str, int]] = set()
        self.signed: list[Signed] = []
        self.dirty = False  # the chain changed since the invariants last read it

    # ---- rules --------------------------------------------------------------------------
    @rule(
        payer=st.sampled_from(PAYERS),
        payee=st.sampled_from(PAYEES),
        maximum=st.integers(min_value=1, max_value=30_000),
        upto=st.booleans(),
        reuse=st.booleans(),
    )
    def sign_permit(
        self, payer: LocalAccount, payee: str, maximum: int, upto: bool, reuse: bool
    ) -> None:
        mine = [s.permit.nonce for s in self.signed if s.payer is payer]
        nonce = mine[-1] if reuse and mine else int.from_bytes(os.urandom(4), "big")
        spender = self.upto if upto else self.exact
        facilitator = self.facilitator if upto else None
        p = make_permit(
            payer.address, self.usdc, maximum, spender, payee, facilitator=facilitator, nonce=nonce
        )
        self.signed.append(Signed(sign(p, payer, self.permit2), payer, upto))

    @precondition(lambda self: self.signed)
    @rule(data=st.data(), fraction=st.integers(min_value=0, max_value=120))
    def settle(self, data: st.DataObject, fraction: int) -> None:
        s = data.draw(st.sampled_from(self.signed))
        p = s.permit
        self.dirty = True
        amount = p.amount * fraction // 100 if s.upto else p.amount
        expected = (
            (p.owner, p.nonce) not in self.used
            and 0 < amount <= p.amount
            and self.balances[p.owner] >= amount
        )
        try:
            with boa.env.prank(self.facilitator):
                if s.upto:
                    self.upto.settle(p.permit, amount, p.owner, p.witness, p.signature)
                else:
                    self.exact.settle(p.permit, p.owner, p.witness, p.signature)
        except boa.BoaError:
            assert not expected, f"a valid settlement of {amount} reverted"
            return
        assert expected, f"a settlement of {amount} the model refuses went through"
        self.used.add((p.owner, p.nonce))
        s.settled += amount
        self.balances[p.owner] -= amount
        self.balances[p.to] += amount

    @precondition(lambda self: self.signed)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        s = data.draw(st.sampled_from(self.signed))
        self.dirty = True
        with boa.env.prank(s.payer.address):
            self.permit2.invalidateUnorderedNonces(s.permit.nonce >> 8, 1 << (s.permit.nonce & 255))
        self.used.add((s.payer.address, s.permit.nonce))

    # ---- invariants ----------------------------------------------------------------------
    @invariant()
    def funds_are_conserved(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        held = {a: self.usdc.balanceOf(a) for a in self.balances}
        assert held == self.balances
        assert sum(held.values()) == self.usdc.totalSupply() == START * len(PAYERS)
        for contract in (self.permit2, self.upto, self.exact):
            assert self.usdc.balanceOf(contract.address) == 0

    @invariant()
    def nothing_exceeds_its_authorization(self) -> None:
        for s in self.signed:
            assert s.settled <= s.permit.amount
            assert s.settled == 0 or (s.permit.owner, s.permit.nonce) in self.used


TestPermit2Conservation = Permit2Machine.TestCase
TestPermit2Conservation.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
