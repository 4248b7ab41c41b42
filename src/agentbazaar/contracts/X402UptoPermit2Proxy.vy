# pragma version ~=0.4.3
"""
@title x402 upto Permit2 proxy: settle a metered payment of at most what was signed
@notice The spender named in an x402 `upto` payment. The payer signs, through Permit2, a
        maximum (`permit.permitted.amount`) with a witness binding the payee, the one
        facilitator allowed to settle, and a start time; that facilitator settles the amount
        actually used, at most the maximum, once (Permit2's nonce).

        Wire-compatible with the x402 `x402UptoPermit2Proxy` (the SDK's
        X402_UPTO_PERMIT2_PROXY_ABI, events and custom errors):
        - settle(permit, amount, owner, (to, facilitator, validAfter), signature)
        - settleWithPermit((value, deadline, r, s, v), permit, amount, owner, witness, signature)
        - PERMIT2(), WITNESS_TYPE_STRING(), WITNESS_TYPEHASH()
        Reverts (in this order): AmountExceedsPermitted, UnauthorizedFacilitator (the caller is
        not witness.facilitator), InvalidAmount (zero), InvalidOwner, InvalidDestination,
        PaymentTooEarly, then whatever Permit2 refuses (SignatureExpired, InvalidNonce, ...).
"""

import x402_permit2_proxy as proxy


struct Witness:
    to: address
    facilitator: address
    validAfter: uint256


WITNESS_TYPE_STRING: public(constant(String[120])) = (
    "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)"
)
WITNESS_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Witness(address to,address facilitator,uint256 validAfter)"
)
PERMIT2: public(immutable(address))


@deploy
def __init__(permit2: address):
    proxy._require_permit2(permit2)
    PERMIT2 = permit2


@external
@nonreentrant
def settle(
    permit: proxy.PermitTransferFrom,
    amount: uint256,
    owner: address,
    witness: Witness,
    signature: Bytes[proxy.SIG_MAX],
):
    """
    @dev Moves `amount` (at most the permitted maximum) from `owner` to `witness.to`; only
         `witness.facilitator` may call it.
    """
    self._settle(permit, amount, owner, witness, signature)
    log proxy.Settled()


@external
@nonreentrant
def settleWithPermit(
    permit2612: proxy.EIP2612Permit,
    permit: proxy.PermitTransferFrom,
    amount: uint256,
    owner: address,
    witness: Witness,
    signature: Bytes[proxy.SIG_MAX],
):
    """
    @dev Like `settle`, after trying the token's EIP-2612 permit that approves Permit2 for the
         permitted maximum (a payer who never approved Permit2 pays in one transaction).
    """
    self._check(permit, amount, witness)
    proxy._execute_permit(
        PERMIT2, permit.permitted.token, owner, permit2612, permit.permitted.amount
    )
    self._settle(permit, amount, owner, witness, signature)
    log proxy.SettledWithPermit()


@internal
@view
def _check(permit: proxy.PermitTransferFrom, amount: uint256, witness: Witness):
    if amount > permit.permitted.amount:
        raw_revert(method_id("AmountExceedsPermitted()"))
    if msg.sender != witness.facilitator:
        raw_revert(method_id("UnauthorizedFacilitator()"))


@internal
def _settle(
    permit: proxy.PermitTransferFrom,
    amount: uint256,
    owner: address,
    witness: Witness,
    signature: Bytes[proxy.SIG_MAX],
):
    self._check(permit, amount, witness)
    witness_hash: bytes32 = keccak256(
        abi_encode(WITNESS_TYPEHASH, witness.to, witness.facilitator, witness.validAfter)
    )
    proxy._settle(
        PERMIT2,
        permit,
        amount,
        owner,
        witness.to,
        witness.validAfter,
        witness_hash,
        WITNESS_TYPE_STRING,
        signature,
    )
