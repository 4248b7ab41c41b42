"""Shared set-up of the authoring tests (imported by name: tests run in prepend import mode):
an embedded chain with our stablecoin, named wallets in a temp data directory, the alice wallet
funded, and the context names and amounts resolve against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentbazaar.authoring import Namer, RecordStore, ResolveContext
from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.tokens import NATIVE, Token, TokenRegistry
from agentbazaar.wallet import KeyStore, Ledger, PolicyStore, Wallet

PASS = "authoring-test"
NAMES = ("alice", "bob", "carol", "dave")


@dataclass
class World:
    chain: Chain
    home: Path
    usdc: Token
    tokens: TokenRegistry
    keys: KeyStore
    wallet: Wallet  # alice
    store: RecordStore

    def ctx(self) -> ResolveContext:
        return ResolveContext(names=lambda n: self.keys.address_of(n, PASS), tokens=self.tokens,
                              now=self.chain.timestamp(), me=self.wallet.address)  # fmt: skip

    def namer(self) -> Namer:
        return Namer(self.tokens, {a.lower(): n for n, a in self.keys.wallets(PASS)})

    def address(self, name: str) -> str:
        return str(self.keys.address_of(name, PASS))


def make_world(home: Path, *, usdc_for_alice: int = 10_000 * 10**6) -> World:
    chain = Chain.embedded()
    dev = dev_account(0)
    chain.fund_native(dev.address, 10**21)
    art = compile_contract("Stablecoin")
    contract, _ = chain.deploy(dev, art.abi, art.bytecode, "USD Coin", "USDC", "USD Coin", "2")
    usdc = Token("USDC", 6, contract.address, "USD Coin", "2")
    keys = KeyStore(home / "keystores", scrypt_cost=1024)
    for name in NAMES:
        keys.create(name, PASS)
    account = keys.unlock("alice", PASS)
    wallet = Wallet("alice", account, lambda: PolicyStore(home / "policies").load("alice"),
                    Ledger(home / "ledger.sqlite"))  # fmt: skip
    chain.fund_native(wallet.address, 10 * 10**18)
    if usdc_for_alice:
        chain.transact(dev, contract.functions.mint(wallet.address, usdc_for_alice))
    tokens = TokenRegistry([NATIVE, usdc])
    return World(chain, home, usdc, tokens, keys, wallet, RecordStore(home))
