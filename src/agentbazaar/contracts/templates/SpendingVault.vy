# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title SpendingVault: an agent account owned by a person; session keys spend within caps
@notice The owner (a person) holds full control: pays anyone any amount, sets per-token caps
        per period, the payee allowlist, and adds or revokes session keys. A session key (the
        agent) may only pay allowlisted payees, and only while the current period's spending
        of that token stays within its cap; it expires at its `session_until` time.
        A session key pays either directly (`pay`) or by pre-authorizing an EIP-3009
        `transferWithAuthorization` from this account (`authorize_transfer`: the cap and the
        allowlist are checked and the spend counted then); the token then accepts the session
        key's signature of that authorization through ERC-1271 `isValidSignature`. So a leaked
        session key cannot spend past the caps. The owner's own signature is valid for any hash.
        Periods are fixed windows of `period` seconds from `epoch`.
        Invariants (checked as properties before deployment):
        - in every period, what session keys spent of a token is at most its cap;
        - session keys pay only allowlisted payees, and nothing once expired or revoked;
        - isValidSignature accepts only the owner, or an active session key on a digest it
          pre-authorized through the caps;
        - the vault's balance falls by exactly what was paid.
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable
from snekmate.utils import ecdsa

initializes: ownable

exports: (ownable.owner, ownable.transfer_ownership)


interface IEIP712:
    def DOMAIN_SEPARATOR() -> bytes32: view


MAX_PAYEES: constant(uint256) = 16
_ERC1271_MAGIC: constant(bytes4) = 0x1626ba7e
_ERC1271_INVALID: constant(bytes4) = 0xffffffff
_TRANSFER_WITH_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)

period: public(immutable(uint256))
epoch: public(immutable(uint256))

cap: public(HashMap[address, uint256])
spent: public(HashMap[address, HashMap[uint256, uint256]])
allowed: public(HashMap[address, bool])
session_until: public(HashMap[address, uint256])
authorized_by: public(HashMap[bytes32, address])


event Paid:
    token: indexed(address)
    to: indexed(address)
    amount: uint256
    by: indexed(address)


event TransferAuthorized:
    digest: indexed(bytes32)
    token: indexed(address)
    to: address
    amount: uint256
    by: indexed(address)


event CapSet:
    token: indexed(address)
    cap: uint256


event PayeeSet:
    payee: indexed(address)
    allowed: bool


event SessionKeySet:
    key: indexed(address)
    valid_until: uint256


@deploy
def __init__(
    owner_: address,
    session_key_: address,
    session_until_: uint256,
    token_: address,
    cap_: uint256,
    period_: uint256,
    epoch_: uint256,
    payees_: DynArray[address, MAX_PAYEES],
):
    """
    @param owner_ The person who owns the account (full control).
    @param session_key_ The agent's session key (the zero address for none yet).
    @param session_until_ Unix time the session key expires.
    @param token_ The token given a cap (the zero address for none yet).
    @param cap_ What session keys may spend of `token_` per period (base units).
    @param period_ Length of a spending period in seconds (e.g. 86400).
    @param epoch_ Unix time the first period starts (not in the future).
    @param payees_ The payees session keys may pay (at most 16; more via `set_payee`).
    """
    assert owner_ != empty(address), "vault: owner is the zero address"
    assert period_ > 0, "vault: period is zero"
    assert epoch_ <= block.timestamp, "vault: first period starts in the future"
    ownable.__init__()
    ownable._transfer_ownership(owner_)
    period = period_
    epoch = epoch_
    if session_key_ != empty(address):
        assert session_key_ != owner_, "vault: session key is the owner"
        self.session_until[session_key_] = session_until_
        log SessionKeySet(key=session_key_, valid_until=session_until_)
    if token_ != empty(address):
        self.cap[token_] = cap_
        log CapSet(token=token_, cap=cap_)
    for payee: address in payees_:
        self.allowed[payee] = True
        log PayeeSet(payee=payee, allowed=True)


# ---- views ---------------------------------------------------------------------------------
@internal
@view
def _period_now() -> uint256:
    return (block.timestamp - epoch) // period


@internal
@view
def _active(key: address) -> bool:
    return key != empty(address) and block.timestamp < self.session_until[key]


@external
@view
def current_period() -> uint256:
    return self._period_now()


@external
@view
def remaining(token: address) -> uint256:
    """
    @dev What session keys may still spend of `token` in the current period.
    """
    used: uint256 = self.spent[token][self._period_now()]
    limit: uint256 = self.cap[token]
    return limit - min(used, limit)


@external
@view
def is_session_key(key: address) -> bool:
    return self._active(key)


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[65]) -> bytes4:
    """
    @dev ERC-1271: the owner's signature of any hash, or an active session key's signature of
         a digest it pre-authorized with `authorize_transfer`.
    """
    signer: address = ecdsa._recover_sig(hash, signature)
    if signer == empty(address):
        return _ERC1271_INVALID
    if signer == ownable.owner:
        return _ERC1271_MAGIC
    if self.authorized_by[hash] == signer and self._active(signer):
        return _ERC1271_MAGIC
    return _ERC1271_INVALID


# ---- spending ------------------------------------------------------------------------------
@internal
def _charge(token: address, to: address, amount: uint256):
    """
    @dev A session key's spend: active key, allowlisted payee, within the period's cap.
    """
    assert self._active(msg.sender), "vault: not the owner or an active session key"
    assert self.allowed[to], "vault: payee not allowed"
    now: uint256 = self._period_now()
    total: uint256 = self.spent[token][now] + amount
    assert total <= self.cap[token], "vault: over the cap for this period"
    self.spent[token][now] = total


@external
@nonreentrant
def pay(token: address, to: address, amount: uint256):
    """
    @dev Pays `amount` of `token` to `to`: any payment by the owner, within the caps by a
         session key.
    """
    assert amount > 0, "vault: amount is zero"
    if msg.sender != ownable.owner:
        self._charge(token, to, amount)
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True)
    log Paid(token=token, to=to, amount=amount, by=msg.sender)


@external
def authorize_transfer(
    token: address, to: address, amount: uint256, valid_after: uint256, valid_before: uint256, nonce: bytes32
) -> bytes32:
    """
    @dev Pre-authorizes an EIP-3009 `transferWithAuthorization` of `amount` of `token` from
         this account to `to`; counted against the cap now (used or not). Returns the EIP-712
         digest the caller then signs; `isValidSignature` accepts the caller's signature of it.
    """
    assert amount > 0, "vault: amount is zero"
    if msg.sender != ownable.owner:
        self._charge(token, to, amount)
    struct_hash: bytes32 = keccak256(
        abi_encode(_TRANSFER_WITH_AUTHORIZATION_TYPEHASH, self, to, amount, valid_after, valid_before, nonce)
    )
    domain: bytes32 = staticcall IEIP712(token).DOMAIN_SEPARATOR()
    digest: bytes32 = keccak256(concat(x"1901", domain, struct_hash))
    self.authorized_by[digest] = msg.sender
    log TransferAuthorized(digest=digest, token=token, to=to, amount=amount, by=msg.sender)
    return digest


# ---- the owner's controls --------------------------------------------------------------------
@external
def set_cap(token: address, cap: uint256):
    ownable._check_owner()
    self.cap[token] = cap
    log CapSet(token=token, cap=cap)


@external
def set_payee(payee: address, allowed: bool):
    ownable._check_owner()
    self.allowed[payee] = allowed
    log PayeeSet(payee=payee, allowed=allowed)


@external
def set_session_key(key: address, valid_until: uint256):
    """
    @dev Adds a session key valid until `valid_until`, or revokes it with 0.
    """
    ownable._check_owner()
    assert key != empty(address), "vault: session key is the zero address"
    assert key != ownable.owner, "vault: session key is the owner"
    self.session_until[key] = valid_until
    log SessionKeySet(key=key, valid_until=valid_until)
