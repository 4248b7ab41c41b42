# pragma version ~=0.4.3
"""
@title ExactBatchSettler
@notice Submits many EIP-3009 `transferWithAuthorization` calls of one token in one transaction,
        so an x402 facilitator pays the 21,000 base gas (and the cold token access) once per
        batch instead of once per payment. An authorization that fails (used nonce, expired,
        insufficient balance) is skipped: the others still settle, and the outcome of each can be
        read from the token's `AuthorizationUsed(authorizer, nonce)` events in the receipt.
        Anyone may call it: each transfer is authorized by its payer's signature, not by the
        caller, and this contract never holds tokens.
"""

MAX_BATCH: constant(uint256) = 128


struct Authorization:
    payer: address
    to: address
    amount: uint256
    valid_after: uint256
    valid_before: uint256
    nonce: bytes32
    v: uint8
    r: bytes32
    s: bytes32


event BatchSettled:
    token: indexed(address)
    submitted: uint256
    settled: uint256


@external
def settle(token: address, authorizations: DynArray[Authorization, MAX_BATCH]) -> uint256:
    """
    @notice Settle each authorization against `token`; returns how many succeeded.
    """
    assert token.is_contract, "token has no code"
    settled: uint256 = 0
    for a: Authorization in authorizations:
        ok: bool = raw_call(
            token,
            abi_encode(
                a.payer,
                a.to,
                a.amount,
                a.valid_after,
                a.valid_before,
                a.nonce,
                a.v,
                a.r,
                a.s,
                method_id=method_id(
                    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
                ),
            ),
            revert_on_failure=False,
        )
        if ok:
            settled += 1
    log BatchSettled(token=token, submitted=len(authorizations), settled=settled)
    return settled
