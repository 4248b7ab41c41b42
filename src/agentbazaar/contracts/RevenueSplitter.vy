# pragma version ~=0.4.3
"""
@title RevenueSplitter
@notice Splits the ERC-20 income of one token among payees by shares, with optional upstream
        royalties, and lets each payee pull what it is owed. One contract, two uses: a
        dataset's revenue (DatasetRegistry clones it per dataset; parents are the upstreams)
        and a stand-alone "revenue splitter" (deployed directly with constructor arguments).

        Income is whatever the contract holds beyond what it has already accounted (`held`):
        plain transfers, x402 payments, royalties from downstream splitters. `distribute()`
        (anyone may call it; `release` and every share change call it first) accounts the
        new income exactly once, in integers:
          1. each upstream i gets floor(income * bps_i / 10000), pushed to it at once;
          2. the rest plus the previous remainder (`carry`) is split:
             payee p is credited floor(pool * shares_p / totalShares);
          3. what the floors leave (fewer units than there are payees) is `carry`, held here
             and added to the next split, so no unit is lost and none is paid twice.
        Invariants: balance >= held == sum(owed) + carry after every call, and
        totalReceived == totalReleased + totalRoyalties + held: never more out than in.

        A clone is set up once with `initialize`; the implementation itself is deployed with
        the zero token and can never be initialized. The owner (DatasetRegistry for datasets,
        any address or none for a stand-alone splitter) may change shares; income that arrived
        before a change is distributed under the old shares first.
"""

from ethereum.ercs import IERC20

MAX_PAYEES: constant(uint256) = 64
MAX_UPSTREAMS: constant(uint256) = 8
BPS: constant(uint256) = 10_000


event SharesSet:
    payee: indexed(address)
    shares: uint256


event Distributed:
    income: uint256
    royalties: uint256
    credited: uint256
    carry: uint256


event RoyaltyPaid:
    upstream: indexed(address)
    amount: uint256


event Released:
    payee: indexed(address)
    amount: uint256


event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)


token: public(address)
owner: public(address)
initialized: public(bool)
payees: public(DynArray[address, MAX_PAYEES])
shares: public(HashMap[address, uint256])
totalShares: public(uint256)
upstreams: public(DynArray[address, MAX_UPSTREAMS])
upstreamBps: public(DynArray[uint256, MAX_UPSTREAMS])
owed: public(HashMap[address, uint256])
carry: public(uint256)
held: public(uint256)
totalReceived: public(uint256)
totalReleased: public(uint256)
totalRoyalties: public(uint256)


@deploy
def __init__(
    token_: address,
    payees_: DynArray[address, MAX_PAYEES],
    shares_: DynArray[uint256, MAX_PAYEES],
    upstreams_: DynArray[address, MAX_UPSTREAMS],
    bps_: DynArray[uint256, MAX_UPSTREAMS],
    owner_: address,
):
    """
    @param token_ The token split; the zero address deploys an implementation for clones.
    """
    if token_ == empty(address):
        self.initialized = True
        return
    self._initialize(token_, payees_, shares_, upstreams_, bps_, owner_)


@external
def initialize(
    token_: address,
    payees_: DynArray[address, MAX_PAYEES],
    shares_: DynArray[uint256, MAX_PAYEES],
    upstreams_: DynArray[address, MAX_UPSTREAMS],
    bps_: DynArray[uint256, MAX_UPSTREAMS],
    owner_: address,
):
    assert not self.initialized, "splitter: already initialized"
    self._initialize(token_, payees_, shares_, upstreams_, bps_, owner_)


@external
@nonreentrant
def distribute() -> uint256:
    """
    @notice Account the income received since the last call; returns its amount.
    """
    return self._distribute()


@external
@nonreentrant
def release(account: address) -> uint256:
    """
    @notice Pay `account` everything it is owed (after distributing new income).
    """
    self._distribute()
    amount: uint256 = self.owed[account]
    if amount == 0:
        return 0
    self.owed[account] = 0
    self.held -= amount
    self.totalReleased += amount
    assert extcall IERC20(self.token).transfer(account, amount, default_return_value=True), "splitter: transfer failed"
    log Released(payee=account, amount=amount)
    return amount


@external
@view
def releasable(account: address) -> uint256:
    """
    @notice What `release(account)` would pay now.
    """
    income: uint256 = self._income()
    royalties: uint256 = 0
    for bps: uint256 in self.upstreamBps:
        royalties += income * bps // BPS
    pool: uint256 = income - royalties + self.carry
    if income == 0:
        pool = 0
    return self.owed[account] + pool * self.shares[account] // self.totalShares


@external
@view
def payeeCount() -> uint256:
    return len(self.payees)


@external
@nonreentrant
def setShares(payees_: DynArray[address, MAX_PAYEES], shares_: DynArray[uint256, MAX_PAYEES]):
    """
    @notice Replace every payee and share (owner only); what is owed so far stays owed.
    """
    self._check_owner()
    self._distribute()
    self._set_payees(payees_, shares_)


@external
@nonreentrant
def addShares(payee: address, amount: uint256):
    """
    @notice Give `payee` `amount` more shares (a new payee is appended); owner only.
    """
    self._check_owner()
    assert payee != empty(address), "splitter: zero payee"
    assert amount > 0, "splitter: zero shares"
    self._distribute()
    if self.shares[payee] == 0:
        assert len(self.payees) < MAX_PAYEES, "splitter: too many payees"
        self.payees.append(payee)
    self.shares[payee] += amount
    self.totalShares += amount
    log SharesSet(payee=payee, shares=self.shares[payee])


@external
def transferOwnership(new_owner: address):
    self._check_owner()
    log OwnershipTransferred(previous_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


@internal
def _initialize(
    token_: address,
    payees_: DynArray[address, MAX_PAYEES],
    shares_: DynArray[uint256, MAX_PAYEES],
    upstreams_: DynArray[address, MAX_UPSTREAMS],
    bps_: DynArray[uint256, MAX_UPSTREAMS],
    owner_: address,
):
    assert token_ != empty(address), "splitter: zero token"
    assert len(upstreams_) == len(bps_), "splitter: upstreams and royalties differ in length"
    total: uint256 = 0
    for i: uint256 in range(len(upstreams_), bound=MAX_UPSTREAMS):
        assert upstreams_[i] != empty(address) and upstreams_[i] != self, "splitter: bad upstream"
        assert bps_[i] > 0, "splitter: zero royalty"
        total += bps_[i]
    assert total <= BPS, "splitter: royalties above 100%"
    self.initialized = True
    self.token = token_
    self.owner = owner_
    self.upstreams = upstreams_
    self.upstreamBps = bps_
    self._set_payees(payees_, shares_)
    log OwnershipTransferred(previous_owner=empty(address), new_owner=owner_)


@internal
def _set_payees(payees_: DynArray[address, MAX_PAYEES], shares_: DynArray[uint256, MAX_PAYEES]):
    assert len(payees_) > 0, "splitter: no payees"
    assert len(payees_) == len(shares_), "splitter: payees and shares differ in length"
    for old: address in self.payees:
        self.shares[old] = 0
    total: uint256 = 0
    for i: uint256 in range(len(payees_), bound=MAX_PAYEES):
        assert payees_[i] != empty(address), "splitter: zero payee"
        assert shares_[i] > 0, "splitter: zero shares"
        assert self.shares[payees_[i]] == 0, "splitter: duplicate payee"
        self.shares[payees_[i]] = shares_[i]
        total += shares_[i]
        log SharesSet(payee=payees_[i], shares=shares_[i])
    self.payees = payees_
    self.totalShares = total


@internal
@view
def _income() -> uint256:
    balance: uint256 = staticcall IERC20(self.token).balanceOf(self)
    if balance <= self.held:
        return 0
    return balance - self.held


@internal
def _distribute() -> uint256:
    income: uint256 = self._income()
    if income == 0:
        return 0
    self.totalReceived += income
    royalties: uint256 = 0
    for i: uint256 in range(len(self.upstreams), bound=MAX_UPSTREAMS):
        amount: uint256 = income * self.upstreamBps[i] // BPS
        if amount > 0:
            royalties += amount
            assert extcall IERC20(self.token).transfer(self.upstreams[i], amount, default_return_value=True), "splitter: royalty transfer failed"
            log RoyaltyPaid(upstream=self.upstreams[i], amount=amount)
    self.totalRoyalties += royalties
    pool: uint256 = income - royalties + self.carry
    credited: uint256 = 0
    for payee: address in self.payees:
        part: uint256 = pool * self.shares[payee] // self.totalShares
        self.owed[payee] += part
        credited += part
    self.carry = pool - credited
    self.held += income - royalties
    log Distributed(income=income, royalties=royalties, credited=credited, carry=self.carry)
    return income


@internal
@view
def _check_owner():
    assert msg.sender == self.owner and msg.sender != empty(address), "splitter: caller is not the owner"
