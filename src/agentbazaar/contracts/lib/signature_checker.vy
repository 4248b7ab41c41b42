# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Signature checks shared by our contracts: EOA ECDSA and ERC-1271 contract signers
@notice One set of rules, used by `Stablecoin.vy` (EIP-3009 authorizations) and
        `BatchSettlement.vy` (vouchers, refunds, claim batches); any new contract that accepts
        signatures imports it:

            from lib import signature_checker
            ...
            if not signature_checker._is_valid_signature(signer, digest, signature):

        The module is stateless (no storage, no immutables): no `initializes` is needed.

        `_is_valid_signature(signer, digest, signature)` is True when, and only when:
        1. ECDSA (any signer): `signature` is 65 bytes `r || s || v` with
           - `v` in {27, 28}, or in {0, 1} (normalised to 27/28: some signers, e.g. hardware
             wallets and raw libsecp256k1 output, produce the recovery id itself); any other
             `v` is refused,
           - `s` <= secp256k1n / 2 ("low s", EIP-2): the malleable twin (n - s, flipped v) of
             a valid signature is refused, so one authorization has one encoding,
           - and `ecrecover` yields `signer` (never the zero address: `ecrecover` returns zero
             for garbage, so a zero `signer` never validates this way);
           64-byte EIP-2098 compact signatures are not accepted (the x402 SDK signs 65 bytes).
        2. ERC-1271 (only when `signer` has code, after 1. failed): a static call of
           `isValidSignature(digest, signature)` with at most `ERC1271_GAS` gas, whose answer
           decodes as the ABI `bytes4` magic value 0x1626ba7e: the first 32-byte word of the
           returndata must be exactly the magic value left-aligned with zero padding (a dirty
           padding is not a valid `bytes4` encoding, and it is what a contract that echoes its
           calldata would answer), at least 32 bytes returned, anything after the first word
           ignored as an ABI decoder does. Only 32 bytes are copied back, so a huge answer
           costs the caller nothing; a revert, a short or empty answer, or running out of the
           bounded gas is simply "not valid". Contract signatures are opaque here: no low-s or
           length rule applies to them (up to `SIGNATURE_MAX` bytes).
@dev    Tested with hypothesis in tests/contracts/test_signature_checker.py.
"""

# @dev Longest signature accepted (ERC-1271 signers may use long ones: multisig, passkeys).
SIGNATURE_MAX: constant(uint256) = 1024

# @dev secp256k1n / 2: an ECDSA signature with a larger `s` is refused (EIP-2).
MALLEABILITY_THRESHOLD: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)

# @dev `isValidSignature(bytes32,bytes)`: the call's selector and the magic answer.
ERC1271_MAGIC: constant(bytes4) = 0x1626BA7E

# @dev Gas given to a contract signer's `isValidSignature`: enough for multisig wallets and
# P-256 passkey verifiers written in Solidity (~200k-350k), bounded so that a hostile signer
# cannot spend the whole transaction's gas (e.g. of a claim over many channels).
ERC1271_GAS: constant(uint256) = 500_000


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[SIGNATURE_MAX]) -> address:
    """
    @dev The ECDSA signer of `digest`, or the zero address when `signature` breaks a rule of
         the module docstring (length, `v`, high `s`) or does not recover.
    """
    if len(signature) != 65:
        return empty(address)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 2:
        v += 27
    if v != 27 and v != 28:
        return empty(address)
    if s > MALLEABILITY_THRESHOLD:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@view
def _is_valid_erc1271_signature(signer: address, digest: bytes32, signature: Bytes[SIGNATURE_MAX]) -> bool:
    """
    @dev True when contract `signer` answers `isValidSignature(digest, signature)` with the
         magic value within `ERC1271_GAS` (see the module docstring).
    """
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        signer,
        abi_encode(digest, signature, method_id=ERC1271_MAGIC),
        max_outsize=32,
        gas=ERC1271_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    return success and len(response) == 32 and convert(response, bytes32) == convert(ERC1271_MAGIC, bytes32)


@internal
@view
def _is_valid_signature(signer: address, digest: bytes32, signature: Bytes[SIGNATURE_MAX]) -> bool:
    """
    @dev True when `signature` is `signer`'s over `digest`: ECDSA by `signer`'s key, or, when
         `signer` is a contract, ERC-1271 (see the module docstring for every rule).
    """
    recovered: address = self._recover(digest, signature)
    if recovered != empty(address) and recovered == signer:
        return True
    if signer.is_contract:
        return self._is_valid_erc1271_signature(signer, digest, signature)
    return False
