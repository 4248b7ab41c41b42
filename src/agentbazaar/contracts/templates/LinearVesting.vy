# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title LinearVesting: tokens vest linearly to one beneficiary, nothing before a cliff
@notice Everything this contract holds of `token` vests to `beneficiary`: nothing before
        `start + cliff`, then `total * (t - start) / duration` (rounded down), and all of it
        from `start + duration` on, where `total` is the balance plus what was released.
        Anyone may call `release()`; the tokens always go to the beneficiary. There is no
        owner and no way to take the tokens back: the terms are the constructor arguments.
        Invariants (checked as properties before deployment):
        - nothing is releasable before the cliff;
        - vested(t) never decreases and never exceeds the total; it is the total at the end;
        - released + balance == total, and only the beneficiary ever receives tokens.
"""

from ethereum.ercs import IERC20
from snekmate.utils import math

token: public(immutable(address))
beneficiary: public(immutable(address))
start: public(immutable(uint256))
cliff: public(immutable(uint256))
duration: public(immutable(uint256))

released: public(uint256)


event Released:
    beneficiary: indexed(address)
    amount: uint256


@deploy
def __init__(token_: address, beneficiary_: address, start_: uint256, cliff_: uint256, duration_: uint256):
    """
    @param token_ The ERC-20 token that vests.
    @param beneficiary_ Who receives the vested tokens.
    @param start_ Unix time the vesting starts.
    @param cliff_ Seconds after `start_` before anything vests (at most `duration_`).
    @param duration_ Seconds from `start_` until everything has vested (more than zero).
    """
    assert token_ != empty(address), "vesting: token is the zero address"
    assert beneficiary_ != empty(address), "vesting: beneficiary is the zero address"
    assert duration_ > 0, "vesting: duration is zero"
    assert cliff_ <= duration_, "vesting: cliff longer than the vesting"
    token = token_
    beneficiary = beneficiary_
    start = start_
    cliff = cliff_
    duration = duration_


@internal
@view
def _vested(total: uint256, at: uint256) -> uint256:
    if at < start + cliff:
        return 0
    if at >= start + duration:
        return total
    return math._mul_div(total, at - start, duration, False)


@internal
@view
def _total() -> uint256:
    return staticcall IERC20(token).balanceOf(self) + self.released


@external
@view
def vested_amount(at: uint256) -> uint256:
    """
    @dev What has vested by unix time `at`, given the current total.
    """
    return self._vested(self._total(), at)


@external
@view
def releasable() -> uint256:
    """
    @dev What `release()` would pay the beneficiary now.
    """
    return self._vested(self._total(), block.timestamp) - self.released


@external
@nonreentrant
def release() -> uint256:
    """
    @dev Pays the beneficiary everything vested and not yet released; returns the amount.
    """
    amount: uint256 = self._vested(self._total(), block.timestamp) - self.released
    assert amount > 0, "vesting: nothing to release"
    self.released += amount
    assert extcall IERC20(token).transfer(beneficiary, amount, default_return_value=True)
    log Released(beneficiary=beneficiary, amount=amount)
    return amount
