# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title PaymentStream: tokens stream to a recipient by the second; cancellable, the rest refunded
@notice The sender funds this contract with `amount` of `token`; it streams to the recipient at
        `amount / (stop - start)` per second between `start` and `stop`:
        streamed(t) = amount * (min(t, stop) - start) / (stop - start), rounded down.
        Anyone may `withdraw()` what has streamed (it goes to the recipient). The sender or
        the recipient may `cancel()` before `stop`: the recipient is paid what has streamed,
        and the sender gets back everything else.
        Invariants (checked as properties before deployment):
        - streamed(t) never decreases, is zero before start and `amount` from stop on;
        - withdrawn <= streamed <= amount at all times;
        - a cancel pays the recipient exactly streamed - withdrawn and refunds the sender the
          rest of the balance; afterwards nothing more streams;
        - tokens go only to the recipient or, on cancel, to the sender.
"""

from ethereum.ercs import IERC20
from snekmate.utils import math

token: public(immutable(address))
sender: public(immutable(address))
recipient: public(immutable(address))
amount: public(immutable(uint256))
start: public(immutable(uint256))
stop: public(immutable(uint256))

withdrawn: public(uint256)
canceled_at: public(uint256)


event Withdrawn:
    recipient: indexed(address)
    amount: uint256


event Canceled:
    paid: uint256
    refunded: uint256


@deploy
def __init__(token_: address, sender_: address, recipient_: address, amount_: uint256, start_: uint256, stop_: uint256):
    """
    @param token_ The ERC-20 token streamed.
    @param sender_ Who funds the stream and gets the rest back on cancel.
    @param recipient_ Who receives the stream.
    @param amount_ Everything streamed from start to stop (base units).
    @param start_ Unix time the stream starts.
    @param stop_ Unix time the stream ends (after start).
    """
    assert token_ != empty(address), "stream: token is the zero address"
    assert sender_ != empty(address), "stream: sender is the zero address"
    assert recipient_ != empty(address), "stream: recipient is the zero address"
    assert recipient_ != sender_, "stream: recipient is the sender"
    assert amount_ > 0, "stream: amount is zero"
    assert stop_ > start_, "stream: stop is not after start"
    token = token_
    sender = sender_
    recipient = recipient_
    amount = amount_
    start = start_
    stop = stop_


@internal
@view
def _streamed(at: uint256) -> uint256:
    t: uint256 = min(at, stop)
    if self.canceled_at != 0:
        t = min(t, self.canceled_at)
    if t <= start:
        return 0
    return math._mul_div(amount, t - start, stop - start, False)


@external
@view
def streamed(at: uint256) -> uint256:
    """
    @dev What has streamed to the recipient by unix time `at` (paid out or not).
    """
    return self._streamed(at)


@external
@view
def withdrawable() -> uint256:
    """
    @dev What `withdraw()` would pay the recipient now.
    """
    return self._streamed(block.timestamp) - self.withdrawn


@internal
def _pay_recipient() -> uint256:
    owed: uint256 = self._streamed(block.timestamp) - self.withdrawn
    if owed > 0:
        self.withdrawn += owed
        assert extcall IERC20(token).transfer(recipient, owed, default_return_value=True)
        log Withdrawn(recipient=recipient, amount=owed)
    return owed


@external
@nonreentrant
def withdraw() -> uint256:
    """
    @dev Pays the recipient what has streamed and was not paid yet; returns the amount.
    """
    paid: uint256 = self._pay_recipient()
    assert paid > 0, "stream: nothing to withdraw"
    return paid


@external
@nonreentrant
def cancel():
    """
    @dev Stops the stream now: the recipient is paid what has streamed, the sender gets the rest.
    """
    assert msg.sender == sender or msg.sender == recipient, "stream: only the sender or the recipient cancels"
    assert self.canceled_at == 0, "stream: already canceled"
    assert block.timestamp < stop, "stream: already ended"
    self.canceled_at = max(block.timestamp, 1)
    paid: uint256 = self._pay_recipient()
    rest: uint256 = staticcall IERC20(token).balanceOf(self)
    if rest > 0:
        assert extcall IERC20(token).transfer(sender, rest, default_return_value=True)
    log Canceled(paid=paid, refunded=rest)
