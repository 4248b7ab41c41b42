# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Stablecoin: a USDC-compatible token (6 decimals)
@notice ERC-20 with EIP-2612 `permit`, EIP-5267 `eip712Domain` and a minter role, all from
        snekmate's `erc20` module, plus EIP-3009 (as in Circle's FiatToken v2.2):
        - transferWithAuthorization(from, to, value, validAfter, validBefore, nonce, v, r, s)
        - receiveWithAuthorization(same arguments; the caller must be `to`)
        - cancelAuthorization(authorizer, nonce, v, r, s)
        - authorizationState(authorizer, nonce) -> bool (True once used or canceled)
        Each of the three also has a `bytes signature` overload that replaces (v, r, s):
        a 65-byte ECDSA signature, or any signature a contract signer accepts through
        ERC-1271 `isValidSignature` (at most SIG_MAX bytes). Signatures are checked by
        `lib/signature_checker.vy` (low s; v in {27, 28} or {0, 1}; ERC-1271 with bounded gas
        and the bytes4 magic value), the module every contract of ours shares.

        Vyper has no overloading by type, so the `bytes` overloads are dispatched by selector
        in `__default__` and described for ABI users in `Stablecoin.abi-extra.json`.

        An authorization is valid while validAfter < block.timestamp < validBefore; its
        32-byte nonce is single use per authorizer, whether used or canceled.
"""

from ethereum.ercs import IERC20

implements: IERC20

from ethereum.ercs import IERC20Detailed

implements: IERC20Detailed

from snekmate.auth import ownable

initializes: ownable

from snekmate.tokens import erc20

initializes: erc20[ownable := ownable]

# ERC-20, EIP-2612 (permit, nonces, DOMAIN_SEPARATOR), EIP-5267 (eip712Domain), the minter
# role (mint, set_minter, is_minter), burn, burn_from and ownership.
exports: erc20.__interface__

from lib import signature_checker


_TRANSFER_WITH_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
_RECEIVE_WITH_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
_CANCEL_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "CancelAuthorization(address authorizer,bytes32 nonce)"
)

# Selectors of the `bytes signature` overloads (dispatched in `__default__`).
_TRANSFER_BYTES: constant(bytes4) = method_id(
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
    output_type=bytes4,
)
_RECEIVE_BYTES: constant(bytes4) = method_id(
    "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
    output_type=bytes4,
)
_CANCEL_BYTES: constant(bytes4) = method_id(
    "cancelAuthorization(address,bytes32,bytes)", output_type=bytes4
)

# Longest signature the `bytes` overloads accept, and the longest calldata (after the
# selector) they decode: 7 head words + length word + SIG_MAX bytes.
SIG_MAX: constant(uint256) = 256
_ARGS_MAX: constant(uint256) = 512


# @dev The EIP-712 domain version (FiatToken exposes it as `version()`).
version: public(immutable(String[20]))

# @dev authorizer => nonce => used or canceled.
authorizationState: public(HashMap[address, HashMap[bytes32, bool]])


event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)


event AuthorizationCanceled:
    authorizer: indexed(address)
    nonce: indexed(bytes32)


@deploy
@payable
def __init__(
    name_: String[25], symbol_: String[5], eip712_name_: String[50], eip712_version_: String[20]
):
    """
    @dev The deployer becomes owner and minter.
    @param name_ Token name (at most 25 characters), e.g. "USD Coin".
    @param symbol_ Token symbol (at most 5 characters), e.g. "USDC".
    @param eip712_name_ EIP-712 domain name (at most 50 characters), e.g. "USD Coin".
    @param eip712_version_ EIP-712 domain version (at most 20 characters), e.g. "2".
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, 6, eip712_name_, eip712_version_)
    version = eip712_version_


@external
def transferWithAuthorization(
    from_: address,
    to: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev Moves `amount` from `from_` to `to` with `from_`'s EIP-712 signature over
         TransferWithAuthorization; anyone may submit it.
    """
    self._transfer_with_authorization(
        _TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
        from_,
        to,
        amount,
        valid_after,
        valid_before,
        nonce,
        concat(r, s, convert(v, bytes1)),
    )


@external
def receiveWithAuthorization(
    from_: address,
    to: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev Like `transferWithAuthorization` over ReceiveWithAuthorization, but only the payee
         `to` may submit it (no front-running of a deposit flow).
    """
    assert to == msg.sender, "caller must be the payee"
    self._transfer_with_authorization(
        _RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
        from_,
        to,
        amount,
        valid_after,
        valid_before,
        nonce,
        concat(r, s, convert(v, bytes1)),
    )


@external
def cancelAuthorization(authorizer: address, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    """
    @dev Marks an unused authorization nonce as canceled, with `authorizer`'s EIP-712
         signature over CancelAuthorization.
    """
    self._cancel_authorization(authorizer, nonce, concat(r, s, convert(v, bytes1)))


@external
def __default__():
    """
    @dev The `bytes signature` overloads of transferWithAuthorization,
         receiveWithAuthorization and cancelAuthorization. Anything else reverts.
    """
    assert len(msg.data) >= 4, "unknown function"
    selector: bytes4 = convert(slice(msg.data, 0, 4), bytes4)
    signature: Bytes[SIG_MAX] = b""
    if selector == _CANCEL_BYTES:
        authorizer: address = empty(address)
        nonce: bytes32 = empty(bytes32)
        authorizer, nonce, signature = abi_decode(
            self._call_arguments(), (address, bytes32, Bytes[SIG_MAX])
        )
        self._cancel_authorization(authorizer, nonce, signature)
        return
    is_receive: bool = selector == _RECEIVE_BYTES
    assert is_receive or selector == _TRANSFER_BYTES, "unknown function"
    from_: address = empty(address)
    to: address = empty(address)
    amount: uint256 = 0
    valid_after: uint256 = 0
    valid_before: uint256 = 0
    nonce: bytes32 = empty(bytes32)
    from_, to, amount, valid_after, valid_before, nonce, signature = abi_decode(
        self._call_arguments(),
        (address, address, uint256, uint256, uint256, bytes32, Bytes[SIG_MAX]),
    )
    typehash: bytes32 = _TRANSFER_WITH_AUTHORIZATION_TYPEHASH
    if is_receive:
        assert to == msg.sender, "caller must be the payee"
        typehash = _RECEIVE_WITH_AUTHORIZATION_TYPEHASH
    self._transfer_with_authorization(
        typehash, from_, to, amount, valid_after, valid_before, nonce, signature
    )


@internal
def _transfer_with_authorization(
    typehash: bytes32,
    from_: address,
    to: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    signature: Bytes[SIG_MAX],
):
    assert block.timestamp > valid_after, "authorization is not yet valid"
    assert block.timestamp < valid_before, "authorization is expired"
    assert not self.authorizationState[from_][nonce], "authorization is used or canceled"
    struct_hash: bytes32 = keccak256(
        abi_encode(typehash, from_, to, amount, valid_after, valid_before, nonce)
    )
    self._require_signature(from_, struct_hash, signature)
    self.authorizationState[from_][nonce] = True
    log AuthorizationUsed(authorizer=from_, nonce=nonce)
    erc20._transfer(from_, to, amount)


@internal
def _cancel_authorization(authorizer: address, nonce: bytes32, signature: Bytes[SIG_MAX]):
    assert not self.authorizationState[authorizer][nonce], "authorization is used or canceled"
    struct_hash: bytes32 = keccak256(abi_encode(_CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
    self._require_signature(authorizer, struct_hash, signature)
    self.authorizationState[authorizer][nonce] = True
    log AuthorizationCanceled(authorizer=authorizer, nonce=nonce)


@internal
@view
def _require_signature(signer: address, struct_hash: bytes32, signature: Bytes[SIG_MAX]):
    """
    @dev Reverts with "invalid signature" unless `signature` is `signer`'s over the EIP-712
         digest of `struct_hash` (ECDSA, or ERC-1271 when `signer` has code: the rules are
         those of `signature_checker`).
    """
    digest: bytes32 = erc20.eip712_domain_separator._hash_typed_data_v4(struct_hash)
    assert signature_checker._is_valid_signature(signer, digest, signature), "invalid signature"


@internal
@view
def _call_arguments() -> Bytes[_ARGS_MAX]:
    """
    @dev The calldata after the selector. Vyper slices calldata only with a constant length,
         so each ABI-encoded length (a multiple of 32 bytes) gets its own branch; the
         65-byte signature cases (352 and 224 bytes) come first.
    """
    n: uint256 = len(msg.data) - 4
    if n == 352:
        return slice(msg.data, 4, 352)
    if n == 224:
        return slice(msg.data, 4, 224)
    if n == 128:
        return slice(msg.data, 4, 128)
    if n == 160:
        return slice(msg.data, 4, 160)
    if n == 192:
        return slice(msg.data, 4, 192)
    if n == 256:
        return slice(msg.data, 4, 256)
    if n == 288:
        return slice(msg.data, 4, 288)
    if n == 320:
        return slice(msg.data, 4, 320)
    if n == 384:
        return slice(msg.data, 4, 384)
    if n == 416:
        return slice(msg.data, 4, 416)
    if n == 448:
        return slice(msg.data, 4, 448)
    if n == 480:
        return slice(msg.data, 4, 480)
    if n == 512:
        return slice(msg.data, 4, 512)
    raise "malformed calldata"
