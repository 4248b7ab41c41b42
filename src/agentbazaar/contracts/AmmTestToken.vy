# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title AmmTestToken: a plain ERC-20 with any number of decimals, for the local pool set
@notice Used by `bazaar deploy` on local chains to give the AMM more than two tokens (e.g. DAI
        with 18 decimals, WBTC with 8). ERC-20, EIP-2612 `permit` and the minter role come
        from snekmate's `erc20` module; the deployer is owner and minter.
"""

from ethereum.ercs import IERC20

implements: IERC20

from ethereum.ercs import IERC20Detailed

implements: IERC20Detailed

from snekmate.auth import ownable

initializes: ownable

from snekmate.tokens import erc20

initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
@payable
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    """
    @param name_ Token name (at most 25 characters), also the EIP-712 domain name.
    @param symbol_ Token symbol (at most 5 characters).
    @param decimals_ Decimals of the token's base unit.
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
