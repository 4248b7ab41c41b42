# pragma version ~=0.4.3
"""
@title StakeRegistry
@notice Providers and validators bond stake in one stablecoin to be listed as such. Bonding is
        funded by EIP-3009 `receiveWithAuthorization` (no separate approval): the account signs
        a ReceiveWithAuthorization to this contract whose nonce is
        `keccak256(abi_encode(BOND_TAG, roles, salt))`, so whoever relays it cannot change the
        roles it buys. Unbonding takes `unbondDelay` seconds: `requestUnbond`, then `withdraw`.

        Listing: an account is a provider while it holds the provider role with at least
        `minProviderStake` bonded, a validator while it holds the validator role with at least
        `minValidatorStake` bonded. Listed validators are kept in an indexable set
        (`validatorCount`, `validatorAt`) from which the court draws dispute committees.

        Slashing rules (enforced here or by the court, `court`, the JobEscrow that runs
        disputes; `tests/jobs/test_stake.py` checks them as invariants):
        1. Only the court slashes, and only when it resolves a dispute; nobody else can move a
           bonded or unbonding token except its owner through `requestUnbond` + `withdraw`.
        2. While an account is in an open dispute (as the job's provider or as a committee
           member) it can neither request unbonding nor withdraw: `lock` / `unlock` by the court.
        3. A slash takes `bps` / 10,000 of the account's stake (bonded first, then unbonding),
           rounded down, and `bps` is at most 10,000; the court uses VALIDATOR_SLASH_BPS (10%)
           for a committee member whose revealed vote differs from the outcome or who did not
           reveal, and PROVIDER_SLASH_BPS (20%) for a provider whose dispute the client won.
           A member whose vote matches the outcome, and the client, are never slashed; nobody
           is slashed twice for one dispute.
        4. Slashed tokens are transferred to the court (never burned, never kept here), which
           pays them to the committee members who voted with the outcome.
        5. Conservation: this contract's token balance equals the sum over accounts of bonded +
           unbonding, after every call.
        Every revert carries a reason string starting with "stake: ".
"""

from ethereum.ercs import IERC20

ROLE_PROVIDER: constant(uint256) = 1
ROLE_VALIDATOR: constant(uint256) = 2
ROLES_ALL: constant(uint256) = 3
MAX_BPS: constant(uint256) = 10_000
MAX_DELAY: constant(uint256) = 365 * 86_400
SIG_MAX: constant(uint256) = 256
BOND_TAG: constant(bytes32) = keccak256("agentbazaar.stake.bond")


struct Stake:
    bonded: uint256
    unbonding: uint256
    unlockAt: uint256
    roles: uint256
    locks: uint256


event Bonded:
    account: indexed(address)
    amount: uint256
    roles: uint256
    bonded: uint256


event UnbondRequested:
    account: indexed(address)
    amount: uint256
    unlockAt: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


event Slashed:
    account: indexed(address)
    amount: uint256
    to: indexed(address)


event Locked:
    account: indexed(address)
    locks: uint256


event Unlocked:
    account: indexed(address)
    locks: uint256


event CourtLinked:
    court: indexed(address)


token: public(immutable(address))
unbondDelay: public(immutable(uint256))
minProviderStake: public(immutable(uint256))
minValidatorStake: public(immutable(uint256))
_linker: immutable(address)

court: public(address)
totalStaked: public(uint256)
_stakes: HashMap[address, Stake]
# the listed validators: a set with 1-based positions
_validator_at: HashMap[uint256, address]
_validator_pos: HashMap[address, uint256]
validatorCount: public(uint256)


@deploy
def __init__(token_: address, unbond_delay: uint256, min_provider: uint256, min_validator: uint256):
    assert token_ != empty(address), "stake: zero token"
    assert unbond_delay <= MAX_DELAY, "stake: unbond delay above a year"
    assert min_provider > 0 and min_validator > 0, "stake: minimum stakes must be positive"
    token = token_
    unbondDelay = unbond_delay
    minProviderStake = min_provider
    minValidatorStake = min_validator
    _linker = msg.sender


@external
def link(court_: address):
    """
    @notice Names the court (the JobEscrow running disputes), once, by the deployer.
    """
    assert msg.sender == _linker, "stake: only the deployer links the court"
    assert self.court == empty(address), "stake: court already linked"
    assert court_ != empty(address), "stake: zero court"
    self.court = court_
    log CourtLinked(court=court_)


# ---- bonding ---------------------------------------------------------------------------------
@external
@nonreentrant
def bondWithAuthorization(
    account: address,
    amount: uint256,
    roles: uint256,
    validAfter: uint256,
    validBefore: uint256,
    salt: bytes32,
    signature: Bytes[SIG_MAX],
):
    """
    @notice Bonds `amount` from `account` (its EIP-3009 ReceiveWithAuthorization to this
            contract, nonce `bondNonce(roles, salt)`) and grants it `roles` (1 provider,
            2 validator, 3 both). Anyone may relay the signed authorization.
    """
    assert amount > 0, "stake: zero amount"
    assert roles >= 1 and roles <= ROLES_ALL, "stake: roles must be 1 (provider), 2 (validator) or 3"
    nonce: bytes32 = self._bond_nonce(roles, salt)
    self._receive(account, amount, validAfter, validBefore, nonce, signature)
    s: Stake = self._stakes[account]
    s.bonded += amount
    s.roles = s.roles | roles
    self._stakes[account] = s
    self.totalStaked += amount
    self._relist(account, s)
    log Bonded(account=account, amount=amount, roles=roles, bonded=s.bonded)


@external
@nonreentrant
def requestUnbond(amount: uint256):
    """
    @notice Starts unbonding `amount` of the caller's bonded stake; withdrawable after
            `unbondDelay` (a new request restarts the delay for the whole unbonding amount).
    """
    s: Stake = self._stakes[msg.sender]
    assert s.locks == 0, "stake: in an open dispute: unbonding waits until it is resolved"
    assert amount > 0, "stake: zero amount"
    assert amount <= s.bonded, "stake: more than is bonded"
    s.bonded -= amount
    s.unbonding += amount
    s.unlockAt = block.timestamp + unbondDelay
    self._stakes[msg.sender] = s
    self._relist(msg.sender, s)
    log UnbondRequested(account=msg.sender, amount=amount, unlockAt=s.unlockAt)


@external
@nonreentrant
def withdraw() -> uint256:
    """
    @notice Pays the caller's unbonded stake once the delay has passed.
    """
    s: Stake = self._stakes[msg.sender]
    assert s.locks == 0, "stake: in an open dispute: withdrawal waits until it is resolved"
    assert s.unbonding > 0, "stake: nothing is unbonding"
    assert block.timestamp >= s.unlockAt, "stake: still unbonding"
    amount: uint256 = s.unbonding
    s.unbonding = 0
    s.unlockAt = 0
    self._stakes[msg.sender] = s
    self.totalStaked -= amount
    extcall IERC20(token).transfer(msg.sender, amount, default_return_value=True)
    log Withdrawn(account=msg.sender, amount=amount)
    return amount


# ---- the court -------------------------------------------------------------------------------
@external
def lock(account: address):
    assert msg.sender == self.court, "stake: only the court"
    self._stakes[account].locks += 1
    log Locked(account=account, locks=self._stakes[account].locks)


@external
def unlock(account: address):
    assert msg.sender == self.court, "stake: only the court"
    assert self._stakes[account].locks > 0, "stake: not locked"
    self._stakes[account].locks -= 1
    log Unlocked(account=account, locks=self._stakes[account].locks)


@external
@nonreentrant
def slash(account: address, bps: uint256, to: address) -> uint256:
    """
    @notice Takes `bps` / 10,000 of `account`'s stake (bonded first, then unbonding) and sends
            it to `to`; returns the amount.
    """
    assert msg.sender == self.court, "stake: only the court"
    assert bps <= MAX_BPS, "stake: slash above 100%"
    s: Stake = self._stakes[account]
    amount: uint256 = (s.bonded + s.unbonding) * bps // MAX_BPS
    if amount == 0:
        return 0
    from_bonded: uint256 = min(amount, s.bonded)
    s.bonded -= from_bonded
    s.unbonding -= amount - from_bonded
    self._stakes[account] = s
    self.totalStaked -= amount
    self._relist(account, s)
    extcall IERC20(token).transfer(to, amount, default_return_value=True)
    log Slashed(account=account, amount=amount, to=to)
    return amount


# ---- views -----------------------------------------------------------------------------------
@external
@view
def stakeOf(account: address) -> Stake:
    return self._stakes[account]


@external
@view
def isProvider(account: address) -> bool:
    s: Stake = self._stakes[account]
    return s.roles & ROLE_PROVIDER != 0 and s.bonded >= minProviderStake


@external
@view
def isValidator(account: address) -> bool:
    return self._validator_pos[account] != 0


@external
@view
def validatorAt(index: uint256) -> address:
    assert index < self.validatorCount, "stake: no validator at this index"
    return self._validator_at[index + 1]


@external
@pure
def bondNonce(roles: uint256, salt: bytes32) -> bytes32:
    return self._bond_nonce(roles, salt)


# ---- internals -------------------------------------------------------------------------------
@internal
@pure
def _bond_nonce(roles: uint256, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(BOND_TAG, roles, salt))


@internal
def _receive(
    payer: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    signature: Bytes[SIG_MAX],
):
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    # tightly ABI-encoded `bytes` overload (tokens that check calldata length accept it)
    raw_call(
        token,
        abi_encode(
            payer,
            self,
            amount,
            valid_after,
            valid_before,
            nonce,
            signature,
            method_id=method_id(
                "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
            ),
        ),
    )
    assert staticcall IERC20(token).balanceOf(self) == before + amount, "stake: token did not arrive"


@internal
def _relist(account: address, s: Stake):
    """Keeps the validator set equal to {validator role and bonded >= minValidatorStake}."""
    eligible: bool = s.roles & ROLE_VALIDATOR != 0 and s.bonded >= minValidatorStake
    pos: uint256 = self._validator_pos[account]
    if eligible and pos == 0:
        n: uint256 = self.validatorCount + 1
        self._validator_at[n] = account
        self._validator_pos[account] = n
        self.validatorCount = n
    elif not eligible and pos != 0:
        last: uint256 = self.validatorCount
        moved: address = self._validator_at[last]
        self._validator_at[pos] = moved
        self._validator_pos[moved] = pos
        self._validator_at[last] = empty(address)
        self._validator_pos[account] = 0
        self.validatorCount = last - 1
