"""From an ``Intent`` to a checked plan, and from a plan to an executed, verified swap.

A swap plan holds the route (from ``agentbazaar.dex``), the exact expected output, the minimum
output (expected minus the slippage limit), the gas, the pool fees, the deadline and the result
of simulating it with ``eth_call`` at the current state. Planning signs nothing. Before any
signature the plan is checked against the wallet's spending policy (per-payment maximum,
counterparty lists, unlisted tokens, approval threshold) and the wallet's balance.

Executing goes through ``Wallet.spend`` only, and signs nothing until the whole plan has been
simulated again at the current state:
1. the swap spend is reserved (policy, approval threshold, rolling budget): a refusal here comes
   before any signature, the router's approval included;
2. the whole plan is simulated in one go (``Amm.simulate(approve=...)``: the router's
   ``approve`` when the allowance is short, then the swap that spends it), and refused when it
   would pay less than the minimum the plan showed (the pools moved since) or would revert
   (deadline passed): nothing is signed, no approval is mined;
3. if the router's allowance is short, an ``approve`` of exactly the input amount is signed in
   its own policy-checked spend of kind ``allowance`` (it moves no tokens, so the budget never
   counts it: the swap spend carries the amount, so the budget counts it once);
4. the swap is simulated once more with the allowance in place (exact gas), then signed inside
   the swap spend (recorded before broadcast), sent, and its receipt checked: the token_out
   received must be at least the plan's minimum.
Only the pools moving in the moment between the approval's receipt and the swap's signature can
still leave an approval without its swap. An on-chain revert (below minimum, deadline passed)
releases the spend and costs only gas. Exactly once: a retry with the same idempotency key never
signs again; it finishes the swap signed under that key (re-sending the same bytes if the chain
never saw them) and reports it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hexbytes import HexBytes
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from agentbazaar.chain import Chain
from agentbazaar.dex import Quote
from agentbazaar.dex.onchain import Amm, SwapSimulation
from agentbazaar.errors import InsufficientFunds, TransactionReverted
from agentbazaar.intents.errors import PlanError, PlanMismatch
from agentbazaar.intents.model import Intent
from agentbazaar.tokens import Token, TokenRegistry
from agentbazaar.units import parse_units
from agentbazaar.wallet import Spend, SpendingPolicy, SpendRequest, Wallet
from agentbazaar.wallet.policy import token_key

DEFAULT_SLIPPAGE_BPS = 50
MAX_SLIPPAGE_BPS = 500
DEFAULT_DEADLINE_SECONDS = 600
POOL_FEE_PER_MILLE = 3
_BALANCE_ABI: list[dict[str, Any]] = [
    {
        "name": name,
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}] * n,
        "outputs": [{"name": "", "type": "uint256"}],
    }
    for name, n in (("balanceOf", 1), ("allowance", 2))
]
_APPROVE_ABI: list[dict[str, Any]] = [
    {
        "name": "approve",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "s", "type": "address"}, {"name": "a", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]


@dataclass(frozen=True)
class SwapPlan:
    """A priced, simulated swap; every amount in integer base units."""

    intent: Intent
    payer: str
    token_in: Token
    token_out: Token
    amount_in: int
    expected_out: int
    min_out: int
    slippage_bps: int
    deadline: int
    quote: Quote
    simulated_out: int
    gas_estimate: int
    gas_price_wei: int
    allowance_short: bool
    pool_fees: tuple[tuple[str, int], ...]
    path_symbols: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def _symbols(self) -> tuple[tuple[str, ...], ...]:
        return self.path_symbols or tuple(r.path.tokens for r in self.quote.routes)

    def to_dict(self) -> dict[str, Any]:
        fmt_in, fmt_out = self.token_in.format, self.token_out.format
        return {
            "action": "swap",
            "payer": self.payer,
            "token_in": self.token_in.symbol,
            "token_out": self.token_out.symbol,
            "amount_in": str(self.amount_in),
            "amount_in_human": fmt_in(self.amount_in),
            "expected_out": str(self.expected_out),
            "expected_out_human": fmt_out(self.expected_out),
            "min_out": str(self.min_out),
            "min_out_human": fmt_out(self.min_out),
            "simulated_out": str(self.simulated_out),
            "slippage_bps": self.slippage_bps,
            "deadline": self.deadline,
            "gas_estimate": self.gas_estimate,
            "gas_price_wei": str(self.gas_price_wei),
            "gas_cost_wei": str(self.gas_estimate * self.gas_price_wei),
            "approval_needed": self.allowance_short,
            "routes": [
                {
                    "pools": list(route.path.addresses),
                    "tokens": list(route.path.tokens),
                    "symbols": list(symbols),
                    "amount_in": str(route.amount_in),
                    "amount_out": str(route.amount_out),
                }
                for route, symbols in zip(self.quote.routes, self._symbols(), strict=True)
            ],
            "pool_fees": [{"token": t, "amount": str(a)} for t, a in self.pool_fees],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SwapResult:
    plan: SwapPlan
    tx_hash: str
    block_number: int
    received: int
    idempotency_key: str
    approval_tx: str | None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "received": str(self.received),
            "received_human": self.plan.token_out.format(self.received),
            "at_least_min_out": self.received >= self.plan.min_out,
            "idempotency_key": self.idempotency_key,
            "approval_tx": self.approval_tx,
            "replayed": self.replayed,
        }


# ---- planning --------------------------------------------------------------------------------
def plan_swap(
    intent: Intent,
    *,
    chain: Chain,
    amm: Amm,
    tokens: TokenRegistry,
    payer: str,
    policy: SpendingPolicy | None = None,
    wallet_name: str = "",
) -> SwapPlan:
    """Route, price, simulate and check ``intent`` (a swap) for ``payer``. Signs nothing."""
    if intent.action != "swap" or intent.token_in is None or intent.token_out is None:
        raise PlanError(f"not a swap: {intent.action}")
    token_in, token_out = (
        _swap_token(tokens, intent.token_in),
        _swap_token(tokens, intent.token_out),
    )
    slippage = _slippage(intent)
    weth = tokens.get("WETH") if _has(tokens, "WETH") else None
    pools = amm.pools()
    gas_price = amm.gas_price()
    balance = erc20_balance(chain, token_in, payer)
    amount_in = _amount_in(intent, token_in, token_out, balance, amm, pools, weth, gas_price)
    quote = amm.quote(
        token_in, token_out, amount_in, gas_price_wei=gas_price, weth=weth, pools=pools
    )
    if intent.amount_side == "out" and quote.amount_out < token_out.parse(intent.amount or "0"):
        raise PlanError("the pools cannot deliver that much output", token=token_out.symbol)
    min_out = quote.min_amount_out(slippage)
    _check_price(intent, token_in, token_out, quote)
    if policy is not None:
        check_policy(policy, wallet_name, payer, token_in, amount_in, str(amm.router.address))
    if balance < amount_in:
        raise InsufficientFunds(
            f"{payer} holds {token_in.format(balance)}, the swap needs {token_in.format(amount_in)}",
            balance=balance,
            amount=amount_in,
        )
    deadline = chain.timestamp() + (intent.deadline_seconds or DEFAULT_DEADLINE_SECONDS)
    allowance = erc20_allowance(chain, token_in, payer, str(amm.router.address))
    short = allowance < amount_in
    sim = _simulate_plan(amm, quote, token_out, min_out, payer, deadline, amount_in if short else 0)
    return SwapPlan(
        intent=intent,
        payer=payer,
        token_in=token_in,
        token_out=token_out,
        amount_in=amount_in,
        expected_out=quote.amount_out,
        min_out=min_out,
        slippage_bps=slippage,
        deadline=deadline,
        quote=quote,
        simulated_out=sim.amount_out,
        gas_estimate=sim.gas + sim.approval_gas,
        gas_price_wei=gas_price,
        allowance_short=short,
        pool_fees=_pool_fees(quote, tokens),
        path_symbols=tuple(
            tuple(tokens.get(t).symbol for t in route.path.tokens) for route in quote.routes
        ),
    )


def _has(tokens: TokenRegistry, symbol: str) -> bool:
    return any(t.symbol == symbol for t in tokens.all())


def _swap_token(tokens: TokenRegistry, symbol: str) -> Token:
    token = tokens.get(symbol)
    if token.is_native:
        raise PlanError(
            f"the AMM trades ERC-20 tokens: say WETH instead of {token.symbol} "
            "(wrap it first with WETH.deposit)",
            token=token.symbol,
        )
    return token


def _slippage(intent: Intent) -> int:
    slippage = DEFAULT_SLIPPAGE_BPS if intent.max_slippage_bps is None else intent.max_slippage_bps
    if slippage > MAX_SLIPPAGE_BPS:
        raise PlanError(
            f"slippage of {Decimal(slippage) / 100}% is beyond the limit of "
            f"{Decimal(MAX_SLIPPAGE_BPS) / 100}%",
            slippage_bps=slippage,
            limit=MAX_SLIPPAGE_BPS,
        )
    return slippage


def _amount_in(
    intent: Intent,
    token_in: Token,
    token_out: Token,
    balance: int,
    amm: Amm,
    pools: list[Any],
    weth: Token | None,
    gas_price: int,
) -> int:
    if intent.fraction is not None:
        amount = balance * _ratio(intent.fraction)[0] // _ratio(intent.fraction)[1]
        if amount <= 0:
            raise InsufficientFunds(f"{token_in.symbol} balance is zero", balance=balance)
        return amount
    assert intent.amount is not None
    if intent.amount_side == "in":
        return token_in.parse(intent.amount)
    return _input_for_output(
        amm, pools, token_in, token_out, token_out.parse(intent.amount), weth, gas_price
    )


def _ratio(fraction: str) -> tuple[int, int]:
    num, den = Decimal(fraction).as_integer_ratio()
    return num, den


def _input_for_output(
    amm: Amm,
    pools: list[Any],
    token_in: Token,
    token_out: Token,
    want: int,
    weth: Token | None,
    gas_price: int,
) -> int:
    """The least input (to about one part in a million) whose best quote pays ``want``."""

    def out(amount: int) -> int:
        q = amm.quote(token_in, token_out, amount, gas_price_wei=gas_price, weth=weth, pools=pools)
        return q.amount_out

    limit: int = 4 * sum(p.reserve0 + p.reserve1 for p in pools)
    one: int = 10**token_in.decimals
    rate = out(one)  # output for one whole token_in: the starting estimate
    hi = max(1, want * one // rate) if rate > 0 else one
    lo = 0
    while out(hi) < want:
        lo, hi = hi, hi * 2
        if hi > limit:
            raise PlanError("the pools cannot deliver that much output", token=token_out.symbol)
    while hi - lo > max(1, hi // 1_000_000):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if out(mid) >= want else (mid, hi)
    return hi


def _check_price(intent: Intent, token_in: Token, token_out: Token, quote: Quote) -> None:
    if intent.max_price is None:
        return
    limit = parse_units(intent.max_price, token_in.decimals)
    # amount_in / amount_out (human) <= limit (human, token_in per token_out)
    if quote.amount_in * 10**token_out.decimals > limit * quote.amount_out:
        price = Decimal(quote.amount_in * 10**token_out.decimals) / Decimal(
            quote.amount_out * 10**token_in.decimals
        )
        raise PlanError(
            f"price {price:.6f} {token_in.symbol} per {token_out.symbol} is above the limit "
            f"{intent.max_price}",
            max_price=intent.max_price,
        )


def _simulate_plan(
    amm: Amm,
    quote: Quote,
    token_out: Token,
    min_out: int,
    payer: str,
    deadline: int,
    approve: int,
    *,
    signing: str = "",
) -> SwapSimulation:
    """The whole plan at the current state (the approval of ``approve`` when short, then the
    swap), asked for no minimum so the exact output is known; refused with a ``PlanError`` when
    it would revert or pay less than ``min_out``. ``signing`` names what is then not signed."""
    try:
        sim = amm.simulate(quote, 0, payer, deadline, approve=approve)
    except TransactionReverted as exc:
        reason = str(exc.fields.get("reason") or "reverted")
        raise PlanError(
            f"{signing or 'plan refused'}: {_hint(reason)}; plan it again", reason=reason
        ) from exc
    if sim.amount_out < min_out:
        raise PlanError(
            f"{signing or 'plan refused'}: the pools moved since the plan: it would pay "
            f"{token_out.format(sim.amount_out)} now, below the minimum "
            f"{token_out.format(min_out)}; plan it again",
            reason="slippage",
            quoted=sim.amount_out,
            min_out=min_out,
        )
    return sim


def _hint(reason: str, minimum: str = "") -> str:
    return {
        "slippage": "the pools moved since the plan and it would pay less than the minimum "
        + (minimum or "shown"),
        "expired": "its deadline has passed",
    }.get(reason, f"it would revert ({reason})")


def _pool_fees(quote: Quote, tokens: TokenRegistry) -> tuple[tuple[str, int], ...]:
    """The 0.3% each hop keeps, in that hop's input token (summed per token)."""
    fees: dict[str, int] = {}
    for route in quote.routes:
        entering = (route.amount_in, *route.hop_amounts[:-1])
        for token, amount in zip(route.path.tokens, entering, strict=False):
            symbol = tokens.get(token).symbol
            fees[symbol] = fees.get(symbol, 0) + amount * POOL_FEE_PER_MILLE // 1000
    return tuple(sorted(fees.items()))


def check_policy(
    policy: SpendingPolicy, wallet: str, payer: str, token: Token, amount: int, counterparty: str
) -> None:
    """The static policy checks of a spend, at plan time (the spend repeats them when signing)."""
    request = SpendRequest(
        wallet=wallet,
        payer=payer,  # type: ignore[arg-type]
        kind="swap",
        token=token_key(token.address),
        amount=amount,
        counterparty=counterparty,  # type: ignore[arg-type]
        idempotency_key="plan-check",
        symbol=token.symbol,
        decimals=token.decimals,
    )
    policy.check_static(request)


def erc20_balance(chain: Chain, token: Token, owner: str) -> int:
    contract = chain.contract(str(token.address), _BALANCE_ABI)
    return int(chain.call(contract.functions.balanceOf(owner)))


def erc20_allowance(chain: Chain, token: Token, owner: str, spender: str) -> int:
    contract = chain.contract(str(token.address), _BALANCE_ABI)
    return int(chain.call(contract.functions.allowance(owner, spender)))


# ---- execution -------------------------------------------------------------------------------
def execute_swap(
    plan: SwapPlan,
    *,
    chain: Chain,
    amm: Amm,
    wallet: Wallet,
    approve: bool = False,
    idempotency_key: str | None = None,
) -> SwapResult:
    """Execute ``plan`` from ``wallet`` through its spending policy; verify what arrived."""
    if wallet.address != plan.payer:
        raise PlanError(f"the plan is for {plan.payer}, not wallet {wallet.name!r}")
    key = idempotency_key or f"swap-{secrets.token_hex(12)}"
    router = str(amm.router.address)
    memo = {"plan": f"{plan.token_in.format(plan.amount_in)} -> {plan.token_out.symbol}"}
    approval_tx = None
    fn = amm.swap_function(plan.quote, plan.min_out, wallet.address, plan.deadline)
    with wallet.spend(
        kind="swap",
        token=plan.token_in,
        amount=plan.amount_in,
        counterparty=router,
        idempotency_key=key,
        approve=approve,
        memo={**memo, "min_out": str(plan.min_out)},
        chain_id=chain.chain_id,
    ) as spend:
        if spend.replayed:  # signed before under this key: never sign again, finish that one
            tx_hash, receipt = _finish_signed(chain, spend)
        else:
            short = erc20_allowance(chain, plan.token_in, wallet.address, router) < plan.amount_in
            _simulate_plan(
                amm, plan.quote, plan.token_out, plan.min_out, wallet.address, plan.deadline,
                plan.amount_in if short else 0, signing="nothing signed",
            )  # fmt: skip
            if short:
                approval_tx = _approve(plan, chain, wallet, router, key, approve)
            sim = _simulate_again(amm, plan, wallet.address)
            tx_hash, raw = spend.sign_transaction(_full_tx(chain, wallet.address, fn, sim.gas))
            chain.broadcast_raw(raw, action="send the swap")
            receipt = _receipt_or_release(chain, spend, tx_hash)
        received = amm.received(receipt, str(plan.token_out.address), wallet.address)
        if spend.record.status != "settled":
            spend.settle(tx_hash=HexBytes(tx_hash).to_0x_hex(), block_number=receipt["blockNumber"])
    min_out = int(spend.record.memo.get("min_out", plan.min_out))
    if received < min_out:
        raise PlanMismatch(
            f"received {plan.token_out.format(received)}, below the plan's minimum "
            f"{plan.token_out.format(min_out)}",
            tx_hash=HexBytes(tx_hash).to_0x_hex(),
        )
    return SwapResult(
        plan=plan,
        tx_hash=HexBytes(tx_hash).to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        received=received,
        idempotency_key=key,
        approval_tx=approval_tx,
        replayed=spend.replayed,
    )


def _receipt_or_release(chain: Chain, spend: Spend, tx_hash: HexBytes) -> TxReceipt:
    try:
        return chain.wait_for_receipt(tx_hash, action="swap")
    except TransactionReverted as exc:
        spend.fail(f"reverted on chain: {exc.fields.get('reason') or exc}")
        raise


def _finish_signed(chain: Chain, spend: Spend) -> tuple[HexBytes, TxReceipt]:
    """The receipt of the swap signed earlier under this key, re-sending the same bytes if the
    chain has not seen them (a crash between signing and broadcasting)."""
    record = spend.record
    if not record.tx_hash or not record.raw_tx:
        raise PlanError(f"swap {record.idempotency_key!r} was signed without a transaction")
    tx_hash = HexBytes(record.tx_hash)
    receipt = chain.receipt(tx_hash)
    if receipt is None:
        chain.broadcast_raw(bytes(HexBytes(record.raw_tx)), action="re-send the signed swap")
        receipt = _receipt_or_release(chain, spend, tx_hash)
    elif receipt["status"] != 1:
        raise TransactionReverted(
            f"swap {record.idempotency_key!r} reverted on chain earlier", tx_hash=record.tx_hash
        )
    return tx_hash, receipt


def _simulate_again(amm: Amm, plan: SwapPlan, sender: str) -> SwapSimulation:
    """The last eth_call before signing: the pools may have moved since the plan."""
    try:
        sim = amm.simulate(plan.quote, plan.min_out, sender, plan.deadline)
    except TransactionReverted as exc:
        reason = str(exc.fields.get("reason") or "reverted")
        raise PlanError(
            f"swap not signed: {_hint(reason, plan.token_out.format(plan.min_out))}; plan it again",
            reason=reason,
            min_out=plan.min_out,
        ) from exc
    if sim.amount_out < plan.min_out:  # the router reverts before this; kept as a guard
        raise PlanError("swap not signed: the simulation pays less than the minimum")
    return sim


def _approve(
    plan: SwapPlan, chain: Chain, wallet: Wallet, router: str, key: str, approve: bool
) -> str:
    token = chain.contract(str(plan.token_in.address), _APPROVE_ABI)
    fn = token.functions.approve(router, plan.amount_in)
    with wallet.spend(
        kind="allowance",
        token=plan.token_in,
        amount=plan.amount_in,
        counterparty=router,
        idempotency_key=f"{key}:allowance",
        approve=approve,
        memo={"step": "allowance for the swap", "swap": key},
        chain_id=chain.chain_id,
    ) as spend:
        tx_hash, raw = spend.sign_transaction(_full_tx(chain, wallet.address, fn, None))
        chain.broadcast_raw(raw, action="approve the router")
        receipt = chain.wait_for_receipt(tx_hash, action="approve the router")
        spend.settle(tx_hash=HexBytes(tx_hash).to_0x_hex(), block_number=receipt["blockNumber"])
    return HexBytes(tx_hash).to_0x_hex()


def _full_tx(chain: Chain, sender: str, fn: ContractFunction, gas: int | None) -> dict[str, Any]:
    tx: dict[str, Any] = {
        "from": sender,
        "to": fn.address,
        "data": fn._encode_transaction_data(),
        "value": 0,
        "chainId": chain.chain_id,
        **chain.fee_params(),
    }
    tx["gas"] = gas if gas is not None else chain.estimate_gas(tx, action="estimate gas")  # type: ignore[arg-type]
    tx["nonce"] = int(chain.w3.eth.get_transaction_count(sender, "pending"))  # type: ignore[arg-type]
    return tx
