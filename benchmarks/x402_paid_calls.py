"""x402 paid calls per second and latency: ours beside the SDK's reference, one anvil, one run.

Run: .venv/bin/python benchmarks/x402_calls.py [--n 100] [--concurrency 8]

Variants (all paid by the SDK's own httpx client, each service in a uvicorn thread on 127.0.0.1):
- unpaid:    the same FastAPI service, a free route (the floor);
- ours:      our paywall (SDK middleware) + our facilitator in-process (the same topology as
             the reference, and the default of `bazaar serve-example`);
- ours_http: the same with our facilitator as a separate HTTP service (`bazaar facilitator`);
- reference: the SDK's middleware + an in-process ``x402Facilitator`` with the SDK's
             ``FacilitatorWeb3Signer`` (as the SDK documents it);
- batched:   ours with the in-process facilitator in batching mode (one ExactBatchSettler tx per
             batch).
The load (the SDK's httpx client, signing every payment) runs in a forked process.
Each runs sequentially and with --concurrency clients, on a fresh chain and again after
``anvil_mine`` of 2,000 blocks. Prints one JSON line per figure; ratios are ours / reference.
Gas per payment: mean gasUsed of the settlement transactions (batched: tx gas / payments in it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from web3.types import RPCEndpoint
from x402 import x402Client, x402Facilitator, x402ResourceServer
from x402.http import decode_payment_response_header
from x402.http.clients.httpx import x402HttpxClient
from x402.http.middleware.fastapi import payment_middleware
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.exact import (
    register_exact_evm_client,
    register_exact_evm_facilitator,
    register_exact_evm_server,
)
from x402.mechanisms.evm.signers import EthAccountSigner

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.payments.example import create_example_app, example_prices
from agentbazaar.payments.facilitator import create_app, exact_facilitator
from agentbazaar.payments.server import PaymentTerms, route_config
from agentbazaar.testing import serve_in_thread
from agentbazaar.tokens import Token

PRICE = 1000  # 0.001 USDC, the example's /quote


def serve_in_thread_fast(app: Any) -> Any:
    """Each service as `bazaar` runs it: uvicorn with its default (uvloop) event loop."""
    return serve_in_thread(app, loop="auto")


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def reference_app(terms: PaymentTerms, signer_key: str, rpc_url: str) -> FastAPI:
    """The SDK's documented wiring: middleware + in-process x402Facilitator + its web3 signer."""
    facilitator = x402Facilitator()
    register_exact_evm_facilitator(
        facilitator,
        FacilitatorWeb3Signer(private_key=signer_key, rpc_url=rpc_url),
        networks=terms.network,
    )
    server = x402ResourceServer(facilitator)  # type: ignore[arg-type]
    register_exact_evm_server(server, terms.network)
    routes = {p.route: route_config(p, terms) for p in example_prices()}
    mw = payment_middleware(routes, server)
    app = FastAPI()

    @app.middleware("http")
    async def x402(request, call_next):  # type: ignore[no-untyped-def]
        return await mw(request, call_next)

    @app.get("/quote")
    async def quote() -> dict[str, str]:
        return {"pair": "ETH/USDC", "price": "3150.25"}

    return app


class Load:
    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env

    def client(self) -> x402HttpxClient:
        c = register_exact_evm_client(x402Client(), EthAccountSigner(self.env["payer"]))
        c.set_spend_controls(
            {
                "allowed_assets": [
                    {
                        "network": self.env["network"],
                        "asset": self.env["asset"],
                        "max_amount_per_payment": str(PRICE),
                    }
                ]
            }
        )
        return x402HttpxClient(c, timeout=60.0)

    async def _worker(self, url: str, n: int, lat: list[float], txs: list[str]) -> None:
        async with self.client() as http:
            for _ in range(n):
                t0 = time.perf_counter()
                r = await http.get(url)
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
                header = r.headers.get("PAYMENT-RESPONSE")
                if header:
                    txs.append(decode_payment_response_header(header).transaction)

    def _measure(self, url: str, n: int, clients: int) -> dict[str, Any]:
        lat: list[float] = []
        txs: list[str] = []

        async def go() -> float:
            await self._worker(url, 3, [], [])  # warm-up: connections, facilitator init
            t0 = time.perf_counter()
            await asyncio.gather(
                *(self._worker(url, n // clients, lat, txs) for _ in range(clients))
            )
            return time.perf_counter() - t0

        elapsed = asyncio.run(go())
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
        return {
            "calls_per_s": len(lat) / elapsed,
            "p50_ms": 1000 * q[49],
            "p99_ms": 1000 * q[98],
            "txs": txs,
        }

    def run(self, url: str, n: int, clients: int) -> dict[str, Any]:
        """The load runs in a forked process: the clients' CPU (signing, HTTP) does not share
        the servers' interpreter lock, as with real remote buyers."""
        ctx = multiprocessing.get_context("fork")
        out: Any = ctx.Queue()
        proc = ctx.Process(target=lambda: out.put(self._measure(url, n, clients)))
        proc.start()
        try:
            result: dict[str, Any] = out.get(timeout=600)
        finally:
            proc.join(timeout=30)
        return result


def gas_per_payment(chain: Chain, txs: list[str]) -> float:
    by_tx: dict[str, int] = {}
    for h in txs:
        by_tx[h] = by_tx.get(h, 0) + 1
    total_gas = sum(int(chain.w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in by_tx)
    return total_gas / max(1, len(txs))


@contextmanager
def services(env: dict[str, Any], tmp: Path, batch: bool) -> Iterator[dict[str, str]]:
    chain: Chain = env["chain"]
    terms: PaymentTerms = env["terms"]
    with ExitStack() as stack:
        ours_fac = exact_facilitator(
            chain, dev_account(5), store_path=tmp / "ours.db", assets=[env["asset"]]
        )
        http_fac = exact_facilitator(
            chain, dev_account(8), store_path=tmp / "ours-http.db", assets=[env["asset"]]
        )
        fac_url = stack.enter_context(serve_in_thread_fast(create_app(http_fac)))
        urls = {
            "unpaid": stack.enter_context(serve_in_thread_fast(create_example_app(terms, fac_url)))
            + "/free",
            "ours": stack.enter_context(serve_in_thread_fast(create_example_app(terms, ours_fac)))
            + "/quote",
            "ours_http": stack.enter_context(
                serve_in_thread_fast(create_example_app(terms, fac_url))
            )
            + "/quote",
            "reference": stack.enter_context(
                serve_in_thread_fast(reference_app(terms, dev_account(6).key.hex(), env["rpc"]))
            )
            + "/quote",
        }
        if batch:
            from agentbazaar.payments.batch import batching_facilitator

            bfac = batching_facilitator(
                chain,
                dev_account(7),
                store_path=tmp / "batch.db",
                assets=[env["asset"]],
                settler=env["settler"],
            )
            urls["batched"] = (
                stack.enter_context(serve_in_thread_fast(create_example_app(terms, bfac)))
                + "/quote"
            )
        yield urls


def setup(tmp: Path) -> tuple[AnvilNode, dict[str, Any]]:
    cfg = load_config(tmp / "home", env={}).with_chain(backend="local", anvil_port=free_port())
    node = AnvilNode(cfg)
    node.start()
    chain = Chain.rpc(node.running_url(), backend="local")
    art = compile_contract("Stablecoin")
    usdc, _ = chain.deploy(
        dev_account(0), art.abi, art.bytecode, "USD Coin", "USDC", "USD Coin", "2", name="USDC"
    )
    payer = dev_account(1)
    chain.transact(dev_account(0), usdc.functions.mint(payer.address, 10**12))
    token = Token("USDC", 6, usdc.address, "USD Coin", "2")
    terms = PaymentTerms(network=chain.network, token=token, pay_to=dev_account(3).address)
    env: dict[str, Any] = {
        "chain": chain,
        "payer": payer,
        "asset": usdc.address,
        "network": chain.network,
        "terms": terms,
        "rpc": node.running_url(),
    }
    try:
        from agentbazaar.payments.batch import deploy_batch_settler

        env["settler"] = deploy_batch_settler(chain, dev_account(0))
    except ImportError:
        env["settler"] = None
    return node, env


def batch_gas(env: dict[str, Any], tmp: Path, size: int) -> None:
    """Gas per payment, one-by-one vs one batch of ``size`` (distinct payers and one payee, as
    many buyers paying one service), settled in-process."""
    from eth_account import Account
    from x402.schemas import PaymentPayload, PaymentRequirements

    from agentbazaar.payments.batch import batching_facilitator

    chain: Chain = env["chain"]
    terms: PaymentTerms = env["terms"]
    usdc = chain.contract(env["asset"], compile_contract("Stablecoin").abi)
    payers = [Account.create() for _ in range(2 * size)]
    for p in payers:
        chain.transact(dev_account(0), usdc.functions.mint(p.address, 10**9))
    requirements = PaymentRequirements(
        scheme="exact",
        network=terms.network,
        asset=env["asset"],
        amount=str(PRICE),
        pay_to=terms.pay_to,
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2"},
    )

    def signed(account: Any) -> PaymentPayload:
        from x402.schemas import PaymentRequired

        from agentbazaar.payments.payers import sign_with_sdk

        return sign_with_sdk(account, PaymentRequired(accepts=[requirements]), requirements)

    for i in (10, 11):  # anvil pre-funds only accounts 0-9
        chain.fund_native(dev_account(i).address, 10**20)
    single = exact_facilitator(chain, dev_account(10), assets=[env["asset"]])
    batched = batching_facilitator(
        chain,
        dev_account(11),
        settler=env["settler"],
        assets=[env["asset"]],
        max_batch=size,
        window=5.0,
    )

    async def go() -> tuple[list[str], list[str]]:
        one = [(await single.settle(signed(p), requirements)).transaction for p in payers[:size]]
        many = await asyncio.gather(
            *(batched.settle(signed(p), requirements) for p in payers[size:])
        )
        return one, [r.transaction for r in many]

    one, many = asyncio.run(go())
    if "" in one or "" in many:
        raise RuntimeError("a settlement failed while measuring gas")
    g1, gb = gas_per_payment(chain, one), gas_per_payment(chain, many)
    emit(
        name="x402_gas_per_payment_batch",
        batch=size,
        value=round(gb),
        unit="gas",
        reference=round(g1),
        ratio=round(gb / g1, 2),
        transactions=len(set(many)),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--age-blocks", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        node, env = setup(tmp)
        try:
            chain: Chain = env["chain"]
            if env["settler"] is not None:
                batch_gas(env, tmp, args.batch_size)
            with services(env, tmp, batch=env["settler"] is not None) as urls:
                for age in ("fresh", "aged"):
                    if age == "aged":  # in chunks (one big anvil_mine can outlast the rpc timeout)
                        for _ in range(args.age_blocks // 100):
                            chain.w3.provider.make_request(
                                RPCEndpoint("anvil_mine"), [hex(100), hex(0)]
                            )
                    block = chain.block_number()
                    for mode, clients in (("sequential", 1), ("concurrent", args.concurrency)):
                        results = {
                            name: Load(env).run(url, args.n, clients) for name, url in urls.items()
                        }
                        ref = results["reference"]["calls_per_s"]
                        for name, res in results.items():
                            emit(
                                name="x402_paid_calls",
                                variant=name,
                                mode=mode,
                                chain=age,
                                block=block,
                                value=round(res["calls_per_s"], 1),
                                unit="calls/s",
                                p50_ms=round(res["p50_ms"], 1),
                                p99_ms=round(res["p99_ms"], 1),
                                reference=round(ref, 1),
                                ratio=round(res["calls_per_s"] / ref, 2),
                            )
                        if age == "fresh" and mode == "concurrent":
                            gas = {
                                k: gas_per_payment(chain, v["txs"])
                                for k, v in results.items()
                                if v["txs"]
                            }
                            for k, g in gas.items():
                                emit(
                                    name="x402_gas_per_payment",
                                    variant=k,
                                    value=round(g),
                                    unit="gas",
                                    reference=round(gas["reference"]),
                                    ratio=round(g / gas["reference"], 2),
                                )
        finally:
            node.stop()


if __name__ == "__main__":
    main()
