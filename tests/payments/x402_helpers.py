"""Shared helpers of the x402 tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.server import PaymentTerms
from agentbazaar.tokens import Token

START_BALANCE = 100_000_000  # 100 USDC


@dataclass
class PayEnv:
    chain: Chain
    token: Token
    usdc: Contract
    payer: LocalAccount
    gas: LocalAccount
    seller: str
    tmp: Path

    def balance(self, address: str) -> int:
        return int(self.usdc.functions.balanceOf(address).call())

    def terms(self) -> PaymentTerms:
        return PaymentTerms(network=self.chain.network, token=self.token, pay_to=self.seller)

    def fund(self, account: LocalAccount, amount: int = START_BALANCE) -> None:
        self.chain.transact(dev_account(0), self.usdc.functions.mint(account.address, amount))
