"""Discovery at scale: register N agents on anvil, index them, query; indexed vs a full scan.

Run: .venv/bin/python benchmarks/discovery.py [--agents 10000] [--feedback 0.05] [--queries 200]

1. A fresh anvil; the identity and reputation registries and a stablecoin are deployed.
2. N agents are registered in batches: each card (random skills, tags and USDC prices) is signed
   by its owner (the 10 dev accounts take turns) and put on chain as a ``data:`` URI; the signed
   transactions are sent as JSON-RPC batches without waiting, then the last receipt is awaited.
   A share of the agents gets paid feedback (a real USDC transfer, then giveFeedback).
3. The index catches up from block 0 (``Follower.sync``): events/s and agents/s.
4. A mix of queries (skill, tag, skill + max price, min reputation, no filter) runs through the
   indexed SQL (``DiscoveryIndex.query``) and through a plain full scan of the same agents table
   filtered in Python (``scan_query``); both must return the same ids. p50/p99 and the ratio.

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.identity.cards import (
    AgentConfig,
    PriceConfig,
    SkillConfig,
    build_registration,
    card_bytes,
    sign_card,
    to_data_uri,
)
from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY
from agentbazaar.identity.discovery import DiscoveryIndex, Follower, Query, scan_query
from agentbazaar.identity.feedback import prepare_feedback
from agentbazaar.testing import LocalWorld, local_anvil
from agentbazaar.tokens import TokenRegistry

SKILLS = [f"skill{i:02d}" for i in range(40)]
TAGS = ["nlp", "vision", "code", "search", "fast", "cheap", "finance", "legal", "audio", "web"]
PRICES = ["0.001", "0.005", "0.01", "0.02", "0.05", "0.1", "0.5", "1"]
OWNERS = 10
REGISTER_GAS = 3_000_000
BATCH = 200
BLOCK_GAS_LIMIT = 100_000_000  # about 80 registrations per block


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def send_and_mine(chain: Chain, raws: list[bytes]) -> list[str]:
    """eth_sendRawTransaction in JSON-RPC batches; each batch is mined before the next is sent
    (anvil's pool slows down sharply with thousands of pending transactions)."""
    assert chain.url is not None
    rpc = chain.w3.provider.make_request
    hashes: list[str] = []
    with requests.Session() as session:
        for start in range(0, len(raws), BATCH):
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                 "params": ["0x" + raw.hex()]}
                for i, raw in enumerate(raws[start : start + BATCH])
            ]  # fmt: skip
            answers = session.post(chain.url, json=payload, timeout=300).json()
            for a in sorted(answers, key=lambda a: a["id"]):
                if "error" in a:
                    raise RuntimeError(f"send failed: {a['error']}")
                hashes.append(a["result"])
            while int(rpc(RPCEndpoint("txpool_status"), [])["result"]["pending"], 16):
                rpc(RPCEndpoint("anvil_setNextBlockBaseFeePerGas"), ["0x1"])
                rpc(RPCEndpoint("evm_mine"), [])
    return hashes


def random_config(rnd: random.Random, i: int) -> AgentConfig:
    skills = []
    for sid in rnd.sample(SKILLS, rnd.randint(1, 3)):
        skills.append(
            SkillConfig(
                id=sid,
                name=sid,
                tags=rnd.sample(TAGS, rnd.randint(0, 2)),
                prices=[PriceConfig(token="USDC", amount=rnd.choice(PRICES))],
            )
        )
    return AgentConfig(name=f"agent-{i}", skills=skills, active=rnd.random() > 0.1)


def register_agents(
    chain: Chain, identity: Contract, tokens: TokenRegistry, n: int, rnd: random.Random
) -> float:
    owners = [dev_account(i) for i in range(OWNERS)]
    nonces = {o.address: chain.w3.eth.get_transaction_count(o.address) for o in owners}
    fees = chain.fee_params()
    start = time.perf_counter()
    raws: list[bytes] = []
    for i in range(n):
        owner = owners[i % OWNERS]
        card = build_registration(random_config(rnd, i), owner.address, tokens, chain.chain_id)
        uri = to_data_uri(card_bytes(sign_card(card, owner, chain.chain_id)))
        tx = {
            "to": identity.address,
            "data": identity.functions.register(uri)._encode_transaction_data(),
            "gas": REGISTER_GAS,
            "nonce": nonces[owner.address],
            "chainId": chain.chain_id,
            "value": 0,
            **fees,
        }
        nonces[owner.address] += 1
        raws.append(bytes(owner.sign_transaction(tx).raw_transaction))
    mine_in_batches(chain, raws)
    return time.perf_counter() - start


def give_feedback_batch(
    chain: Chain, reg: Contract, usdc: Contract, identity: Contract, agent_ids: list[int],
    rnd: random.Random,
) -> None:  # fmt: skip
    """Paid feedback for ``agent_ids``: a 0.001 USDC transfer to the agent's wallet, then
    giveFeedback whose file proves that transfer (its hash is known once signed), batched."""
    clients: list[LocalAccount] = [Account.create() for _ in range(5)]
    for c in clients:
        chain.fund_native(c.address, 10**20)
        chain.transact(dev_account(0), usdc.functions.mint(c.address, 10**12))
    nonces = dict.fromkeys((c.address for c in clients), 0)
    fees = chain.fee_params()
    raws: list[bytes] = []

    def sign(client: LocalAccount, to: str, data: str, gas: int) -> bytes:
        tx = {"to": to, "data": data, "gas": gas, "nonce": nonces[client.address],
              "chainId": chain.chain_id, "value": 0, **fees}  # fmt: skip
        nonces[client.address] += 1
        return bytes(client.sign_transaction(tx).raw_transaction)

    for k, agent_id in enumerate(agent_ids):
        client = clients[k % len(clients)]
        # the pool orders transactions by sender, so agent ids are read back from the chain
        wallet = chain.call(identity.functions.getAgentWallet(agent_id))
        pay = sign(client, usdc.address, usdc.functions.transfer(wallet, 1_000)._encode_transaction_data(), 100_000)  # fmt: skip
        raws.append(pay)
        prepared = prepare_feedback(
            chain_id=chain.chain_id,
            identity_registry=identity.address,
            agent_id=agent_id,
            client=client.address,
            agent_wallet=wallet,
            value=rnd.randint(0, 100),
            value_decimals=0,
            payment_tx=Web3.keccak(pay).to_0x_hex(),
        )
        fn = reg.functions.giveFeedback(
            agent_id, prepared.file.value, 0, "", "", "", prepared.uri, prepared.hash
        )
        raws.append(sign(client, reg.address, fn._encode_transaction_data(), 1_000_000))
    mine_in_batches(chain, raws)


def mine_in_batches(chain: Chain, raws: list[bytes]) -> list[str]:
    rpc = chain.w3.provider.make_request
    # automine off: a batch fills the pool, then full blocks are mined; the base fee is reset
    # before each block, else full blocks raise it 12.5% a block and price the queue out
    rpc(RPCEndpoint("evm_setBlockGasLimit"), [hex(BLOCK_GAS_LIMIT)])
    rpc(RPCEndpoint("evm_setAutomine"), [False])
    try:
        hashes = send_and_mine(chain, raws)
    finally:
        rpc(RPCEndpoint("evm_setAutomine"), [True])
    receipt = chain.wait_for_receipt(hashes[-1], timeout=60)
    assert receipt["status"] == 1
    return hashes


def queries(usdc: str, rnd: random.Random) -> list[Query]:
    out: list[Query] = [Query(), Query(min_rep=Decimal(50)), Query(active=None, limit=50)]
    for _ in range(20):
        out.append(Query(skill=rnd.choice(SKILLS)))
        out.append(Query(skill=rnd.choice(TAGS)))
        out.append(Query(skill=rnd.choice(SKILLS), asset=usdc, max_price=rnd.choice([1_000, 20_000, 100_000])))  # fmt: skip
        out.append(Query(asset=usdc, max_price=rnd.choice([1_000, 5_000])))
    return out


def timed(fn: Any, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--feedback", type=float, default=0.05, help="share of agents with feedback")
    ap.add_argument("--queries", type=int, default=400, help="timed queries per side")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops our anvil
    rnd = random.Random(8004)
    with tempfile.TemporaryDirectory() as tmp:
        # a private anvil without --state: dumping a state of 10,000 cards every few seconds
        # (what `bazaar chain up` does to survive restarts) would dominate the run
        with local_anvil(Path(tmp), persist_state=False) as node:
            chain = Chain.rpc(node.running_url(), backend="local", receipt_timeout=600)
            world = LocalWorld.deploy(chain, only=("USDC", IDENTITY_KEY, REPUTATION_KEY))
            identity = world.suite.contract(IDENTITY_KEY)
            reputation = world.suite.contract(REPUTATION_KEY)
            usdc, tokens = world.usdc, world.tokens
            seconds = register_agents(chain, identity, tokens, args.agents, rnd)
            emit("register_agents", args.agents / seconds, "agents/s", agents=args.agents,
                 seconds=round(seconds, 2), batched=f"{BATCH} raw txs per JSON-RPC batch, then mined")  # fmt: skip
            rated = rnd.sample(range(args.agents), int(args.agents * args.feedback))
            give_feedback_batch(chain, reputation, usdc, identity, rated, rnd)
            index = DiscoveryIndex(
                Path(tmp) / "discovery.sqlite",
                chain_id=chain.chain_id,
                identity_registry=identity.address,
                reputation_registry=reputation.address,
            )
            t = time.perf_counter()
            stats = Follower(index, chain, batch_blocks=2_000).sync()
            took = time.perf_counter() - t
            emit("index_catch_up", stats.events / took, "events/s", events=stats.events,
                 agents=index.count(), trusted=index.count(trusted=True),
                 blocks=stats.head + 1, seconds=round(took, 2),
                 proven_feedback=index.db.execute("SELECT COUNT(*) FROM feedback WHERE proven = 1").fetchone()[0],
                 feedback=len(rated))  # fmt: skip
            qs = queries(usdc.address, rnd)
            for q in qs:  # same answers, and warm caches for both sides
                assert [r.agent_id for r in index.query(q)] == scan_query(index.db, q), q
            ours = timed(lambda: index.query(rnd.choice(qs)), args.queries)
            scan = timed(lambda: scan_query(index.db, rnd.choice(qs)), max(20, args.queries // 10))
            for label, p in (("p50", 50), ("p99", 99)):
                a, b = pct(ours, p), pct(scan, p)
                emit(f"query_{label}", a, "ms", agents=index.count(), full_scan_ms=round(b, 3),
                     speedup=round(b / a, 1), target_p50_ms=5)  # fmt: skip


if __name__ == "__main__":
    main()
