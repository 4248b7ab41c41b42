# pragma version ~=0.4.3
"""
@title BatchSettlementMulticall
@notice The `tryAggregate` subset of Multicall3, for development chains that have no Multicall3
        (anvil, the embedded chain). The x402 SDK's batch-settlement facilitator reads a
        channel's `channels`, `pendingWithdrawals` and `refundNonce` in one `tryAggregate` at the
        canonical Multicall3 address; our suite places this code there when nothing is there.
@dev Same selector and ABI encoding as Multicall3's
     `tryAggregate(bool requireSuccess, (address target, bytes callData)[] calls)
      returns ((bool success, bytes returnData)[])`.
"""

MAX_CALLS: constant(uint256) = 64
MAX_CALLDATA: constant(uint256) = 4096
MAX_RETURN: constant(uint256) = 1024


struct Call:
    target: address
    callData: Bytes[MAX_CALLDATA]


struct Result:
    success: bool
    returnData: Bytes[MAX_RETURN]


@external
@payable
def tryAggregate(requireSuccess: bool, calls: DynArray[Call, MAX_CALLS]) -> DynArray[Result, MAX_CALLS]:
    results: DynArray[Result, MAX_CALLS] = []
    for c: Call in calls:
        ok: bool = False
        out: Bytes[MAX_RETURN] = b""
        ok, out = raw_call(c.target, c.callData, max_outsize=MAX_RETURN, revert_on_failure=False)
        assert ok or not requireSuccess, "Multicall3: call failed"
        results.append(Result(success=ok, returnData=out))
    return results
