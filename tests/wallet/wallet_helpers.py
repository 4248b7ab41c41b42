"""Helpers shared by the wallet tests (imported by name: tests run in prepend import mode)."""

from __future__ import annotations

from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.tokens import Token

USDC_ADDRESS = "0x" + "ab" * 20  # a token address for chain-free policy tests


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def deploy_usdc(chain: Chain) -> tuple[Contract, Token]:
    """Our Stablecoin on ``chain``, minted by dev account 0."""
    minter = dev_account(0)
    if chain.native_balance(minter.address) < 10**20:
        chain.fund_native(minter.address, 10**21)
    art = compile_contract("Stablecoin")
    contract, _ = chain.deploy(
        minter, art.abi, art.bytecode, "USD Coin", "USDC", "USD Coin", "2", name="USDC"
    )
    return contract, Token("USDC", 6, contract.address, "USD Coin", "2")


def mint(chain: Chain, contract: Contract, to: str, units: int) -> None:
    chain.transact(dev_account(0), contract.functions.mint(to, units))
