# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title WrappedNative: the chain's native currency as an 18-decimal ERC-20 (WETH9 semantics)
@notice `deposit()` (or a plain transfer of native currency) mints `msg.value` tokens to the
        sender; `withdraw(wad)` burns `wad` tokens and sends `wad` wei back. Nobody can mint
        otherwise, so the contract's native balance always equals `totalSupply`
        (native currency forced in by SELFDESTRUCT or as a coinbase reward only adds to it).
        ERC-20 and EIP-2612 `permit` come from snekmate's `erc20` module; its minter and
        burn functions are deliberately not exported. As in WETH9, `transferFrom` by the
        owner itself needs no allowance, and an allowance of max(uint256) never decreases.
"""

from ethereum.ercs import IERC20

implements: IERC20

from ethereum.ercs import IERC20Detailed

implements: IERC20Detailed

from snekmate.auth import ownable

initializes: ownable

from snekmate.tokens import erc20

initializes: erc20[ownable := ownable]

exports: (
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.approve,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
)


event Deposit:
    dst: indexed(address)
    wad: uint256


event Withdrawal:
    src: indexed(address)
    wad: uint256


@deploy
@payable
def __init__(name_: String[25], symbol_: String[5]):
    """
    @param name_ Token name (at most 25 characters), e.g. "Wrapped Ether"; also the
           EIP-712 domain name (version "1").
    @param symbol_ Token symbol (at most 5 characters), e.g. "WETH".
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, 18, name_, "1")
    # Any value sent with the deployment is wrapped for the deployer.
    if msg.value > 0:
        self._deposit(msg.sender, msg.value)


@external
@payable
def deposit():
    """
    @dev Wraps `msg.value` wei into as many tokens for the caller.
    """
    self._deposit(msg.sender, msg.value)


@external
@payable
def __default__():
    """
    @dev A plain transfer of native currency is a deposit.
    """
    self._deposit(msg.sender, msg.value)


@external
def withdraw(wad: uint256):
    """
    @dev Burns `wad` of the caller's tokens and sends `wad` wei to the caller
         (state first, then the call; a failing recipient reverts everything).
    """
    erc20._burn(msg.sender, wad)
    log Withdrawal(src=msg.sender, wad=wad)
    raw_call(msg.sender, b"", value=wad)


@external
def transferFrom(src: address, dst: address, wad: uint256) -> bool:
    """
    @dev Moves `wad` tokens from `src` to `dst`; a caller other than `src` spends allowance.
    """
    if src != msg.sender:
        erc20._spend_allowance(src, msg.sender, wad)
    erc20._transfer(src, dst, wad)
    return True


@internal
def _deposit(dst: address, wad: uint256):
    erc20._mint(dst, wad)
    log Deposit(dst=dst, wad=wad)
