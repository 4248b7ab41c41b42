"""The AMM on a chain: read every pool in one batch, quote, simulate with eth_call, execute.

``Amm`` is the IO edge of the dex: it turns ``AmmFactory.poolStates`` (one ``eth_call`` per 256
pools, all pinned to one block) into ``Pool`` snapshots, hands them to the pure router, and
encodes the chosen routes for ``AmmRouter`` (``swapExactIn`` for one route, ``swapSplit`` for
several). Where the contracts are: the suite's manifest on local chains, ``[dex] factory`` and
``[dex] router`` in ``bazaar.toml`` on rpc chains.

Signing is not done here: ``swap_function`` returns the contract call, and the caller (the
intents layer) sends it through the wallet's policy-checked spend. ``simulate`` can run the
router's ``approve`` and the swap together in one simulation, so a whole plan is checked before
its first signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.dex.errors import DexInputError, NoRouteError
from agentbazaar.dex.router import best_path, route_best_execution
from agentbazaar.dex.types import Pool, Quote
from agentbazaar.errors import ContractError, TransactionReverted

if TYPE_CHECKING:
    from agentbazaar.suite import Suite
    from agentbazaar.tokens import Token

PAGE = 256  # AmmFactory.vy MAX_PAGE
FACTORY_KEY = "AmmFactory"
ROUTER_KEY = "AmmRouter"


@dataclass(frozen=True)
class SwapSimulation:
    """What ``eth_call`` of the swap returned at the current state (nothing signed); with an
    approval simulated first, ``approval_gas`` is its gas."""

    amount_out: int
    gas: int
    approval_gas: int = 0


INTRINSIC_GAS = 21_000
_APPROVE = bytes.fromhex("095ea7b3")  # approve(address,uint256)


class Amm:
    """Factory + router of one chain."""

    def __init__(self, chain: Chain, factory: Contract, router: Contract) -> None:
        self.chain = chain
        self.factory = factory
        self.router = router

    @classmethod
    def from_suite(cls, suite: Suite) -> Amm:
        extra = suite.cfg.extra.get("dex", {})
        if suite.has(FACTORY_KEY) and suite.has(ROUTER_KEY):
            return cls(suite.chain, suite.contract(FACTORY_KEY), suite.contract(ROUTER_KEY))
        if isinstance(extra, dict) and extra.get("factory") and extra.get("router"):
            factory = suite.chain.contract(
                str(extra["factory"]), compile_contract("AmmFactory").abi
            )
            router = suite.chain.contract(str(extra["router"]), compile_contract("AmmRouter").abi)
            return cls(suite.chain, factory, router)
        raise ContractError(
            f"no AMM known on chain {suite.chain.chain_id}: run `bazaar deploy` on a local chain, "
            "or set [dex] factory and router in bazaar.toml"
        )

    # ---- reads ----------------------------------------------------------------------------
    def pools(self, block: int | None = None) -> list[Pool]:
        """Every pool with tokens and reserves, read at one block (one call per 256 pools)."""
        at = self.chain.block_number() if block is None else block
        pools: list[Pool] = []
        while True:
            page = self.chain.call(self.factory.functions.poolStates(len(pools), PAGE), block=at)
            pools.extend(Pool(str(p[0]), str(p[1]), str(p[2]), int(p[3]), int(p[4])) for p in page)
            if len(page) < PAGE:
                return pools

    def quote(
        self,
        token_in: Token,
        token_out: Token,
        amount_in: int,
        *,
        gas_price_wei: int | None = None,
        weth: Token | None = None,
        max_splits: int = 4,
        pools: list[Pool] | None = None,
    ) -> Quote:
        """Best execution of ``amount_in`` net of gas at ``gas_price_wei`` (default: current)."""
        if token_in.address is None or token_out.address is None:
            raise DexInputError("the AMM swaps ERC-20 tokens: use WETH for the native currency")
        pools = self.pools() if pools is None else pools
        if gas_price_wei is None:
            gas_price_wei = self.gas_price()
        price = _price_in_wei(pools, token_out, weth)
        return route_best_execution(
            pools,
            token_in.address,
            token_out.address,
            amount_in,
            gas_price_wei=gas_price_wei if price != 0 else 0,
            out_token_price_in_wei=price or None,
            out_token_decimals=token_out.decimals,
            max_splits=max_splits,
        )

    def gas_price(self) -> int:
        fees = self.chain.fee_params()
        return int(fees.get("maxFeePerGas", 0)) // 2 + int(fees.get("maxPriorityFeePerGas", 0))

    # ---- the swap call --------------------------------------------------------------------
    def swap_function(
        self, quote: Quote, min_amount_out: int, to: str, deadline: int
    ) -> ContractFunction:
        """The router call that executes ``quote`` paying at least ``min_amount_out`` to ``to``."""
        routes = quote.router_routes()
        if len(routes) == 1:
            pools, amount = routes[0]
            return self.router.functions.swapExactIn(
                pools, quote.token_in, amount, min_amount_out, to, deadline
            )
        return self.router.functions.swapSplit(routes, quote.token_in, min_amount_out, to, deadline)

    def simulate(
        self, quote: Quote, min_amount_out: int, sender: str, deadline: int, *, approve: int = 0
    ) -> SwapSimulation:
        """eth_call + eth_estimateGas of the swap from ``sender`` (who must have approved); with
        ``approve`` > 0, ``approve(router, approve)`` of the input token and the swap are
        simulated together, the swap seeing the allowance (``Chain.simulate_sequence``).
        Raises ``TransactionReverted`` (``reason``, ``step``) when a step would revert."""
        fn = self.swap_function(quote, min_amount_out, sender, deadline)
        if approve > 0:
            return self._simulate_with_approval(fn, quote.token_in, approve, sender)
        out = int(self.chain.call(fn, sender=sender))
        tx: dict[str, Any] = {
            "from": sender,
            "to": fn.address,
            "data": fn._encode_transaction_data(),
        }
        gas = self.chain.estimate_gas(tx, action="estimate the swap's gas")  # type: ignore[arg-type]
        return SwapSimulation(amount_out=out, gas=gas)

    def _simulate_with_approval(
        self, fn: ContractFunction, token: str, amount: int, sender: str
    ) -> SwapSimulation:
        approval = _APPROVE + self.chain.w3.codec.encode(
            ["address", "uint256"], [self.router.address, amount]
        )
        swap = bytes(HexBytes(fn._encode_transaction_data()))
        steps = self.chain.simulate_sequence(sender, [(token, approval), (fn.address, swap)])
        for step, outcome in zip(("approve the router", "swap"), steps, strict=False):
            if not outcome.success:
                reason = outcome.revert_reason()
                raise TransactionReverted(f"{step} reverted: {reason}", reason=reason, step=step)
        if len(steps) != 2:
            raise TransactionReverted("the simulation stopped early", reason="incomplete")
        (out,) = self.chain.w3.codec.decode(["uint256"], steps[1].output)
        gas = [_with_margin(o.gas_used + INTRINSIC_GAS + 16 * len(d))
               for o, d in zip(steps, (approval, swap), strict=True)]  # fmt: skip
        return SwapSimulation(amount_out=int(out), gas=gas[1], approval_gas=gas[0])

    def received(self, receipt: Any, token_out: str, to: str) -> int:
        """Sum of ``token_out`` Transfer events to ``to`` in a swap receipt."""
        topic = self.chain.w3.keccak(text="Transfer(address,address,uint256)")
        total = 0
        for log in receipt["logs"]:
            topics = log["topics"]
            if (
                str(log["address"]).lower() == token_out.lower()
                and len(topics) == 3
                and bytes(topics[0]) == bytes(topic)
                and bytes(topics[2])[-20:] == bytes.fromhex(to[2:])
            ):
                total += int.from_bytes(bytes(log["data"]), "big")
        return total


def _with_margin(gas: int) -> int:
    """A measured gas figure with the margin ``Chain.estimate_gas`` adds (cold storage, etc.)."""
    return gas * 12 // 10 + 10_000


def _price_in_wei(pools: list[Pool], token: Token, weth: Token | None) -> int:
    """Value in wei of one whole ``token`` from the pools (0 if it has no path to WETH)."""
    if weth is None or weth.address is None or token.address is None:
        return 0
    if token.address == weth.address:
        return 10**18
    try:
        return best_path(pools, token.address, weth.address, 10**token.decimals).amount_out
    except (NoRouteError, DexInputError):
        return 0
