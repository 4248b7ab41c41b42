"""Signed token transfers per second through our Chain vs raw web3.py, same node, same run.

Prints one JSON line per figure. Run: .venv/bin/python benchmarks/chain.py [--n 300]
Each figure is measured on the embedded chain (py-evm) and on a fresh anvil:
- raw:     pre-built EIP-1559 tx dicts, `account.sign_transaction` + `w3.eth.send_raw_transaction`
           + receipt lookup (what a careful hand-written web3.py loop does);
- ours:    `chain.transact(account, usdc.functions.transfer(...))` with gas estimation (simulation)
           before signing, nonce manager, fee cache, receipt wait;
- ours_gas: the same with an explicit gas limit (no estimation round trip).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from web3.exceptions import TransactionNotFound

from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.deployment import deploy_suite
from agentbazaar.suite import Suite
from agentbazaar.testing import local_anvil

GAS = 80_000


def _rate(n: int, fn: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def bench(chain: Chain, cfg_home: Path, n: int, label: str) -> None:
    cfg = load_config(cfg_home, env={})
    ctx = deploy_suite(chain, cfg)
    usdc = Suite.from_context(ctx).contract("USDC")
    sender, to = Account.create(), Account.create().address
    chain.fund_native(sender.address, 10**20)
    chain.transact(ctx.deployer, usdc.functions.mint(sender.address, 10**15))

    def raw(i: int) -> None:
        nonce = chain.w3.eth.get_transaction_count(sender.address, "pending")
        tx = {
            "to": usdc.address,
            "data": usdc.functions.transfer(to, 1)._encode_transaction_data(),
            "gas": GAS,
            "nonce": nonce,
            "chainId": chain.chain_id,
            "value": 0,
            **chain.fee_params(),
        }
        h = chain.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        while True:
            try:
                chain.w3.eth.get_transaction_receipt(h)
                return
            except TransactionNotFound:
                time.sleep(0.001)

    def ours(i: int) -> None:
        chain.transact(sender, usdc.functions.transfer(to, 1))

    def ours_gas(i: int) -> None:
        chain.transact(sender, usdc.functions.transfer(to, 1), gas=GAS)

    chain._nonces.resync(sender.address)
    r_raw = _rate(n, raw)
    chain._nonces.resync(sender.address)
    r_ours = _rate(n, ours)
    r_gas = _rate(n, ours_gas)
    for name, value in (("raw_web3", r_raw), ("ours", r_ours), ("ours_fixed_gas", r_gas)):
        print(
            json.dumps(
                {
                    "name": f"chain.transfers_per_s.{label}.{name}",
                    "value": round(value, 1),
                    "unit": "tx/s",
                    "reference": "raw_web3",
                    "ratio": round(value / r_raw, 3),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(Chain.embedded(), Path(tmp) / "embedded", args.n, "embedded")
        with local_anvil(Path(tmp)) as node:
            chain = Chain.rpc(node.running_url(), backend="local")
            bench(chain, Path(tmp) / "anvil", args.n, "anvil")


if __name__ == "__main__":
    main()
