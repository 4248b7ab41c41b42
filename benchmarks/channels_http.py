"""batch-settlement channels (b): end-to-end paid HTTP calls on anvil, beside unpaid calls and
`exact`, one run.

Run: .venv/bin/python -P benchmarks/channels_http.py [--calls 300] [--rounds 3]

uvicorn on 127.0.0.1 (the kit's `serve_in_thread`), the ASGI paywall, httpx clients in forked
processes paying with the kit's `ChannelPayer` (payloads built by the channel library). One
client interleaves a free call, a voucher-paid call (store fsync on) and a voucher-paid call
(fsync off) so load drift hits all three alike (ratios of median latencies), on a trivial route
(/quote: the payment's whole overhead shows) and on a route that does real work (/embed: one
sentence through all-MiniLM-L6-v2); 8 clients in alternating phases (all free / all paid fsync /
all paid no-fsync; calls/s, best of --rounds); plus `exact` through the SDK's reference wiring
(middleware + in-process facilitator + FacilitatorWeb3Signer: one on-chain settlement per call).
Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import (
    ChannelContracts,
    ChannelEngine,
    ChannelStore,
    ChannelTerms,
)
from agentbazaar.testing import ChannelPayer, LocalWorld, serve_in_thread
from agentbazaar.testing.bench import anvil_world, emit, in_fork

PRICE = 1_000
SENTENCE = "An agent pays another agent a tenth of a cent for each embedding it asks for."


def _exact_app(chain: Any, token: str, pay_to: str, signer_key: str) -> Any:
    from fastapi import FastAPI
    from x402 import x402Facilitator, x402ResourceServer
    from x402.http import PaymentOption, RouteConfig
    from x402.http.middleware.fastapi import payment_middleware
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact import (
        register_exact_evm_facilitator,
        register_exact_evm_server,
    )
    from x402.schemas import AssetAmount

    network = f"eip155:{chain.chain_id}"
    facilitator = x402Facilitator()
    register_exact_evm_facilitator(
        facilitator,
        FacilitatorWeb3Signer(private_key=signer_key, rpc_url=chain.url),
        networks=network,
    )
    server = x402ResourceServer(facilitator)  # type: ignore[arg-type]
    register_exact_evm_server(server, network)
    routes = {
        "GET /quote": RouteConfig(
            accepts=PaymentOption(
                scheme="exact",
                pay_to=pay_to,
                network=network,
                price=AssetAmount(
                    amount=str(PRICE), asset=token, extra={"name": "USD Coin", "version": "2"}
                ),
                max_timeout_seconds=300,
            ),
            mime_type="application/json",
        )
    }
    mw = payment_middleware(routes, server)
    app = FastAPI()

    @app.middleware("http")
    async def x402(request: Any, call_next: Any) -> Any:
        return await mw(request, call_next)

    @app.get("/quote")
    async def quote() -> dict[str, str]:
        return {"pair": "ETH/USDC", "price": "3150.25"}

    return app


def _channel_app(engine: ChannelEngine, model: Any = None) -> Any:
    """/quote (priced) and /free (the same handler, unpriced); with ``model``, /embed (priced)
    and /embed-free: one sentence through all-MiniLM-L6-v2, the product's paid inference."""
    from fastapi import FastAPI

    from agentbazaar.channels.http import ChannelPaywall, ChannelPaywallMiddleware

    app = FastAPI()
    paywall = ChannelPaywall(
        engine,
        {"GET /quote": PRICE, "GET /embed": PRICE},
        token_name="USD Coin",
        token_version="2",
    )
    app.add_middleware(ChannelPaywallMiddleware, paywall=paywall)

    @app.get("/quote")
    async def quote() -> dict[str, str]:
        return {"pair": "ETH/USDC", "price": "3150.25"}

    @app.get("/free")
    async def free() -> dict[str, str]:
        return {"pair": "ETH/USDC", "price": "3150.25"}

    def embed() -> dict[str, Any]:
        out = model.embed([SENTENCE])
        return {"tokens": out.tokens, "head": [round(float(x), 6) for x in out.vectors[0][:4]]}

    if model is not None:
        app.get("/embed")(embed)
        app.get("/embed-free")(embed)
    return app


class _VoucherBuyer(ChannelPayer):
    """A kit payer that takes the seller's acknowledged total from each 200 answer."""

    def header_for(self, deposit: bool) -> str:
        return self.header(PRICE, deposit=10**9 if deposit else 0)

    def answered(self, response: Any) -> None:
        assert response.status_code == 200, response.text
        self.settled(json.loads(base64.b64decode(response.headers["PAYMENT-RESPONSE"])))


async def _open(
    http: Any, url: str, url_os: str, workers: list[tuple[_VoucherBuyer, _VoucherBuyer]]
) -> None:
    """Each buyer's first call: the deposit that opens its channel (on each of the two sellers)."""

    async def deposit(base: str, buyer: _VoucherBuyer) -> None:
        r = await http.get(base + "/quote", headers={"PAYMENT-SIGNATURE": buyer.header_for(True)})
        buyer.answered(r)

    await asyncio.gather(
        *(deposit(url, a) for a, _ in workers), *(deposit(url_os, b) for _, b in workers)
    )


def _interleaved(
    url: str,
    url_os: str,
    n: int,
    workers: list[tuple[_VoucherBuyer, _VoucherBuyer]],
    paths: tuple[str, str] = ("/free", "/quote"),
) -> dict[str, float]:
    """Each client alternates free / paid (fsync) / paid (no fsync) calls, so that the shared
    machine's load drifts over all three alike; returns the median latency of each (seconds)."""
    import statistics

    import httpx

    free_path, paid_path = paths
    lat: dict[str, list[float]] = {"free": [], "fsync": [], "no_fsync": []}

    async def paid(http: httpx.AsyncClient, base: str, buyer: _VoucherBuyer, dep: bool) -> None:
        r = await http.get(base + paid_path, headers={"PAYMENT-SIGNATURE": buyer.header_for(dep)})
        buyer.answered(r)

    async def worker(http: httpx.AsyncClient, b_fs: _VoucherBuyer, b_os: _VoucherBuyer) -> None:
        for _ in range(n):
            t0 = time.perf_counter()
            assert (await http.get(url + free_path)).status_code == 200
            t1 = time.perf_counter()
            await paid(http, url, b_fs, False)
            t2 = time.perf_counter()
            await paid(http, url_os, b_os, False)
            t3 = time.perf_counter()
            lat["free"].append(t1 - t0)
            lat["fsync"].append(t2 - t1)
            lat["no_fsync"].append(t3 - t2)

    async def go() -> dict[str, float]:
        limits = httpx.Limits(max_connections=2 * len(workers) + 2)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            await _open(http, url, url_os, workers)
            for _ in range(5):  # warm the connections and code paths
                await http.get(url + free_path)
            await asyncio.gather(*(worker(http, a, b) for a, b in workers))
        return {k: statistics.median(v) for k, v in lat.items()}

    return asyncio.run(go())


def _throughput(
    url: str, url_os: str, n: int, workers: list[tuple[_VoucherBuyer, _VoucherBuyer]], rounds: int
) -> dict[str, float]:
    """Calls/s of len(workers) concurrent clients, in phases: all free, all paid (fsync), all
    paid (no fsync); the phases alternate ``rounds`` times and each keeps its best."""
    import httpx

    best = {"free": 0.0, "fsync": 0.0, "no_fsync": 0.0}

    async def run(kind: str, http: httpx.AsyncClient) -> float:
        async def one(buyer: _VoucherBuyer) -> None:
            for _ in range(n):
                if kind == "free":
                    assert (await http.get(url + "/free")).status_code == 200
                    continue
                base = url if kind == "fsync" else url_os
                r = await http.get(
                    base + "/quote", headers={"PAYMENT-SIGNATURE": buyer.header_for(False)}
                )
                buyer.answered(r)

        pick = 1 if kind == "no_fsync" else 0
        t0 = time.perf_counter()
        await asyncio.gather(*(one(pair[pick]) for pair in workers))
        return n * len(workers) / (time.perf_counter() - t0)

    async def go() -> dict[str, float]:
        limits = httpx.Limits(max_connections=2 * len(workers) + 2)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            await _open(http, url, url_os, workers)
            for _ in range(rounds):
                for kind in best:
                    best[kind] = max(best[kind], await run(kind, http))
        return best

    return asyncio.run(go())


def _exact_calls(url: str, n: int, payer: LocalAccount, network: str, token: str) -> float:
    from x402 import x402Client
    from x402.http.clients.httpx import x402HttpxClient
    from x402.mechanisms.evm.exact import register_exact_evm_client
    from x402.mechanisms.evm.signers import EthAccountSigner

    client = register_exact_evm_client(x402Client(), EthAccountSigner(payer))
    client.set_spend_controls(
        {
            "allowed_assets": [
                {"network": network, "asset": token, "max_amount_per_payment": str(PRICE)}
            ]
        }
    )

    async def go() -> float:
        async with x402HttpxClient(client, timeout=60) as http:
            assert (await http.get(url + "/quote")).status_code == 200
            t0 = time.perf_counter()
            for _ in range(n):
                r = await http.get(url + "/quote")
                assert r.status_code == 200, r.text
            return n / (time.perf_counter() - t0)

    return asyncio.run(go())


def measure(world: LocalWorld, tmp: Path, model: Any, calls: int, rounds: int) -> dict[str, Any]:
    """Start the three sellers on ``world``, drive them from forked clients, check that every
    acknowledged paid call is on disk; returns the figures."""
    chain, authorizer = world.chain, dev_account(2)
    terms = ChannelTerms(chain.chain_id, dev_account(4).address, authorizer.address, world.token)
    engine = ChannelEngine(
        ChannelStore(tmp / "seller.db"), terms, chain=ChannelContracts(chain, authorizer)
    )
    no_fsync = ChannelEngine(
        ChannelStore(tmp / "seller-os.db", fsync=False),
        terms,
        chain=ChannelContracts(chain, authorizer),
    )
    exact_key = "0x" + bytes(dev_account(5).key).hex()
    buyer_x = dev_account(6)
    world.mint(buyer_x.address, 10**10)

    def buyers(n: int) -> list[tuple[_VoucherBuyer, _VoucherBuyer]]:
        pairs = []
        for _ in range(n):
            pair = (_VoucherBuyer(Account.create(), terms), _VoucherBuyer(Account.create(), terms))
            for buyer in pair:
                world.mint(buyer.account.address, 10**10)
            pairs.append(pair)
        return pairs

    with (
        serve_in_thread(_channel_app(engine, model)) as url,
        serve_in_thread(_channel_app(no_fsync, model)) as url_os,
        serve_in_thread(_exact_app(chain, world.token, terms.receiver, exact_key)) as exact_url,
    ):
        # each client process opens its own channels (the buyers' state stays in that process)
        figures = {
            "sequential": in_fork(_interleaved, url, url_os, calls, buyers(1)),
            "embed": in_fork(
                _interleaved,
                url,
                url_os,
                max(30, calls // 10),
                buyers(1),
                ("/embed-free", "/embed"),
            ),
            "throughput": in_fork(_throughput, url, url_os, max(20, calls // 8), buyers(8), rounds),
            "exact": float(
                in_fork(
                    _exact_calls,
                    exact_url,
                    max(20, calls // 10),
                    buyer_x,
                    chain.network,
                    world.token,
                )
            ),
        }
    for eng in (engine, no_fsync):  # every paid call acknowledged is recorded, exactly
        eng.store.flush()
        on_disk = eng.store.load_all()
        for rec in eng.records():
            assert on_disk[rec.channel_id].charged == rec.charged, "a paid call was lost"
    return figures


def report(figures: dict[str, Any]) -> None:
    sequential, embed = figures["sequential"], figures["embed"]
    throughput, exact = figures["throughput"], figures["exact"]
    for route, m in (("quote", sequential), ("embed", embed)):
        tag = "" if route == "quote" else ".embed"
        emit(
            name=f"channels.http.voucher_calls_per_s{tag}",
            value=round(1 / m["fsync"], 1),
            unit="calls/s",
            clients=1,
            p50_ms=round(1000 * m["fsync"], 3),
            durability="fsync per group commit",
        )
        emit(
            name=f"channels.http.vs_unpaid{tag}",
            value=round(m["free"] / m["fsync"], 3),
            unit="ratio",
            reference="same app, same handler unpriced, interleaved, 1 client, median latency",
            free_p50_ms=round(1000 * m["free"], 3),
            no_fsync_p50_ms=round(1000 * m["no_fsync"], 3),
            ratio_no_fsync=round(m["free"] / m["no_fsync"], 3),
        )
    emit(
        name="channels.http.voucher_calls_per_s.concurrent8",
        value=round(throughput["fsync"], 1),
        unit="calls/s",
        clients=8,
        durability="fsync per group commit",
    )
    emit(
        name="channels.http.vs_unpaid.concurrent8",
        value=round(throughput["fsync"] / throughput["free"], 3),
        unit="ratio",
        reference="8 clients, calls/s of the same handler unpriced (best of alternating phases)",
        reference_value=round(throughput["free"], 1),
        no_fsync_calls_per_s=round(throughput["no_fsync"], 1),
        ratio_no_fsync=round(throughput["no_fsync"] / throughput["free"], 3),
    )
    emit(
        name="channels.http.vs_exact",
        value=round((1 / sequential["fsync"]) / exact, 1),
        unit="ratio",
        reference="exact via SDK middleware + in-process facilitator (on-chain per call)",
        reference_value=round(exact, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from agentbazaar.models.embedding import EmbeddingModel

    model = EmbeddingModel(threads=1)
    model.load()
    with tempfile.TemporaryDirectory() as d, anvil_world(Path(d)) as world:
        figures = measure(world, Path(d), model, args.calls, args.rounds)
    report(figures)


if __name__ == "__main__":
    main()
