"""The stake registry on a real EVM: bonding by EIP-3009, listing thresholds, delayed unbonding,
the court's locks and slashes, and the slashing rules of its docstring as stateful invariants."""

from __future__ import annotations

import os

import boa
from escrow_world import DAY, MIN_PROVIDER, MIN_VALIDATOR, UNBOND, USDC, World
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from agentbazaar.jobs import model


def test_bond_lists_providers_and_validators_above_their_minimums(world: World) -> None:
    provider, validator = world.account(), world.account()
    world.bond(provider, MIN_PROVIDER - 1, model.ROLE_PROVIDER)
    assert not world.stake.isProvider(provider.address)
    world.bond(provider, 1, model.ROLE_PROVIDER)
    assert world.stake.isProvider(provider.address)
    world.bond(validator, MIN_VALIDATOR, model.ROLE_VALIDATOR)
    assert world.stake.isValidator(validator.address) and not world.stake.isProvider(validator.address)  # fmt: skip
    assert world.stake.validatorCount() == 1 and world.stake.validatorAt(0) == validator.address
    assert world.balance(world.stake) == MIN_PROVIDER + MIN_VALIDATOR == world.stake.totalStaked()


def test_a_relayer_cannot_change_the_roles_the_signature_bought(world: World) -> None:
    acct, salt = world.account(usdc=MIN_VALIDATOR), os.urandom(32)
    nonce = model.bond_nonce(model.ROLE_PROVIDER, salt)
    assert world.stake.bondNonce(model.ROLE_PROVIDER, salt) == nonce
    sig = world.sign_receive(acct, world.stake.address, MIN_VALIDATOR, nonce)
    with boa.reverts("invalid signature"):
        world.stake.bondWithAuthorization(acct.address, MIN_VALIDATOR, model.ROLE_VALIDATOR, 0, world.now + DAY, salt, sig)  # fmt: skip
    world.stake.bondWithAuthorization(acct.address, MIN_VALIDATOR, model.ROLE_PROVIDER, 0, world.now + DAY, salt, sig)  # fmt: skip
    assert world.stake_of(acct)[3] == model.ROLE_PROVIDER


def test_unbonding_waits_for_the_delay(world: World) -> None:
    acct = world.account()
    world.bond(acct, 60 * USDC, model.ROLE_VALIDATOR)
    with boa.env.prank(acct.address):
        with boa.reverts("stake: nothing is unbonding"):
            world.stake.withdraw()
        with boa.reverts("stake: more than is bonded"):
            world.stake.requestUnbond(61 * USDC)
        with boa.reverts("stake: zero amount"):
            world.stake.requestUnbond(0)
        world.stake.requestUnbond(20 * USDC)
        assert not world.stake.isValidator(acct.address)  # 40 left: below the minimum, unlisted
        boa.env.time_travel(seconds=UNBOND - 1)
        with boa.reverts("stake: still unbonding"):
            world.stake.withdraw()
        boa.env.time_travel(seconds=1)
        world.stake.withdraw()
    assert world.balance(acct) == 20 * USDC and world.stake_of(acct)[:2] == (40 * USDC, 0)


def test_only_the_court_locks_and_slashes_and_the_court_is_linked_once(world: World) -> None:
    acct = world.account()
    world.bond(acct, 10 * USDC, model.ROLE_PROVIDER)
    for call in (
        lambda: world.stake.lock(acct.address),
        lambda: world.stake.unlock(acct.address),
        lambda: world.stake.slash(acct.address, 1_000, acct.address),
    ):
        with boa.reverts("stake: only the court"):
            call()
    with boa.reverts("stake: only the deployer links the court"):
        world.stake.link(acct.address)
    with boa.env.prank(world.deployer), boa.reverts("stake: court already linked"):
        world.stake.link(acct.address)
    with boa.env.prank(world.escrow.address):
        with boa.reverts("stake: slash above 100%"):
            world.stake.slash(acct.address, 10_001, acct.address)
        with boa.reverts("stake: not locked"):
            world.stake.unlock(acct.address)


def test_bad_bonds_revert(world: World) -> None:
    acct = world.account(usdc=10 * USDC)
    for roles, reason in ((0, "stake: roles must be 1 (provider), 2 (validator) or 3"), (4, "stake: roles must be 1 (provider), 2 (validator) or 3")):  # fmt: skip
        with boa.reverts(reason):
            world.stake.bondWithAuthorization(acct.address, 1, roles, 0, world.now + DAY, b"\0" * 32, b"")  # fmt: skip
    with boa.reverts("stake: zero amount"):
        world.stake.bondWithAuthorization(acct.address, 0, 1, 0, world.now + DAY, b"\0" * 32, b"")


class SlashingRules(RuleBasedStateMachine):
    """Random bonds, unbonds, withdrawals, waits, locks and slashes by the court: the stake is
    conserved, locked stake only ever shrinks by a slash, each slash is exactly bps of the
    stake and lands with its recipient, and the validator set is exactly who qualifies."""

    world: World

    @initialize()
    def start(self) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.accounts: list[LocalAccount] = [self.world.account() for _ in range(4)]
        self.sink = self.world.account().address
        self.slashed = 0
        self.withdrawn = 0
        self.bonded_in = 0

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    def _pick(self, i: int) -> LocalAccount:
        return self.accounts[i % len(self.accounts)]

    @rule(i=st.integers(0, 3), amount=st.integers(1, 80 * USDC), roles=st.integers(1, 3))
    def bond(self, i: int, amount: int, roles: int) -> None:
        self.world.bond(self._pick(i), amount, roles)
        self.bonded_in += amount

    @rule(i=st.integers(0, 3), amount=st.integers(1, 80 * USDC))
    def request_unbond(self, i: int, amount: int) -> None:
        acct = self._pick(i)
        bonded, _u, _t, _r, locks = self.world.stake_of(acct)
        with boa.env.prank(acct.address):
            if locks or amount > bonded:
                with boa.reverts():
                    self.world.stake.requestUnbond(amount)
            else:
                self.world.stake.requestUnbond(amount)

    @rule(i=st.integers(0, 3))
    def withdraw(self, i: int) -> None:
        acct = self._pick(i)
        _b, unbonding, unlock_at, _r, locks = self.world.stake_of(acct)
        before = self.world.balance(acct)
        with boa.env.prank(acct.address):
            if locks or not unbonding or self.world.now < unlock_at:
                with boa.reverts():
                    self.world.stake.withdraw()
                return
            self.world.stake.withdraw()
        assert self.world.balance(acct) - before == unbonding
        self.withdrawn += unbonding

    @rule(days=st.integers(0, 10))
    def wait(self, days: int) -> None:
        boa.env.time_travel(seconds=days * DAY)

    @rule(i=st.integers(0, 3), lock=st.booleans())
    def lock_or_unlock(self, i: int, lock: bool) -> None:
        acct = self._pick(i)
        locks = self.world.stake_of(acct)[4]
        with boa.env.prank(self.world.escrow.address):
            if lock:
                self.world.stake.lock(acct.address)
            elif locks:
                self.world.stake.unlock(acct.address)

    @rule(i=st.integers(0, 3), bps=st.sampled_from([0, 1, 1_000, 2_000, 10_000]))
    def slash(self, i: int, bps: int) -> None:
        acct = self._pick(i)
        bonded, unbonding, *_ = self.world.stake_of(acct)
        sink_before = self.world.balance(self.sink)
        with boa.env.prank(self.world.escrow.address):
            self.world.stake.slash(acct.address, bps, self.sink)
        expected = (bonded + unbonding) * bps // 10_000
        after_b, after_u, *_ = self.world.stake_of(acct)
        assert bonded + unbonding - (after_b + after_u) == expected
        assert after_b == max(bonded - expected, 0)  # bonded stake goes first
        assert self.world.balance(self.sink) - sink_before == expected
        self.slashed += expected

    @invariant()
    def stake_is_conserved(self) -> None:
        if not hasattr(self, "accounts"):
            return
        w = self.world
        held = sum(sum(w.stake_of(a)[:2]) for a in self.accounts)
        assert w.balance(w.stake) == held == w.stake.totalStaked()
        assert self.bonded_in == held + self.slashed + self.withdrawn
        assert w.balance(self.sink) == self.slashed

    @invariant()
    def validator_set_is_who_qualifies(self) -> None:
        if not hasattr(self, "accounts"):
            return
        w = self.world
        qualified = {
            a.address
            for a in self.accounts
            if w.stake_of(a)[3] & model.ROLE_VALIDATOR and w.stake_of(a)[0] >= MIN_VALIDATOR
        }
        listed = {str(w.stake.validatorAt(i)) for i in range(int(w.stake.validatorCount()))}
        assert listed == qualified
        assert all(w.stake.isValidator(a) for a in qualified)


def test_slashing_rules_hold_as_invariants(world: World) -> None:
    SlashingRules.world = world
    run_state_machine_as_test(
        SlashingRules,
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
