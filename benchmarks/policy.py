"""What the spending policy and the durable ledger cost per payment, beside the bare key.

Prints one JSON line per figure. Run: .venv/bin/python benchmarks/policy.py [--n 200]

- ``x402_signature``: an EIP-3009 ``TransferWithAuthorization`` signed through ``Wallet.spend``
  (policy check, ``BEGIN IMMEDIATE`` reservation, signature, signed payload stored) beside a bare
  ``account.sign_typed_data`` (what the x402 SDK's ``EthAccountSigner`` does). Measured with the
  ledger's default ``synchronous=FULL`` (fsync per commit) and with ``NORMAL``.
- ``transfer_anvil``: a native transfer with ``Wallet.send`` (policy, ledger, raw tx stored before
  the broadcast, receipt, settled: three commits) beside ``Chain.send`` alone, on a fresh anvil.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eth_account import Account

from agentbazaar.chain import Chain
from agentbazaar.testing import local_anvil
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

TOKEN = "0x" + "ab" * 20
TYPES = {
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ]
}


def _rate(n: int, fn: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def _emit(name: str, ours: float, reference: float, unit: str, **extra: object) -> None:
    line = {
        "name": name,
        "value": round(ours, 1),
        "reference": round(reference, 1),
        "unit": unit,
        "ratio": round(ours / reference, 3),
        "overhead_ms": round(1000 / ours - 1000 / reference, 3),
        **extra,
    }
    print(json.dumps(line), flush=True)


def bench_signature(n: int, tmp: Path) -> None:
    account = Account.create()
    to = Account.create().address
    domain = {"name": "USD Coin", "version": "2", "chainId": 31337, "verifyingContract": TOKEN}
    policy = SpendingPolicy().with_limits(TOKEN, "USDC", 6, max_per_payment=10**9, daily=10**15)

    def message() -> dict[str, object]:
        return {
            "from": account.address,
            "to": to,
            "value": 1000,
            "validAfter": 0,
            "validBefore": 2**40,
            "nonce": os.urandom(32),
        }

    def raw(i: int) -> None:
        account.sign_typed_data(domain_data=domain, message_types=TYPES, message_data=message())

    raw_rate = _rate(n, raw)
    for sync in ("FULL", "NORMAL"):
        wallet = Wallet("bench", account, policy, Ledger(tmp / f"{sync}.sqlite", synchronous=sync))

        def ours(i: int, wallet: Wallet = wallet) -> None:
            with wallet.spend(kind="x402", token=TOKEN, amount=1000, counterparty=to) as spend:
                spend.sign_typed_data(domain, TYPES, message())

        _emit(f"x402_signature_{sync.lower()}", _rate(n, ours), raw_rate, "signatures/s", n=n)


def bench_transfer(n: int, tmp: Path) -> None:
    with local_anvil(tmp) as node:
        chain = Chain.rpc(node.running_url(), backend="local")
        plain, paying = Account.create(), Account.create()
        to = Account.create().address
        chain.fund_native(plain.address, 10**20)
        chain.fund_native(paying.address, 10**20)

        def reference(i: int) -> None:
            chain.send(plain, {"to": to, "value": 1})  # gas estimated, as in Wallet.send

        ref_rate = _rate(n, reference)
        for sync in ("FULL", "NORMAL"):
            ledger = Ledger(tmp / f"send-{sync}.sqlite", synchronous=sync)
            wallet = Wallet("bench", paying, SpendingPolicy(), ledger)

            def ours(i: int, wallet: Wallet = wallet) -> None:
                wallet.send(chain, to, 1)

            _emit(f"transfer_anvil_{sync.lower()}", _rate(n, ours), ref_rate, "transfers/s", n=n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_signature(args.n, Path(tmp))
        bench_transfer(max(args.n // 2, 10), Path(tmp))


if __name__ == "__main__":
    main()
