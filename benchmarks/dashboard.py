"""The dashboard at scale: time to first render and API latency over a large data directory.

Run: .venv/bin/python benchmarks/dashboard.py [--agents 1000] [--payments 10000] [--requests 200]

1. A fresh anvil with USDC and the ERC-8004 registries; N agents registered with signed cards
   (the discovery benchmark's ``register_agents``: JSON-RPC batches, then mined).
2. M payments in the data directory's spend ledger, written through ``Ledger.reserve`` and
   ``mark_settled`` (the path ``Wallet.spend`` takes), by 10 wallets to the agents' wallets,
   spread over a week; the discovery index catches up once.
3. ``bazaar dashboard``'s app on loopback: each API route is called ``--requests`` times
   (p50/p99, ms) beside the same data read in-process without HTTP (the floor); the overview,
   agent and transaction pages are rendered in Debian's chromium (Playwright, headless) from
   navigation until their content is drawn (median of 5). Goals: page < 1 s, API p50 < 50 ms.

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.dashboard import DashboardData, create_app
from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY
from agentbazaar.testing import LocalWorld, local_anvil, serve_in_thread
from agentbazaar.testing.bench import emit
from agentbazaar.wallet import Ledger, SpendingPolicy, SpendRequest, TokenLimits

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]  # fmt: skip
WEEK = 7 * 86400


def discovery_bench() -> Any:
    """The discovery benchmark's module (its agent registration), loaded from its file."""
    spec = importlib.util.spec_from_file_location(
        "bench_discovery", Path(__file__).parent / "discovery.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fill_ledger(
    ledger: Ledger, usdc: str, payees: list[str], n: int, rnd: random.Random
) -> list[str]:
    """``n`` settled x402 payments by 10 wallets over the last week; returns their tx hashes."""
    policy = SpendingPolicy(tokens={usdc.lower(): TokenLimits("USDC", 6)})
    payers = [Account.create() for _ in range(10)]
    start, hashes = time.time() - WEEK, []
    for i in range(n):
        ledger.clock = lambda i=i: start + i * WEEK / n  # type: ignore[misc]
        payer = payers[i % len(payers)]
        req = SpendRequest(
            wallet=f"wallet-{i % len(payers)}", payer=payer.address, kind="x402", token=usdc,
            amount=rnd.choice((1_000, 2_000, 10_000)), counterparty=rnd.choice(payees),
            idempotency_key=f"bench-{i}", symbol="USDC", decimals=6,
            memo={"url": f"http://127.0.0.1/skill/{i % 40}"},
        )  # fmt: skip
        record, _ = ledger.reserve(req, policy)
        tx = "0x" + rnd.randbytes(32).hex()
        ledger.mark_settled(record.id, tx_hash=tx)
        hashes.append(tx)
    ledger.clock = time.time
    return hashes


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100)[p - 1] if len(samples) > 1 else samples[0]


def api_figures(url: str, data: DashboardData, agent_id: int, tx: str, reps: int) -> None:
    routes: dict[str, tuple[str, Callable[[], Any]]] = {
        "overview": ("/api/overview", data.overview),
        "payments": ("/api/payments?limit=100", lambda: data.payments(100)),
        "agents": ("/api/agents?limit=200", lambda: data.agents(200)),
        "agent": (f"/api/agents/{agent_id}", lambda: data.agent(agent_id)),
        "tx": (f"/api/tx/{tx}", lambda: data.transaction(tx)),
        "chart": ("/api/chart?bucket=3600", lambda: data.chart(3600)),
        "wallets": ("/api/wallets", data.wallets),
    }
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, (path, direct) in routes.items():
            assert client.get(path).status_code == 200, path
            ours = timed(lambda path=path: client.get(path).raise_for_status(), reps)
            floor = timed(direct, max(10, reps // 4))
            p50 = pct(ours, 50)
            emit(name=f"api_{name}_p50", value=round(p50, 2), unit="ms",
                 p99=round(pct(ours, 99), 2), in_process_p50_ms=round(pct(floor, 50), 2),
                 http_overhead_ratio=round(p50 / pct(floor, 50), 2), goal_ms=50,
                 ratio_to_goal=round(p50 / 50, 3))  # fmt: skip


def page_figures(url: str, agent_id: int, tx: str) -> None:
    from playwright.sync_api import sync_playwright

    pages = {
        "overview": ("/", "#count-payments"),
        "agent": (f"/agents/{agent_id}", "#rep-weighted"),
        "tx": (f"/tx/{tx}", "text=Receipts and validation"),
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, (path, drawn) in pages.items():
                samples = []
                for _ in range(6):  # the first warms the browser's cache of our assets
                    page = browser.new_page()
                    t = time.perf_counter()
                    page.goto(url + path)
                    page.wait_for_selector(drawn, timeout=30_000)
                    samples.append((time.perf_counter() - t) * 1000)
                    page.close()
                first, median = samples[0], statistics.median(samples[1:])
                emit(name=f"page_{name}_render", value=round(median, 1), unit="ms",
                     cold_ms=round(first, 1), goal_ms=1000, ratio_to_goal=round(median / 1000, 3))  # fmt: skip
        finally:
            browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--agents", type=int, default=1_000)
    ap.add_argument("--payments", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200, help="timed calls per API route")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops our anvil
    rnd = random.Random(20)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(Path(tmp) / "home", env={})
        with local_anvil(Path(tmp), persist_state=False) as node:
            chain = Chain.rpc(node.running_url(), backend="local", receipt_timeout=600)
            world = LocalWorld.deploy(chain, only=("USDC", IDENTITY_KEY, REPUTATION_KEY), cfg=cfg)
            identity = world.suite.contract(IDENTITY_KEY)
            bench = discovery_bench()
            seconds = bench.register_agents(chain, identity, world.tokens, args.agents, rnd)
            payees = [bench.dev_account(i).address for i in range(bench.OWNERS)]
            t = time.perf_counter()
            hashes = fill_ledger(
                Ledger(cfg.ledger_path, synchronous="NORMAL"),
                world.token,
                payees,
                args.payments,
                rnd,
            )
            data = DashboardData(cfg, chain, world.suite)
            t_sync = time.perf_counter()
            assert len(data.agents(1000)) == min(args.agents, 1000)
            emit(name="setup", value=round(time.perf_counter() - t, 2), unit="s",
                 agents=args.agents, register_s=round(seconds, 2), payments=args.payments,
                 index_catch_up_s=round(time.perf_counter() - t_sync, 2))  # fmt: skip
            agent_id, tx = rnd.randint(1, args.agents), rnd.choice(hashes)
            with serve_in_thread(create_app(data)) as url:
                api_figures(url, data, agent_id, tx, args.requests)
                if Path(CHROMIUM).exists():
                    page_figures(url, agent_id, tx)
                else:
                    emit(name="page_render", skipped="needs Debian's chromium (make setup)")


if __name__ == "__main__":
    main()
