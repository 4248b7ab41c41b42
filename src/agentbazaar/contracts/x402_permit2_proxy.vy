# pragma version ~=0.4.3
"""
@title The shared part of the x402 Permit2 proxies (a module, not deployed alone)
@notice `X402ExactPermit2Proxy` and `X402UptoPermit2Proxy` are the spenders x402 payers name in
        their Permit2 signatures. Each binds the payee (and more) into the signed witness, so
        whoever submits the payment cannot redirect it. This module holds what both do: the
        checks before the Permit2 call, the call itself, and the optional EIP-2612 permit that
        gives Permit2 its allowance in the same transaction.

        Events and custom errors are the x402 contracts' own (same names and signatures).
"""

from lib import signature_checker

# Longest signature and witness type string passed on to Permit2 (Permit2.vy's bounds).
SIG_MAX: constant(uint256) = signature_checker.SIGNATURE_MAX
WITNESS_TYPE_MAX: constant(uint256) = 1024
# Longest revert reason of a failed EIP-2612 permit reported in an event.
_REVERT_MAX: constant(uint256) = 256
_ERROR_SELECTOR: constant(bytes4) = 0x08c379a0  # Error(string)
_PANIC_SELECTOR: constant(bytes4) = 0x4e487b71  # Panic(uint256)


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


struct EIP2612Permit:
    value: uint256
    deadline: uint256
    r: bytes32
    s: bytes32
    v: uint8


interface IPermit2:
    def permitWitnessTransferFrom(
        permit: PermitTransferFrom,
        transferDetails: SignatureTransferDetails,
        owner: address,
        witness: bytes32,
        witnessTypeString: String[WITNESS_TYPE_MAX],
        signature: Bytes[SIG_MAX],
    ): nonpayable


event Settled:
    pass


event SettledWithPermit:
    pass


event EIP2612PermitFailedWithReason:
    token: indexed(address)
    owner: indexed(address)
    reason: String[_REVERT_MAX]


event EIP2612PermitFailedWithPanic:
    token: indexed(address)
    owner: indexed(address)
    errorCode: uint256


event EIP2612PermitFailedWithData:
    token: indexed(address)
    owner: indexed(address)
    data: Bytes[_REVERT_MAX]


@internal
@pure
def _require_permit2(permit2: address):
    if permit2 == empty(address):
        raw_revert(method_id("InvalidPermit2Address()"))


@internal
def _settle(
    permit2: address,
    permit: PermitTransferFrom,
    amount: uint256,
    owner: address,
    to: address,
    valid_after: uint256,
    witness_hash: bytes32,
    witness_type: String[WITNESS_TYPE_MAX],
    signature: Bytes[SIG_MAX],
):
    """
    @dev Moves `amount` from `owner` to `to` through Permit2 (which checks the deadline, that
         `amount` is within the permit, the nonce, and the signature over the witness).
    """
    if amount == 0:
        raw_revert(method_id("InvalidAmount()"))
    if owner == empty(address):
        raw_revert(method_id("InvalidOwner()"))
    if to == empty(address):
        raw_revert(method_id("InvalidDestination()"))
    if block.timestamp < valid_after:
        raw_revert(method_id("PaymentTooEarly()"))
    extcall IPermit2(permit2).permitWitnessTransferFrom(
        permit,
        SignatureTransferDetails(to=to, requestedAmount=amount),
        owner,
        witness_hash,
        witness_type,
        signature,
    )


@internal
def _execute_permit(
    permit2: address, token: address, owner: address, permit2612: EIP2612Permit, permitted: uint256
):
    """
    @dev Tries the token's EIP-2612 `permit(owner, Permit2, value, ...)`. A failure is reported
         in an event, not a revert: the allowance may already exist (or the permit was used by
         someone else first), and the Permit2 transfer decides.
    """
    if permit2612.value != permitted:
        raw_revert(method_id("Permit2612AmountMismatch()"))
    success: bool = False
    data: Bytes[_REVERT_MAX] = b""
    success, data = raw_call(
        token,
        abi_encode(
            owner,
            permit2,
            permit2612.value,
            permit2612.deadline,
            permit2612.v,
            permit2612.r,
            permit2612.s,
            method_id=method_id("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"),
        ),
        max_outsize=_REVERT_MAX,
        revert_on_failure=False,
    )
    if success:
        return
    if self._is_reason(data):
        length: uint256 = extract32(data, 36, output_type=uint256)
        reason: String[_REVERT_MAX] = convert(slice(data, 68, length), String[_REVERT_MAX])
        log EIP2612PermitFailedWithReason(token=token, owner=owner, reason=reason)
    elif len(data) == 36 and convert(slice(data, 0, 4), bytes4) == _PANIC_SELECTOR:
        log EIP2612PermitFailedWithPanic(
            token=token, owner=owner, errorCode=extract32(data, 4, output_type=uint256)
        )
    else:
        log EIP2612PermitFailedWithData(token=token, owner=owner, data=data)


@internal
@pure
def _is_reason(data: Bytes[_REVERT_MAX]) -> bool:
    """
    @dev True when `data` is a well-formed Error(string) whose reason fits an event.
    """
    if len(data) < 68 or convert(slice(data, 0, 4), bytes4) != _ERROR_SELECTOR:
        return False
    if extract32(data, 4, output_type=uint256) != 32:
        return False
    return extract32(data, 36, output_type=uint256) + 68 <= len(data)
