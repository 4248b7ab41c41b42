# pragma version ~=0.4.3
"""
@title AmmRouter: exact-in swaps through explicit AmmPool paths, split routes, liquidity helpers
@notice The router never holds funds between calls: every token it pulls with `transferFrom`
        goes straight into a pool, and each pool pays the next pool (or the recipient).
        - Only pools created by the factory are accepted (`isPool`).
        - A path is a list of pools; hop i swaps the current token for the other token of pool i.
        - Hop outputs use the pool maths exactly:
          amountOut = amountIn*997*reserveOut // (reserveIn*1000 + amountIn*997).
        - Routes of a split execute one after another, so routes that share a pool see the
          reserves left by the routes before them.
        - Reverts with "expired" when block.timestamp > deadline, "slippage" when the total
          output is below the minimum; nothing moves in either case.
"""

from ethereum.ercs import IERC20

MAX_HOPS: constant(uint256) = 4
MAX_ROUTES: constant(uint256) = 4


interface IAmmPool:
    def token0() -> address: view
    def token1() -> address: view
    def getReserves() -> (uint256, uint256): view
    def swap(amount0Out: uint256, amount1Out: uint256, to: address): nonpayable
    def mint(to: address) -> uint256: nonpayable
    def burn(to: address) -> (uint256, uint256): nonpayable
    def transferFrom(owner: address, receiver: address, amount: uint256) -> bool: nonpayable


interface IAmmFactory:
    def isPool(pool: address) -> bool: view


struct Route:
    pools: DynArray[address, MAX_HOPS]
    amount_in: uint256


factory: public(immutable(address))


@deploy
def __init__(amm_factory: address):
    assert amm_factory != empty(address), "zero factory"
    factory = amm_factory


@internal
@pure
def _amount_out(amount_in: uint256, reserve_in: uint256, reserve_out: uint256) -> uint256:
    assert amount_in > 0, "insufficient input amount"
    assert reserve_in > 0 and reserve_out > 0, "insufficient liquidity"
    with_fee: uint256 = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


@internal
@view
def _hop(pool: address, token_in: address, amount_in: uint256) -> (uint256, address, bool):
    """
    @return (amount out, token out, whether token_in is the pool's token0)
    """
    assert staticcall IAmmFactory(factory).isPool(pool), "unknown pool"
    t0: address = staticcall IAmmPool(pool).token0()
    t1: address = staticcall IAmmPool(pool).token1()
    r0: uint256 = 0
    r1: uint256 = 0
    r0, r1 = staticcall IAmmPool(pool).getReserves()
    if token_in == t0:
        return self._amount_out(amount_in, r0, r1), t1, True
    assert token_in == t1, "token not in pool"
    return self._amount_out(amount_in, r1, r0), t0, False


@internal
@view
def _amounts_out(pools: DynArray[address, MAX_HOPS], token_in: address, amount_in: uint256) -> DynArray[uint256, MAX_HOPS + 1]:
    assert len(pools) > 0, "empty path"
    amounts: DynArray[uint256, MAX_HOPS + 1] = [amount_in]
    token: address = token_in
    amount: uint256 = amount_in
    zero_for_one: bool = False
    for pool: address in pools:
        amount, token, zero_for_one = self._hop(pool, token, amount)
        amounts.append(amount)
    return amounts


@internal
def _execute_path(pools: DynArray[address, MAX_HOPS], token_in: address, amount_in: uint256, payer: address, to: address) -> (uint256, address):
    """
    @notice Pull amount_in from payer into the first pool, swap along the path, pay `to`.
    @return (amount received by `to`, token received)
    """
    assert len(pools) > 0, "empty path"
    assert extcall IERC20(token_in).transferFrom(payer, pools[0], amount_in, default_return_value=True), "transferFrom failed"
    token: address = token_in
    amount: uint256 = amount_in
    n: uint256 = len(pools)
    for i: uint256 in range(MAX_HOPS):
        if i == n:
            break
        zero_for_one: bool = False
        out: uint256 = 0
        token_out: address = empty(address)
        out, token_out, zero_for_one = self._hop(pools[i], token, amount)
        recipient: address = to
        if i + 1 < n:
            recipient = pools[i + 1]
        if zero_for_one:
            extcall IAmmPool(pools[i]).swap(0, out, recipient)
        else:
            extcall IAmmPool(pools[i]).swap(out, 0, recipient)
        token = token_out
        amount = out
    return amount, token


@external
def swapExactIn(path_pools: DynArray[address, MAX_HOPS], token_in: address, amount_in: uint256, min_amount_out: uint256, to: address, deadline: uint256) -> uint256:
    """
    @notice Swap exactly amount_in of token_in (pulled from msg.sender) along path_pools.
    @return The amount of the last token paid to `to`.
    """
    assert block.timestamp <= deadline, "expired"
    amounts: DynArray[uint256, MAX_HOPS + 1] = self._amounts_out(path_pools, token_in, amount_in)
    assert amounts[len(amounts) - 1] >= min_amount_out, "slippage"
    received: uint256 = 0
    token_out: address = empty(address)
    received, token_out = self._execute_path(path_pools, token_in, amount_in, msg.sender, to)
    return received


@external
def swapSplit(routes: DynArray[Route, MAX_ROUTES], token_in: address, min_amount_out: uint256, to: address, deadline: uint256) -> uint256:
    """
    @notice Execute several exact-in routes in order; all start at token_in and must end at the
            same token. One aggregate minimum applies to the sum of their outputs.
    @return The total amount of the output token paid to `to`.
    """
    assert block.timestamp <= deadline, "expired"
    assert len(routes) > 0, "no routes"
    total: uint256 = 0
    first_out: address = empty(address)
    for route: Route in routes:
        received: uint256 = 0
        token_out: address = empty(address)
        received, token_out = self._execute_path(route.pools, token_in, route.amount_in, msg.sender, to)
        if first_out == empty(address):
            first_out = token_out
        assert token_out == first_out, "routes end in different tokens"
        total += received
    assert total >= min_amount_out, "slippage"
    return total


@view
@external
def getAmountsOut(path_pools: DynArray[address, MAX_HOPS], token_in: address, amount_in: uint256) -> DynArray[uint256, MAX_HOPS + 1]:
    """
    @notice The input followed by each hop's output, at the current reserves.
    """
    return self._amounts_out(path_pools, token_in, amount_in)


@internal
@view
def _liquidity_amounts(pool: address, desired0: uint256, desired1: uint256, min0: uint256, min1: uint256) -> (uint256, uint256):
    r0: uint256 = 0
    r1: uint256 = 0
    r0, r1 = staticcall IAmmPool(pool).getReserves()
    if r0 == 0 and r1 == 0:
        return desired0, desired1
    optimal1: uint256 = desired0 * r1 // r0
    if optimal1 <= desired1:
        assert optimal1 >= min1, "insufficient token1 amount"
        return desired0, optimal1
    optimal0: uint256 = desired1 * r0 // r1
    assert optimal0 <= desired0, "bad ratio"
    assert optimal0 >= min0, "insufficient token0 amount"
    return optimal0, desired1


@external
def addLiquidity(pool: address, amount0_desired: uint256, amount1_desired: uint256, amount0_min: uint256, amount1_min: uint256, to: address, deadline: uint256) -> (uint256, uint256, uint256):
    """
    @notice Deposit at the pool's current ratio (amounts in the pool's token0/token1 order),
            pulled from msg.sender; LP shares go to `to`.
    @return (amount0, amount1, liquidity)
    """
    assert block.timestamp <= deadline, "expired"
    assert staticcall IAmmFactory(factory).isPool(pool), "unknown pool"
    amount0: uint256 = 0
    amount1: uint256 = 0
    amount0, amount1 = self._liquidity_amounts(pool, amount0_desired, amount1_desired, amount0_min, amount1_min)
    t0: address = staticcall IAmmPool(pool).token0()
    t1: address = staticcall IAmmPool(pool).token1()
    assert extcall IERC20(t0).transferFrom(msg.sender, pool, amount0, default_return_value=True), "transferFrom failed"
    assert extcall IERC20(t1).transferFrom(msg.sender, pool, amount1, default_return_value=True), "transferFrom failed"
    liquidity: uint256 = extcall IAmmPool(pool).mint(to)
    return amount0, amount1, liquidity


@external
def removeLiquidity(pool: address, liquidity: uint256, amount0_min: uint256, amount1_min: uint256, to: address, deadline: uint256) -> (uint256, uint256):
    """
    @notice Burn `liquidity` LP shares of msg.sender (approved to the router); tokens go to `to`.
    @return (amount0, amount1)
    """
    assert block.timestamp <= deadline, "expired"
    assert staticcall IAmmFactory(factory).isPool(pool), "unknown pool"
    assert extcall IAmmPool(pool).transferFrom(msg.sender, pool, liquidity), "transferFrom failed"
    amount0: uint256 = 0
    amount1: uint256 = 0
    amount0, amount1 = extcall IAmmPool(pool).burn(to)
    assert amount0 >= amount0_min, "insufficient token0 amount"
    assert amount1 >= amount1_min, "insufficient token1 amount"
    return amount0, amount1
