# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Escrow: tokens held for a payee until an arbiter approves, refunded after a deadline
@notice The payer funds this contract with `amount` of `token` (a plain transfer). Before
        `deadline` the arbiter may `release()` the escrowed tokens to the payee; the arbiter,
        or the payee waiving them, may `refund()` them to the payer at any time; from the
        deadline on anyone may `refund()`. Exactly one of the two happens, once.
        Invariants (checked as properties before deployment):
        - only the arbiter releases, only before the deadline, only when funded;
        - after the deadline nothing can be released and anyone can refund;
        - one outcome at most: after it, release and refund revert;
        - the escrowed tokens go, all of them, to the payee or to the payer, nowhere else.
"""

from ethereum.ercs import IERC20

OPEN: constant(uint8) = 0
RELEASED: constant(uint8) = 1
REFUNDED: constant(uint8) = 2

token: public(immutable(address))
payer: public(immutable(address))
payee: public(immutable(address))
arbiter: public(immutable(address))
amount: public(immutable(uint256))
deadline: public(immutable(uint256))

state: public(uint8)


event Settled:
    to: indexed(address)
    amount: uint256
    released: bool


@deploy
def __init__(
    token_: address, payer_: address, payee_: address, arbiter_: address, amount_: uint256, deadline_: uint256
):
    """
    @param token_ The ERC-20 token held.
    @param payer_ Who funds the escrow and gets a refund.
    @param payee_ Who receives the tokens when the arbiter approves.
    @param arbiter_ Who approves (or refunds) before the deadline.
    @param amount_ What must be escrowed before the arbiter can release it (base units).
    @param deadline_ Unix time from which only a refund is possible.
    """
    assert token_ != empty(address), "escrow: token is the zero address"
    assert payer_ != empty(address), "escrow: payer is the zero address"
    assert payee_ != empty(address), "escrow: payee is the zero address"
    assert arbiter_ != empty(address), "escrow: arbiter is the zero address"
    assert payee_ != payer_, "escrow: payee is the payer"
    assert amount_ > 0, "escrow: amount is zero"
    assert deadline_ > block.timestamp, "escrow: deadline is not in the future"
    token = token_
    payer = payer_
    payee = payee_
    arbiter = arbiter_
    amount = amount_
    deadline = deadline_


@internal
@view
def _held() -> uint256:
    return staticcall IERC20(token).balanceOf(self)


@external
@view
def held() -> uint256:
    """
    @dev The tokens escrowed now.
    """
    return self._held()


@external
@nonreentrant
def release():
    """
    @dev The arbiter approves: every escrowed token goes to the payee.
    """
    assert msg.sender == arbiter, "escrow: only the arbiter releases"
    assert self.state == OPEN, "escrow: already settled"
    assert block.timestamp < deadline, "escrow: the deadline has passed"
    held: uint256 = self._held()
    assert held >= amount, "escrow: not funded"
    self.state = RELEASED
    assert extcall IERC20(token).transfer(payee, held, default_return_value=True)
    log Settled(to=payee, amount=held, released=True)


@external
@nonreentrant
def refund():
    """
    @dev Every escrowed token goes back to the payer: by the arbiter or the payee at any
         time, by anyone from the deadline on.
    """
    assert self.state == OPEN, "escrow: already settled"
    assert msg.sender == arbiter or msg.sender == payee or block.timestamp >= deadline, (
        "escrow: only the arbiter or the payee refunds before the deadline"
    )
    held: uint256 = self._held()
    self.state = REFUNDED
    assert extcall IERC20(token).transfer(payer, held, default_return_value=True)
    log Settled(to=payer, amount=held, released=False)
