# pragma version ~=0.4.3
"""
@title AmmPool: a constant-product (x * y = k) pool of two ERC-20 tokens, 0.3% fee
@notice Uniswap-V2 style. The pool is also the ERC-20 of its LP shares.
        Liquidity: send both tokens to the pool, then call `mint(to)`.
        Removal: send LP shares to the pool, then call `burn(to)`.
        Swap: send the input token to the pool, then call `swap(amount0Out, amount1Out, to)`.
        Invariants (checked after every state change):
        - reserve0 == token0.balanceOf(self) and reserve1 == token1.balanceOf(self)
          after mint, burn, swap and sync (skim sends any surplus away);
        - a swap never lowers k: (b0*1000 - in0*3) * (b1*1000 - in1*3) >= r0 * r1 * 1000**2,
          so an exact-in swap pays at most
          amountOut = amountIn*997*reserveOut // (reserveIn*1000 + amountIn*997);
        - MINIMUM_LIQUIDITY LP shares are locked forever at the first mint (owned by address 0).
"""

from ethereum.ercs import IERC20

implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event Mint:
    sender: indexed(address)
    amount0: uint256
    amount1: uint256
    liquidity: uint256

event Burn:
    sender: indexed(address)
    amount0: uint256
    amount1: uint256
    to: indexed(address)

event Swap:
    sender: indexed(address)
    amount0In: uint256
    amount1In: uint256
    amount0Out: uint256
    amount1Out: uint256
    to: indexed(address)

event Sync:
    reserve0: uint256
    reserve1: uint256

MINIMUM_LIQUIDITY: public(constant(uint256)) = 1000
FEE_BPS: public(constant(uint256)) = 30

name: public(constant(String[25])) = "AgentBazaar AMM LP"
symbol: public(constant(String[5])) = "ABLP"
decimals: public(constant(uint8)) = 18

factory: public(immutable(address))
token0: public(immutable(address))
token1: public(immutable(address))

reserve0: uint256
reserve1: uint256

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)


@deploy
def __init__(token_a: address, token_b: address):
    """
    @notice Tokens are stored sorted by address (token0 < token1).
    """
    assert token_a != token_b, "identical tokens"
    assert token_a != empty(address) and token_b != empty(address), "zero address"
    factory = msg.sender
    lower: address = token_a
    upper: address = token_b
    if convert(token_b, uint256) < convert(token_a, uint256):
        lower = token_b
        upper = token_a
    token0 = lower
    token1 = upper


# ---------------------------------------------------------------- LP share ERC-20

@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "insufficient allowance"
        self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@internal
def _transfer(owner: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "transfer to zero address"
    assert self.balanceOf[owner] >= amount, "insufficient balance"
    self.balanceOf[owner] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=owner, receiver=receiver, value=amount)


@internal
def _mint_shares(owner: address, amount: uint256):
    self.totalSupply += amount
    self.balanceOf[owner] += amount
    log Transfer(sender=empty(address), receiver=owner, value=amount)


@internal
def _burn_shares(owner: address, amount: uint256):
    self.balanceOf[owner] -= amount
    self.totalSupply -= amount
    log Transfer(sender=owner, receiver=empty(address), value=amount)


# ---------------------------------------------------------------- pool

@view
@external
def getReserves() -> (uint256, uint256):
    return self.reserve0, self.reserve1


@internal
def _safe_transfer(token: address, to: address, amount: uint256):
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "transfer failed"


@internal
def _update(balance0: uint256, balance1: uint256):
    self.reserve0 = balance0
    self.reserve1 = balance1
    log Sync(reserve0=balance0, reserve1=balance1)


@internal
@view
def _balances() -> (uint256, uint256):
    return staticcall IERC20(token0).balanceOf(self), staticcall IERC20(token1).balanceOf(self)


@external
@nonreentrant
def mint(to: address) -> uint256:
    """
    @notice Mint LP shares for the tokens sent to the pool since the last sync.
    """
    balance0: uint256 = 0
    balance1: uint256 = 0
    balance0, balance1 = self._balances()
    amount0: uint256 = balance0 - self.reserve0
    amount1: uint256 = balance1 - self.reserve1
    supply: uint256 = self.totalSupply
    liquidity: uint256 = 0
    if supply == 0:
        liquidity = isqrt(amount0 * amount1)
        assert liquidity > MINIMUM_LIQUIDITY, "insufficient liquidity minted"
        liquidity -= MINIMUM_LIQUIDITY
        self._mint_shares(empty(address), MINIMUM_LIQUIDITY)
    else:
        liquidity = min(amount0 * supply // self.reserve0, amount1 * supply // self.reserve1)
    assert liquidity > 0, "insufficient liquidity minted"
    self._mint_shares(to, liquidity)
    self._update(balance0, balance1)
    log Mint(sender=msg.sender, amount0=amount0, amount1=amount1, liquidity=liquidity)
    return liquidity


@external
@nonreentrant
def burn(to: address) -> (uint256, uint256):
    """
    @notice Burn the LP shares held by the pool; pay out the pro-rata tokens to `to`.
    """
    balance0: uint256 = 0
    balance1: uint256 = 0
    balance0, balance1 = self._balances()
    liquidity: uint256 = self.balanceOf[self]
    supply: uint256 = self.totalSupply
    amount0: uint256 = liquidity * balance0 // supply
    amount1: uint256 = liquidity * balance1 // supply
    assert amount0 > 0 and amount1 > 0, "insufficient liquidity burned"
    self._burn_shares(self, liquidity)
    self._safe_transfer(token0, to, amount0)
    self._safe_transfer(token1, to, amount1)
    balance0, balance1 = self._balances()
    self._update(balance0, balance1)
    log Burn(sender=msg.sender, amount0=amount0, amount1=amount1, to=to)
    return amount0, amount1


@external
@nonreentrant
def swap(amount0Out: uint256, amount1Out: uint256, to: address):
    """
    @notice Pay out the amounts asked for, if the input already received keeps k (after fee).
    """
    assert amount0Out > 0 or amount1Out > 0, "insufficient output amount"
    r0: uint256 = self.reserve0
    r1: uint256 = self.reserve1
    assert amount0Out < r0 and amount1Out < r1, "insufficient liquidity"
    assert to != token0 and to != token1, "invalid to"
    if amount0Out > 0:
        self._safe_transfer(token0, to, amount0Out)
    if amount1Out > 0:
        self._safe_transfer(token1, to, amount1Out)
    balance0: uint256 = 0
    balance1: uint256 = 0
    balance0, balance1 = self._balances()
    amount0In: uint256 = 0
    amount1In: uint256 = 0
    if balance0 > r0 - amount0Out:
        amount0In = balance0 - (r0 - amount0Out)
    if balance1 > r1 - amount1Out:
        amount1In = balance1 - (r1 - amount1Out)
    assert amount0In > 0 or amount1In > 0, "insufficient input amount"
    adjusted0: uint256 = balance0 * 1000 - amount0In * 3
    adjusted1: uint256 = balance1 * 1000 - amount1In * 3
    assert adjusted0 * adjusted1 >= r0 * r1 * 1000 * 1000, "k"
    self._update(balance0, balance1)
    log Swap(sender=msg.sender, amount0In=amount0In, amount1In=amount1In, amount0Out=amount0Out, amount1Out=amount1Out, to=to)


@external
@nonreentrant
def skim(to: address):
    """
    @notice Send any token balance above the reserves to `to`.
    """
    balance0: uint256 = 0
    balance1: uint256 = 0
    balance0, balance1 = self._balances()
    self._safe_transfer(token0, to, balance0 - self.reserve0)
    self._safe_transfer(token1, to, balance1 - self.reserve1)


@external
@nonreentrant
def sync():
    """
    @notice Set the reserves to the balances (e.g. after a donation).
    """
    balance0: uint256 = 0
    balance1: uint256 = 0
    balance0, balance1 = self._balances()
    self._update(balance0, balance1)
