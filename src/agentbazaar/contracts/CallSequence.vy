# pragma version ~=0.4.3
"""
@title CallSequence
@notice Simulation only, never deployed: `Chain.simulate_sequence` places this runtime code at
        the sender's own address for one `eth_call` (a state override; on the embedded chain, a
        snapshot that is reverted), so each call runs with `msg.sender` = the sender and sees the
        state the calls before it left (an ERC-20 `approve`, then the swap that spends it).
@dev Unlike Multicall3's `tryAggregate` (BatchSettlementMulticall.vy, kept wire-compatible for
     the x402 SDK), it measures the gas of each call and stops at the first call that fails.
"""

MAX_CALLS: constant(uint256) = 8
MAX_CALLDATA: constant(uint256) = 8192
MAX_RETURN: constant(uint256) = 1024


struct Call:
    target: address
    callData: Bytes[MAX_CALLDATA]


struct Outcome:
    success: bool
    gasUsed: uint256
    returnData: Bytes[MAX_RETURN]


@external
def run(calls: DynArray[Call, MAX_CALLS]) -> DynArray[Outcome, MAX_CALLS]:
    outcomes: DynArray[Outcome, MAX_CALLS] = []
    for c: Call in calls:
        ok: bool = False
        out: Bytes[MAX_RETURN] = b""
        before: uint256 = msg.gas
        ok, out = raw_call(c.target, c.callData, max_outsize=MAX_RETURN, revert_on_failure=False)
        outcomes.append(Outcome(success=ok, gasUsed=before - msg.gas, returnData=out))
        if not ok:
            break
    return outcomes
