"""batch-settlement channels: our engine beside the x402 SDK's server, one run.

Run: .venv/bin/python benchmarks/channels.py [--channels 50] [--vouchers 200] [--calls 300]

(a) vouchers verified and durably recorded per second, one process:
    - ours:        `ChannelEngine.begin` + `commit` (cached domain/channel id, libsecp256k1
                   recovery, SQLite WAL group commit: each voucher awaits its fsync'd commit);
    - sdk_memory:  the SDK server scheme's hooks (before_verify -> local verify, after_verify,
                   before_settle) with its InMemoryChannelStorage (no durability at all);
    - sdk_file:    the same with its FileChannelStorage (one JSON file per channel).
    Vouchers are signed before timing; all channels stream concurrently.
(b) end-to-end paid HTTP calls per second on anvil (uvicorn on 127.0.0.1, httpx client in a
    forked process): the same route unpaid, paid with batch-settlement vouchers through our
    paywall, and paid with `exact` through the SDK's reference wiring (middleware + in-process
    facilitator + FacilitatorWeb3Signer: one on-chain settlement per call).
(c) gas per payment: 100 channels x 1,000 vouchers each -> 100 deposits, one claim of 100
    channels, one settle; vs one EIP-3009 transferWithAuthorization (what `exact` settles).
Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/x402.py would shadow the x402 package when this script's directory is on sys.path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from eth_utils.address import to_checksum_address  # noqa: E402

from agentbazaar.channels import ChannelEngine, ChannelRecord, ChannelStore, SellerTerms  # noqa: E402
from agentbazaar.channels import _crypto as cx  # noqa: E402

PRICE = 1_000


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# ---- (a) engine throughput ---------------------------------------------------------------------
class Workload:
    """Pre-signed vouchers for many channels of one seller."""

    def __init__(self, channels: int, vouchers: int, chain_id: int = 31337) -> None:
        self.seller = Account.create()
        token = to_checksum_address("0x" + "ab" * 20)
        self.terms = SellerTerms(chain_id, self.seller.address, self.seller.address, token)
        domain = cx.domain_separator(chain_id, self.terms.contract)
        self.configs: list[cx.ChannelConfig] = []
        self.payloads: list[list[dict[str, Any]]] = []
        for _ in range(channels):
            payer: LocalAccount = Account.create()
            cfg = cx.ChannelConfig(
                payer.address,
                payer.address,
                self.seller.address,
                self.seller.address,
                token,
                900,
                os.urandom(32),
            )
            cid = cx.channel_id(domain, cfg)
            self.configs.append(cfg)
            rows = []
            for k in range(1, vouchers + 1):
                sig = cx.sign(bytes(payer.key), cx.voucher_digest(domain, cid, k * PRICE))
                rows.append(
                    {
                        "type": "voucher",
                        "channelConfig": cfg.to_wire(),
                        "voucher": {
                            "channelId": "0x" + cid.hex(),
                            "maxClaimableAmount": str(k * PRICE),
                            "signature": "0x" + sig.hex(),
                        },
                    }
                )
            self.payloads.append(rows)

    @property
    def total(self) -> int:
        return sum(len(rows) for rows in self.payloads)


def bench_ours(w: Workload, tmp: Path) -> float:
    store = ChannelStore(tmp / "ours.db")
    domain = cx.domain_separator(w.terms.chain_id, w.terms.contract)
    for cfg in w.configs:
        store.save(ChannelRecord(cx.channel_id(domain, cfg), cfg, balance=10**15))
    engine = ChannelEngine(store, w.terms)

    async def stream(rows: list[dict[str, Any]]) -> None:
        for payload in rows:
            await engine.commit(await engine.begin(payload, PRICE))

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(stream(rows) for rows in w.payloads))
        return time.perf_counter() - t0

    elapsed = asyncio.run(run())
    charged = sum(r.charged for r in store.load_all().values())
    assert charged == w.total * PRICE, "not every voucher was recorded"
    store.close()
    return w.total / elapsed


def bench_sdk(w: Workload, storage: Any) -> float:
    from x402.mechanisms.evm.batch_settlement.server import BatchSettlementEvmScheme
    from x402.mechanisms.evm.batch_settlement.server.scheme import (
        BatchSettlementEvmSchemeServerConfig,
    )
    from x402.mechanisms.evm.batch_settlement.server.storage import Channel
    from x402.mechanisms.evm.batch_settlement.types import ChannelConfig
    from x402.schemas import PaymentPayload, PaymentRequirements
    from x402.schemas.hooks import SettleContext, VerifyContext, VerifyResultContext

    scheme = BatchSettlementEvmScheme(
        w.seller.address, BatchSettlementEvmSchemeServerConfig(storage=storage)
    )
    req = PaymentRequirements(
        scheme="batch-settlement",
        network=f"eip155:{w.terms.chain_id}",
        asset=w.terms.token,
        amount=str(PRICE),
        pay_to=w.seller.address,
        max_timeout_seconds=3600,
        extra=w.terms.requirement_extra("USD Coin", "2"),
    )
    now_ms = int(time.time() * 1000) + 3_600_000  # "fresh" for the whole run
    for rows in w.payloads:
        raw = rows[0]
        cid = raw["voucher"]["channelId"].lower()
        channel = Channel(
            cid,
            ChannelConfig.from_dict(raw["channelConfig"]),
            balance=str(10**15),
            onchain_synced_at=now_ms,
        )
        storage.update_channel(cid, lambda _cur, c=channel: c)
    streams = [
        [PaymentPayload(x402_version=2, payload=p, accepted=req) for p in rows]
        for rows in w.payloads
    ]

    def one(pp: Any) -> None:
        skip = scheme.before_verify(VerifyContext(payment_payload=pp, requirements=req))
        if skip is None or not getattr(skip, "result", None) or not skip.result.is_valid:
            raise RuntimeError(f"SDK did not verify locally: {skip}")
        aborted = scheme.after_verify(
            VerifyResultContext(payment_payload=pp, requirements=req, result=skip.result)
        )
        if aborted is not None and type(aborted).__name__ == "AbortResult":
            raise RuntimeError(f"SDK after_verify aborted: {aborted}")
        settled = scheme.before_settle(SettleContext(payment_payload=pp, requirements=req))
        if type(settled).__name__ != "SkipSettleResult":
            raise RuntimeError(f"SDK did not record the charge: {settled}")

    t0 = time.perf_counter()
    for k in range(len(streams[0])):  # interleave channels as concurrent streams would
        for rows in streams:
            one(rows[k])
    return w.total / (time.perf_counter() - t0)


def part_a(args: argparse.Namespace) -> None:
    from x402.mechanisms.evm.batch_settlement.server import InMemoryChannelStorage
    from x402.mechanisms.evm.batch_settlement.server.file_storage import FileChannelStorage

    w = Workload(args.channels, args.vouchers)
    with tempfile.TemporaryDirectory() as d:
        ours = bench_ours(w, Path(d))
        sdk_mem = bench_sdk(w, InMemoryChannelStorage())
        small = Workload(min(args.channels, 20), min(args.vouchers, 50))
        sdk_file = bench_sdk(small, FileChannelStorage(str(Path(d) / "sdk-files")))
    common = {"unit": "vouchers/s", "channels": args.channels, "vouchers": w.total}
    emit(
        name="channels.engine.vouchers_per_s",
        value=round(ours),
        **common,
        durable="sqlite wal fsync per group commit",
    )
    emit(
        name="channels.engine.vs_sdk_memory",
        value=round(ours / sdk_mem, 1),
        unit="ratio",
        reference="sdk server hooks, InMemoryChannelStorage",
        reference_value=round(sdk_mem),
    )
    emit(
        name="channels.engine.vs_sdk_file",
        value=round(ours / sdk_file, 1),
        unit="ratio",
        reference="sdk server hooks, FileChannelStorage",
        reference_value=round(sdk_file),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--vouchers", type=int, default=200)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--parts", default="abc")
    args = parser.parse_args()
    if "a" in args.parts:
        part_a(args)


if __name__ == "__main__":
    sys.exit(main())
