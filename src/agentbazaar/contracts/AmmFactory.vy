# pragma version ~=0.4.3
"""
@title AmmFactory: deploys AmmPool instances from a blueprint
@notice Unlike Uniswap V2, several pools may exist for the same pair (each `createPool` call
        makes a new one), so a router must choose among them. The factory keeps every pool
        in `allPools`, the pools of each pair in `poolsFor(a, b)` (order of a, b irrelevant),
        and `isPool(address)` so a router can refuse addresses it did not create.
        The factory holds no funds.
"""

MAX_POOLS: constant(uint256) = 4096
MAX_POOLS_PER_PAIR: constant(uint256) = 32
MAX_PAGE: constant(uint256) = 256


interface IAmmPool:
    def getReserves() -> (uint256, uint256): view


struct PoolState:
    pool: address
    token0: address
    token1: address
    reserve0: uint256
    reserve1: uint256

event PoolCreated:
    token0: indexed(address)
    token1: indexed(address)
    pool: address
    index: uint256

poolBlueprint: public(immutable(address))
allPools: public(DynArray[address, MAX_POOLS])
isPool: public(HashMap[address, bool])
_pairPools: HashMap[address, HashMap[address, DynArray[address, MAX_POOLS_PER_PAIR]]]
_tokensOf: HashMap[address, address[2]]


@deploy
def __init__(pool_blueprint: address):
    """
    @param pool_blueprint The AmmPool blueprint (ERC-5202 preamble, deployed as a blueprint).
    """
    assert pool_blueprint != empty(address), "zero blueprint"
    poolBlueprint = pool_blueprint


@internal
@pure
def _sorted(a: address, b: address) -> (address, address):
    if convert(a, uint256) < convert(b, uint256):
        return a, b
    return b, a


@external
def createPool(tokenA: address, tokenB: address) -> address:
    """
    @notice Deploy a new, empty pool for the pair (always a new one, even if others exist).
    """
    assert tokenA != tokenB, "identical tokens"
    assert tokenA != empty(address) and tokenB != empty(address), "zero address"
    token0: address = empty(address)
    token1: address = empty(address)
    token0, token1 = self._sorted(tokenA, tokenB)
    pool: address = create_from_blueprint(poolBlueprint, token0, token1)
    self.allPools.append(pool)
    self.isPool[pool] = True
    self._tokensOf[pool] = [token0, token1]
    self._pairPools[token0][token1].append(pool)
    log PoolCreated(token0=token0, token1=token1, pool=pool, index=len(self.allPools) - 1)
    return pool


@view
@external
def allPoolsLength() -> uint256:
    return len(self.allPools)


@view
@external
def poolsFor(tokenA: address, tokenB: address) -> DynArray[address, MAX_POOLS_PER_PAIR]:
    token0: address = empty(address)
    token1: address = empty(address)
    token0, token1 = self._sorted(tokenA, tokenB)
    return self._pairPools[token0][token1]


@view
@external
def poolStates(start: uint256, count: uint256) -> DynArray[PoolState, MAX_PAGE]:
    """
    @notice Pools `start` .. `start + count - 1` of `allPools` (clipped to the end, at most
            MAX_PAGE) with their tokens and reserves, read in one call at one block.
    """
    states: DynArray[PoolState, MAX_PAGE] = []
    n: uint256 = len(self.allPools)
    for i: uint256 in range(MAX_PAGE):
        if i >= count or start + i >= n:
            break
        pool: address = self.allPools[start + i]
        tokens: address[2] = self._tokensOf[pool]
        r0: uint256 = 0
        r1: uint256 = 0
        r0, r1 = staticcall IAmmPool(pool).getReserves()
        states.append(PoolState(pool=pool, token0=tokens[0], token1=tokens[1], reserve0=r0, reserve1=r1))
    return states
