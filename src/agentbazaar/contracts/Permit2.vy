# pragma version ~=0.4.3
"""
@title Permit2 signature transfers: the part of Uniswap's Permit2 that x402 uses
@notice A token owner approves this contract once on the ERC-20; from then on a spender moves
        the owner's tokens with the owner's EIP-712 signature over a `PermitTransferFrom`,
        here always with a witness (`permitWitnessTransferFrom`), so the spender's own
        parameters (x402: the payee, the facilitator, a start time) are signed too.

        Wire-compatible with Uniswap's Permit2 for this subset (same selectors, events, custom
        errors, EIP-712 domain and type hashes), so the x402 SDK's clients and facilitators and
        the x402 Permit2 proxies work against it unchanged:
        - permitWitnessTransferFrom(((token, amount), nonce, deadline), (to, requestedAmount),
          owner, witness, witnessTypeString, signature)
        - nonceBitmap(owner, wordPos) -> bitmap; invalidateUnorderedNonces(wordPos, mask)
        - DOMAIN_SEPARATOR(): EIP712Domain(string name,uint256 chainId,address verifyingContract)
          with name "Permit2" and no version.

        Nonces are unordered: nonce n is bit (n & 255) of word (n >> 8) of the owner's bitmap,
        single use across every token and spender of that owner. The spender in the signed
        message is always `msg.sender`, so only the contract the owner named can use it.

        Signatures follow our one rule (`lib/signature_checker.vy`): 65-byte low-s ECDSA, or
        ERC-1271 for an owner with code; unlike Uniswap's Permit2, the 64-byte EIP-2098 form
        and high-s ECDSA are refused (the x402 SDK signs 65-byte low-s), and a contract owner
        whose key also signs by ECDSA (an EIP-7702 account) passes by ECDSA.

        Not here (x402 does not use them): the batch transfers, `permitTransferFrom` without a
        witness, and the AllowanceTransfer half (`approve`, `permit`, `transferFrom`, `lockdown`).
"""

struct TokenPermissions:
    token: address
    amount: uint256


struct PermitTransferFrom:
    permitted: TokenPermissions
    nonce: uint256
    deadline: uint256


struct SignatureTransferDetails:
    to: address
    requestedAmount: uint256


event UnorderedNonceInvalidation:
    owner: indexed(address)
    word: uint256
    mask: uint256


from lib import signature_checker

# Longest signature accepted (ECDSA is 65 bytes; contract wallets may sign longer) and longest
# witness type string.
SIG_MAX: constant(uint256) = signature_checker.SIGNATURE_MAX
WITNESS_TYPE_MAX: constant(uint256) = 1024

_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,uint256 chainId,address verifyingContract)"
)
_HASHED_NAME: constant(bytes32) = keccak256("Permit2")
_TOKEN_PERMISSIONS_TYPEHASH: constant(bytes32) = keccak256(
    "TokenPermissions(address token,uint256 amount)"
)
_WITNESS_TYPEHASH_STUB: constant(String[100]) = (
    "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,"
)

# @dev owner => word position => bitmap of used (or invalidated) nonces.
nonceBitmap: public(HashMap[address, HashMap[uint256, uint256]])


@deploy
def __init__():
    pass


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev Computed for the address the code runs at, so the runtime code can be placed at the
         canonical Permit2 address on a development chain.
    """
    return self._domain_separator()


@external
def permitWitnessTransferFrom(
    permit: PermitTransferFrom,
    transferDetails: SignatureTransferDetails,
    owner: address,
    witness: bytes32,
    witnessTypeString: String[WITNESS_TYPE_MAX],
    signature: Bytes[SIG_MAX],
):
    """
    @dev Moves `transferDetails.requestedAmount` (at most `permit.permitted.amount`) of the
         permitted token from `owner` to `transferDetails.to`, once, with `owner`'s signature
         over PermitWitnessTransferFrom(permitted, spender = msg.sender, nonce, deadline,
         witness), whose witness struct is described by `witnessTypeString` ("Witness
         witness)" followed by the struct definitions in alphabetical order).
    """
    type_hash: bytes32 = keccak256(concat(_WITNESS_TYPEHASH_STUB, witnessTypeString))
    permissions_hash: bytes32 = keccak256(
        abi_encode(_TOKEN_PERMISSIONS_TYPEHASH, permit.permitted.token, permit.permitted.amount)
    )
    data_hash: bytes32 = keccak256(
        abi_encode(
            type_hash, permissions_hash, msg.sender, permit.nonce, permit.deadline, witness
        )
    )
    requested: uint256 = transferDetails.requestedAmount
    if block.timestamp > permit.deadline:
        raw_revert(
            concat(method_id("SignatureExpired(uint256)"), convert(permit.deadline, bytes32))
        )
    if requested > permit.permitted.amount:
        raw_revert(
            concat(method_id("InvalidAmount(uint256)"), convert(permit.permitted.amount, bytes32))
        )
    self._use_unordered_nonce(owner, permit.nonce)
    digest: bytes32 = keccak256(concat(x"1901", self._domain_separator(), data_hash))
    self._verify(signature, digest, owner)
    self._safe_transfer_from(permit.permitted.token, owner, transferDetails.to, requested)


@external
def invalidateUnorderedNonces(wordPos: uint256, mask: uint256):
    """
    @dev Marks the nonces whose bits are set in `mask` (word `wordPos`) as used, so signatures
         over them can never be used (the owner's way to cancel outstanding permits).
    """
    self.nonceBitmap[msg.sender][wordPos] |= mask
    log UnorderedNonceInvalidation(owner=msg.sender, word=wordPos, mask=mask)


@internal
@view
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(_DOMAIN_TYPEHASH, _HASHED_NAME, chain.id, self))


@internal
def _use_unordered_nonce(owner: address, nonce: uint256):
    word_pos: uint256 = nonce >> 8
    bit: uint256 = 1 << (nonce & 255)
    flipped: uint256 = self.nonceBitmap[owner][word_pos] ^ bit
    self.nonceBitmap[owner][word_pos] = flipped
    if flipped & bit == 0:
        raw_revert(method_id("InvalidNonce()"))


@internal
@view
def _verify(signature: Bytes[SIG_MAX], digest: bytes32, claimed: address):
    """
    @dev Our one signature rule (`lib/signature_checker.vy`: 65-byte low-s ECDSA, or ERC-1271
         when `claimed` has code), reported with Permit2's errors.
    """
    if signature_checker._is_valid_signature(claimed, digest, signature):
        return
    if claimed.is_contract:
        raw_revert(method_id("InvalidContractSignature()"))
    if len(signature) != 65:
        raw_revert(method_id("InvalidSignatureLength()"))
    if signature_checker._recover(digest, signature) == empty(address):
        raw_revert(method_id("InvalidSignature()"))
    raw_revert(method_id("InvalidSigner()"))


@internal
def _safe_transfer_from(token: address, owner: address, to: address, amount: uint256):
    """
    @dev ERC-20 `transferFrom` that accepts tokens returning nothing (USDT-style); reverts
         with "TRANSFER_FROM_FAILED" when the call fails, returns false, or the token has no
         code (a call to an empty account would otherwise "succeed").
    """
    assert token.is_contract, "TRANSFER_FROM_FAILED"
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(owner, to, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    assert success, "TRANSFER_FROM_FAILED"
    if len(response) > 0:
        assert len(response) == 32, "TRANSFER_FROM_FAILED"
        assert convert(response, uint256) == 1, "TRANSFER_FROM_FAILED"
