# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title CappedToken: an ERC-20 whose total supply can never exceed a cap
@notice snekmate's `erc20` (ERC-20, EIP-2612 `permit`, EIP-5267, minter role, burn) with
        `mint` limited by an immutable `cap`; `initial_supply` is minted to `holder` at
        deployment. The deployer is the owner and the first minter.
        Invariants (checked as properties before deployment):
        - totalSupply <= cap after every call; a mint past the cap reverts;
        - the balances add up to totalSupply;
        - only minters mint; transfers move exactly the amount and create nothing.
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
    erc20.owner,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.is_minter,
    erc20.nonces,
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    erc20.burn,
    erc20.burn_from,
    erc20.set_minter,
    erc20.permit,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
    erc20.transfer_ownership,
    erc20.renounce_ownership,
)

cap: public(immutable(uint256))


@deploy
def __init__(
    name_: String[25], symbol_: String[5], decimals_: uint8, cap_: uint256, holder_: address, initial_supply_: uint256
):
    """
    @param name_ The token's name.
    @param symbol_ The token's symbol.
    @param decimals_ Decimal places (18 for most tokens).
    @param cap_ The most that can ever exist (base units).
    @param holder_ Who receives the initial supply.
    @param initial_supply_ Minted to `holder_` at deployment (at most `cap_`).
    """
    assert cap_ > 0, "capped: cap is zero"
    assert initial_supply_ <= cap_, "capped: initial supply over the cap"
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
    cap = cap_
    if initial_supply_ > 0:
        erc20._mint(holder_, initial_supply_)


@external
def mint(owner: address, amount: uint256):
    """
    @dev Creates `amount` tokens for `owner`; only minters, never past the cap.
    """
    assert erc20.is_minter[msg.sender], "erc20: access is denied"
    assert erc20.totalSupply + amount <= cap, "capped: cap exceeded"
    erc20._mint(owner, amount)
