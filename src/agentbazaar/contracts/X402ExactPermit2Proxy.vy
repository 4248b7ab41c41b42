# pragma version ~=0.4.3
"""
@title x402 exact Permit2 proxy: settle a fixed payment signed through Permit2
@notice The spender named in an x402 `exact` payment made with Permit2 (tokens without
        EIP-3009). The payer signs the price (`permit.permitted.amount`) with a witness binding
        the payee and a start time; anyone may submit it, and exactly the permitted amount
        moves to `witness.to`, once (Permit2's nonce).

        Wire-compatible with the x402 `x402ExactPermit2Proxy` (the SDK's
        X402_EXACT_PERMIT2_PROXY_ABI, events and custom errors):
        - settle(permit, owner, (to, validAfter), signature)
        - settleWithPermit((value, deadline, r, s, v), permit, owner, witness, signature)
        - PERMIT2(), WITNESS_TYPE_STRING(), WITNESS_TYPEHASH()
"""

import x402_permit2_proxy as proxy


struct Witness:
    to: address
    validAfter: uint256


WITNESS_TYPE_STRING: public(constant(String[100])) = (
    "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
)
WITNESS_TYPEHASH: public(constant(bytes32)) = keccak256("Witness(address to,uint256 validAfter)")
PERMIT2: public(immutable(address))


@deploy
def __init__(permit2: address):
    proxy._require_permit2(permit2)
    PERMIT2 = permit2


@external
@nonreentrant
def settle(
    permit: proxy.PermitTransferFrom,
    owner: address,
    witness: Witness,
    signature: Bytes[proxy.SIG_MAX],
):
    """
    @dev Moves the permitted amount from `owner` to `witness.to`.
    """
    self._settle(permit, owner, witness, signature)
    log proxy.Settled()


@external
@nonreentrant
def settleWithPermit(
    permit2612: proxy.EIP2612Permit,
    permit: proxy.PermitTransferFrom,
    owner: address,
    witness: Witness,
    signature: Bytes[proxy.SIG_MAX],
):
    """
    @dev Like `settle`, after trying the token's EIP-2612 permit that approves Permit2.
    """
    proxy._execute_permit(
        PERMIT2, permit.permitted.token, owner, permit2612, permit.permitted.amount
    )
    self._settle(permit, owner, witness, signature)
    log proxy.SettledWithPermit()


@internal
def _settle(
    permit: proxy.PermitTransferFrom, owner: address, witness: Witness, signature: Bytes[proxy.SIG_MAX]
):
    witness_hash: bytes32 = keccak256(abi_encode(WITNESS_TYPEHASH, witness.to, witness.validAfter))
    proxy._settle(
        PERMIT2,
        permit,
        permit.permitted.amount,
        owner,
        witness.to,
        witness.validAfter,
        witness_hash,
        WITNESS_TYPE_STRING,
        signature,
    )
