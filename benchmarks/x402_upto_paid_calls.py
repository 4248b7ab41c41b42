"""x402 ``upto`` paid calls per second: ours beside the SDK's reference, one anvil, one run.

Run: .venv/bin/python benchmarks/x402_calls.py [--n 100] [--concurrency 8] (the exact benchmark,
then this one), or this file alone with the same options.

Variants (all paid by the SDK's own httpx client with its ``upto`` client scheme, every service
in a uvicorn thread on 127.0.0.1, a ``POST /echo`` of 100 bytes metered at one base unit a byte
up to 0.002 USDC, so each call authorizes 2,000 and settles 100 through the upto Permit2 proxy):
- unpaid:    the example service's free route (the floor);
- ours:      the example service (our paywall, ``metered_routes``) + our facilitator in-process;
- ours_http: the same with our facilitator as its own HTTP service;
- reference: the SDK's middleware + its ``upto`` server scheme + an in-process
             ``x402Facilitator`` with the SDK's ``UptoEvmFacilitatorScheme`` and
             ``FacilitatorWeb3Signer`` (its documented wiring), against the same contracts.
The load runs in a forked process (``Load`` of ``x402_paid_calls``), sequentially and with
``--concurrency`` clients. One JSON line per figure; ratios are ours / reference.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from x402 import x402Client, x402Facilitator, x402ResourceServer
from x402.http import decode_payment_response_header
from x402.http.clients.httpx import x402HttpxClient
from x402.http.middleware.fastapi import payment_middleware, set_settlement_overrides
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.upto import (
    UptoEvmClientScheme,
    UptoEvmFacilitatorScheme,
    UptoEvmServerScheme,
)
from x402.schemas import AssetAmount

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments import permit2
from agentbazaar.payments.evm import extend_facilitator
from agentbazaar.payments.example import ECHO_PRICE_PER_BYTE, create_example_app
from agentbazaar.payments.facilitator import create_app, exact_facilitator
from agentbazaar.payments.server import PaymentTerms

HERE = Path(__file__).resolve().parent
MAXIMUM = 2_000  # 0.002 USDC: the example's /echo maximum
BODY = b"x" * 100  # settles 100 base units


def _paid_calls() -> Any:
    """The exact benchmark's module (its anvil set-up, load generator and helpers), loaded by
    path, so this runs from any working directory and under ``x402_calls.py``'s runpy."""
    spec = importlib.util.spec_from_file_location("x402_paid_calls", HERE / "x402_paid_calls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pc = _paid_calls()


class UptoLoad(pc.Load):  # type: ignore[misc, name-defined]
    """The SDK's upto client posting ``BODY`` (the free route is a GET)."""

    def client(self) -> x402HttpxClient:
        c = x402Client().register(self.env["network"], UptoEvmClientScheme(self.env["payer"]))
        allowed = {
            "network": self.env["network"],
            "asset": self.env["asset"],
            "max_amount_per_payment": str(MAXIMUM),
        }
        c.set_spend_controls({"allowed_assets": [allowed]})
        return x402HttpxClient(c, timeout=60.0)

    async def _worker(self, url: str, n: int, lat: list[float], txs: list[str]) -> None:
        async with self.client() as http:
            for _ in range(n):
                t0 = time.perf_counter()
                r = await (http.get(url) if url.endswith("/free") else http.post(url, content=BODY))
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
                header = r.headers.get("PAYMENT-RESPONSE")
                if header:
                    settle = decode_payment_response_header(header)
                    if settle.amount != str(len(BODY) * ECHO_PRICE_PER_BYTE):
                        raise RuntimeError(f"{url}: settled {settle.amount}, not the usage")
                    txs.append(settle.transaction)


def reference_app(terms: PaymentTerms, signer_key: str, rpc_url: str) -> FastAPI:
    """The SDK's documented wiring for upto: middleware + upto server scheme + in-process
    x402Facilitator with its upto facilitator scheme and web3 signer."""
    facilitator = x402Facilitator()
    signer = FacilitatorWeb3Signer(private_key=signer_key, rpc_url=rpc_url)
    facilitator.register([terms.network], UptoEvmFacilitatorScheme(signer))
    server = x402ResourceServer(facilitator)  # type: ignore[arg-type]
    server.register(terms.network, UptoEvmServerScheme())
    option = PaymentOption(
        scheme="upto",
        pay_to=terms.pay_to,
        network=terms.network,
        price=AssetAmount(amount=str(MAXIMUM), asset=str(terms.token.address), extra={}),
        max_timeout_seconds=terms.max_timeout_seconds,
    )
    mw = payment_middleware({"POST /echo": RouteConfig(accepts=option)}, server)
    app = FastAPI()
    app.middleware("http")(mw)

    @app.post("/echo")
    async def echo(request: Request, response: Response) -> dict[str, str]:
        body = await request.body()
        set_settlement_overrides(response, {"amount": str(min(len(body), MAXIMUM))})
        return {"echo": body.decode(errors="replace")}

    return app


@contextmanager
def services(env: dict[str, Any], tmp: Path) -> Iterator[dict[str, str]]:
    chain: Chain = env["chain"]
    terms: PaymentTerms = env["terms"]
    assets = [env["asset"]]
    with ExitStack() as stack:
        facs = []
        for name, index in (("ours", 5), ("ours-http", 8)):
            store = tmp / f"upto-{name}.db"
            fac = exact_facilitator(
                chain, dev_account(index), store_path=store.with_suffix(".exact.db"), assets=assets
            )
            facs.append(
                extend_facilitator(fac, chain, dev_account(index), store_path=store, assets=assets)
            )
        fac_url = stack.enter_context(pc.serve_in_thread_fast(create_app(facs[1])))
        reference = reference_app(terms, dev_account(6).key.hex(), env["rpc"])
        yield {
            "unpaid": stack.enter_context(pc.serve_in_thread_fast(create_example_app(terms, facs[0]))) + "/free",
            "ours": stack.enter_context(pc.serve_in_thread_fast(create_example_app(terms, facs[0]))) + "/echo",
            "ours_http": stack.enter_context(pc.serve_in_thread_fast(create_example_app(terms, fac_url))) + "/echo",
            "reference": stack.enter_context(pc.serve_in_thread_fast(reference)) + "/echo",
        }  # fmt: skip


def run_upto(env: dict[str, Any], tmp: Path, n: int, concurrency: int) -> None:
    """Place Permit2 and the proxies, approve Permit2 for the payer, measure every variant."""
    chain: Chain = env["chain"]
    permit2.install(chain, dev_account(0))
    usdc = chain.contract(env["asset"], pc.compile_contract("Stablecoin").abi)
    chain.transact(env["payer"], usdc.functions.approve(permit2.PERMIT2_ADDRESS, 2**256 - 1))
    with services(env, tmp) as urls:
        for mode, clients in (("sequential", 1), ("concurrent", concurrency)):
            results = {name: UptoLoad(env).run(url, n, clients) for name, url in urls.items()}
            ref = results["reference"]["calls_per_s"]
            for name, res in results.items():
                pc.emit(
                    name="x402_upto_paid_calls",
                    variant=name,
                    mode=mode,
                    block=chain.block_number(),
                    value=round(res["calls_per_s"], 1),
                    unit="calls/s",
                    p50_ms=round(res["p50_ms"], 1),
                    p99_ms=round(res["p99_ms"], 1),
                    reference=round(ref, 1),
                    ratio=round(res["calls_per_s"] / ref, 2),
                )
            if mode == "concurrent":
                gas = {
                    k: pc.gas_per_payment(chain, v["txs"]) for k, v in results.items() if v["txs"]
                }
                for k, g in gas.items():
                    pc.emit(
                        name="x402_upto_gas_per_payment",
                        variant=k,
                        value=round(g),
                        unit="gas",
                        reference=round(gas["reference"]),
                        ratio=round(g / gas["reference"], 2),
                    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    args, _ = ap.parse_known_args()  # the exact benchmark's other options are not ours
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        node, env = pc.setup(tmp)
        try:
            run_upto(env, tmp, args.n, args.concurrency)
        finally:
            node.stop()


if __name__ == "__main__":
    main()
