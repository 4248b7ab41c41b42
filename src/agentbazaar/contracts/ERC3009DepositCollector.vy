# pragma version ~=0.4.3
"""
@title ERC3009DepositCollector
@notice Pulls a channel deposit with EIP-3009 `receiveWithAuthorization` (gasless for the payer)
        and forwards it to the BatchSettlement escrow that called it.
@dev Same ABI as the x402 reference collector. The authorization nonce is bound to the channel:
     `keccak256(abi.encode(channelId, salt))`, so a signature for one channel cannot fund another.
     The escrow address is an immutable; immutables live in the runtime code, so the deployed code
     can be copied verbatim to the canonical address on a development chain.
"""

from ethereum.ercs import IERC20


MAX_SIGNATURE: constant(uint256) = 1024
MAX_COLLECTOR_DATA: constant(uint256) = 2048

x402BatchSettlement: public(immutable(address))


@deploy
def __init__(batch_settlement: address):
    if batch_settlement == empty(address):
        raw_revert(method_id("InvalidX402BatchSettlementAddress()"))
    x402BatchSettlement = batch_settlement


@external
def collect(
    payer: address, token: address, amount: uint256, channelId: bytes32, collectorData: Bytes[MAX_COLLECTOR_DATA]
):
    if msg.sender != x402BatchSettlement:
        raw_revert(method_id("OnlyX402BatchSettlement()"))
    valid_after: uint256 = 0
    valid_before: uint256 = 0
    salt: uint256 = 0
    signature: Bytes[MAX_SIGNATURE] = b""
    valid_after, valid_before, salt, signature = abi_decode(
        collectorData, (uint256, uint256, uint256, Bytes[MAX_SIGNATURE])
    )
    nonce: bytes32 = keccak256(abi_encode(channelId, salt))
    # tightly ABI-encoded (an interface call would send the whole Bytes[MAX_SIGNATURE] buffer,
    # which tokens that check calldata length refuse)
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
    extcall IERC20(token).transfer(x402BatchSettlement, amount, default_return_value=True)
