"""The AMM in the contract suite: pool blueprint, factory, router, extra test tokens, seeded pools.

On local chains ``bazaar deploy`` deploys DAI (18 decimals), USDT (6) and WBTC (8) as
``AmmTestToken`` beside the suite's USDC and WETH, the ``AmmPool`` blueprint, ``AmmFactory`` and
``AmmRouter``, and seeds the pool set of ``_seed.SEED_POOLS`` once (only into an empty factory).
On rpc chains nothing of this is deployed: the factory and router come from ``[dex]`` in
``bazaar.toml`` (see ``agentbazaar.dex.onchain``).

If the pool source changes, the blueprint is deployed again and the ``dex: link`` step deploys a
new factory and router bound to it (the old pools stay where they were, unused).

Data only: ``agentbazaar.deployment`` lists these specs and steps.
"""

from __future__ import annotations

from hexbytes import HexBytes
from web3.types import TxParams

from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.deploy import (
    ContractSpec,
    Deployment,
    SuiteContext,
    SuiteStep,
    check_deployment,
)
from agentbazaar.dex._seed import SEED_POOLS, TEST_TOKENS
from agentbazaar.errors import ContractError
from agentbazaar.units import parse_units

BLUEPRINT_KEY = "AmmPoolBlueprint"
FACTORY_KEY = "AmmFactory"
ROUTER_KEY = "AmmRouter"
MAX_UINT256 = 2**256 - 1
_DEADLINE_SLACK = 3600


def blueprint_initcode(initcode: bytes) -> bytes:
    """Creation code that deploys ``initcode`` as an ERC-5202 blueprint (preamble 0xFE7100)."""
    body = b"\xfe\x71\x00" + initcode
    if len(body) > 0xFFFF:
        raise ContractError("contract too large for a blueprint")
    return b"\x61" + len(body).to_bytes(2, "big") + b"\x3d\x81\x60\x0a\x3d\x39\xf3" + body


def ensure_blueprint(ctx: SuiteContext) -> str:
    """Deploy (or reuse) the AmmPool blueprint; return its address."""
    artifact = compile_contract("AmmPool", cache_dir=ctx.cfg.artifacts_dir)
    if check_deployment(ctx.chain, ctx.manifest, BLUEPRINT_KEY, artifact) == "reused":
        return ctx.manifest.contracts[BLUEPRINT_KEY].address
    tx: TxParams = {"data": HexBytes(blueprint_initcode(artifact.bytecode))}
    receipt = ctx.chain.send(ctx.deployer, tx, action="deploy the AmmPool blueprint")
    address = receipt["contractAddress"]
    if address is None:
        raise ContractError("deploying the AmmPool blueprint produced no address")
    ctx.manifest.contracts[BLUEPRINT_KEY] = Deployment(
        contract="AmmPool",
        address=str(address),
        source_hash=artifact.source_hash,
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block=int(receipt["blockNumber"]),
        meta={"kind": "blueprint"},
    )
    ctx.manifest.save()
    ctx.statuses[BLUEPRINT_KEY] = "deployed"
    return str(address)


def _link(ctx: SuiteContext) -> None:
    """Make sure the factory uses the current blueprint and the router the current factory."""
    if FACTORY_KEY not in ctx.contracts:
        return
    blueprint = ctx.manifest.contracts[BLUEPRINT_KEY].address
    factory = ctx.contracts[FACTORY_KEY]
    if ctx.chain.call(factory.functions.poolBlueprint()) != blueprint:
        AMM_FACTORY.deploy(ctx, force=True)
        ctx.statuses[FACTORY_KEY] = "changed"
    router = ctx.contracts[ROUTER_KEY]
    if ctx.chain.call(router.functions.factory()) != ctx.contracts[FACTORY_KEY].address:
        AMM_ROUTER.deploy(ctx, force=True)
        ctx.statuses[ROUTER_KEY] = "changed"


def _seed(ctx: SuiteContext) -> None:
    """Mint, wrap and add liquidity for every pool of SEED_POOLS (only into an empty factory)."""
    if not ctx.chain.is_dev or FACTORY_KEY not in ctx.contracts:
        return
    chain, me = ctx.chain, ctx.deployer
    factory, router = ctx.contracts[FACTORY_KEY], ctx.contracts[ROUTER_KEY]
    if chain.call(factory.functions.allPoolsLength()) > 0:
        return
    tokens = {key: ctx.contracts[key] for key in ("USDC", "WETH", *(t[0] for t in TEST_TOKENS))}
    decimals = {key: int(chain.call(c.functions.decimals())) for key, c in tokens.items()}
    needed: dict[str, int] = dict.fromkeys(tokens, 0)
    for seed in SEED_POOLS:
        needed[seed.token_a] += parse_units(seed.amount_a, decimals[seed.token_a])
        needed[seed.token_b] += parse_units(seed.amount_b, decimals[seed.token_b])
    chain.fund_native(me.address, needed["WETH"] + 10**18)
    chain.transact(me, tokens["WETH"].functions.deposit(), value=needed["WETH"])
    for key, contract in tokens.items():
        if key != "WETH":
            chain.transact(me, contract.functions.mint(me.address, needed[key]))
        chain.transact(me, contract.functions.approve(router.address, MAX_UINT256))
    deadline = chain.timestamp() + _DEADLINE_SLACK
    for seed in SEED_POOLS:
        a, b = tokens[seed.token_a], tokens[seed.token_b]
        amount_a = parse_units(seed.amount_a, decimals[seed.token_a])
        amount_b = parse_units(seed.amount_b, decimals[seed.token_b])
        receipt = chain.transact(me, factory.functions.createPool(a.address, b.address))
        pool = factory.events.PoolCreated().process_receipt(receipt)[0]["args"]
        amounts = (amount_a, amount_b) if pool["token0"] == a.address else (amount_b, amount_a)
        call = router.functions.addLiquidity(pool["pool"], *amounts, 0, 0, me.address, deadline)
        chain.transact(me, call)


def _token_spec(key: str, name: str, decimals: int) -> ContractSpec:
    return ContractSpec(
        key,
        "AmmTestToken",
        lambda ctx: (name, key, decimals),
        lambda ctx: {"kind": "token", "symbol": key, "decimals": decimals},
        local_only=True,
    )


TEST_TOKEN_SPECS = tuple(_token_spec(key, name, decimals) for key, name, decimals in TEST_TOKENS)
AMM_FACTORY = ContractSpec(
    FACTORY_KEY,
    "AmmFactory",
    lambda ctx: (ensure_blueprint(ctx),),
    lambda ctx: {"kind": "amm"},
    local_only=True,
)
AMM_ROUTER = ContractSpec(
    ROUTER_KEY,
    "AmmRouter",
    lambda ctx: (ctx.contracts[FACTORY_KEY].address,),
    lambda ctx: {"kind": "amm"},
    local_only=True,
    needs=(FACTORY_KEY,),
)
LINK_AMM = SuiteStep("dex: link", _link, needs=(FACTORY_KEY, ROUTER_KEY))
SEED_AMM_POOLS = SuiteStep(
    "dex: seed pools",
    _seed,
    needs=("USDC", "WETH", *(key for key, _, _ in TEST_TOKENS), FACTORY_KEY, ROUTER_KEY),
)
