"""The deployed suite on one chain, read at run time: contracts by manifest key, and the tokens
they define. What gets deployed, and the deployment run, is ``agentbazaar.deployment``; this
module needs none of the layers above the chain, so reading a deployment loads no payments,
channels or data code."""

from __future__ import annotations

from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import Manifest, SuiteContext, load_contract
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ContractError
from agentbazaar.tokens import TokenRegistry, registry_for


def manifest_for(chain: Chain, cfg: BazaarConfig) -> Manifest:
    directory = None if chain.backend == "embedded" else cfg.deployments_dir
    return Manifest.load(directory, chain.chain_id)


class Suite:
    """The deployed suite on one chain: contracts by key and the tokens they define."""

    def __init__(self, chain: Chain, cfg: BazaarConfig, manifest: Manifest | None = None) -> None:
        self.chain = chain
        self.cfg = cfg
        self.manifest = manifest or manifest_for(chain, cfg)
        self.tokens: TokenRegistry = registry_for(cfg, self.manifest)
        self._cache: dict[str, Contract] = {}

    @classmethod
    def from_context(cls, ctx: SuiteContext) -> Suite:
        return cls(ctx.chain, ctx.cfg, ctx.manifest)

    def contract(self, key: str) -> Contract:
        if key not in self._cache:
            self._cache[key] = load_contract(self.chain, self.manifest, key)
        return self._cache[key]

    def has(self, key: str) -> bool:
        return key in self.manifest.contracts

    def token_contract(self, symbol_or_address: str) -> Contract:
        from agentbazaar.chain.compiler import compile_contract

        token = self.tokens.get(symbol_or_address)
        if token.address is None:
            raise ContractError(f"{token.symbol} is the native currency, not a token contract")
        abi = compile_contract("Stablecoin").abi  # any ERC-20 ABI: ours is a superset
        return self.chain.contract(token.address, abi)
