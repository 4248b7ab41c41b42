"""batch-settlement channels (a): vouchers verified and durably recorded per second, one process,
our engine beside the x402 SDK's server, one run.

Run: .venv/bin/python -P benchmarks/channels_engine.py [--channels 50] [--vouchers 200] [--rounds 3]

- ours:        `ChannelEngine.begin` + `commit` (cached domain/channel id, libsecp256k1
               recovery, SQLite WAL group commit: each voucher awaits its fsync'd commit);
- sdk_memory:  the SDK server scheme's hooks (before_verify -> local verify, after_verify,
               before_settle) with its InMemoryChannelStorage (no durability at all);
- sdk_file:    the same with its FileChannelStorage (one JSON file per channel).
Vouchers are signed (by the test kit's `ChannelPayer`) before timing; all channels stream
concurrently. Each figure is the best of --rounds alternating runs (the machine is shared).
Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address

from agentbazaar.channels import ChannelEngine, ChannelRecord, ChannelStore, ChannelTerms
from agentbazaar.testing import ChannelPayer
from agentbazaar.testing.bench import emit

PRICE = 1_000


class Workload:
    """Pre-signed vouchers for many channels of one seller."""

    def __init__(self, channels: int, vouchers: int, chain_id: int = 31337) -> None:
        self.seller = Account.create()
        token = to_checksum_address("0x" + "ab" * 20)
        self.terms = ChannelTerms(chain_id, self.seller.address, self.seller.address, token)
        self.payers = [ChannelPayer(Account.create(), self.terms) for _ in range(channels)]
        self.payloads = [
            [p.voucher(k * PRICE) for k in range(1, vouchers + 1)] for p in self.payers
        ]

    @property
    def total(self) -> int:
        return sum(len(rows) for rows in self.payloads)


def bench_ours(w: Workload, tmp: Path) -> float:
    store = ChannelStore(tmp / "ours.db")
    for payer in w.payers:
        store.save(ChannelRecord(payer.cid, payer.config, balance=10**15))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--vouchers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from x402.mechanisms.evm.batch_settlement.server import InMemoryChannelStorage
    from x402.mechanisms.evm.batch_settlement.server.file_storage import FileChannelStorage

    w = Workload(args.channels, args.vouchers)
    small = Workload(min(args.channels, 20), min(args.vouchers, 50))
    ours = sdk_mem = sdk_file = 0.0
    for i in range(args.rounds):  # alternate and keep each one's best: the machine is shared
        with tempfile.TemporaryDirectory() as d:
            ours = max(ours, bench_ours(w, Path(d)))
            sdk_mem = max(sdk_mem, bench_sdk(w, InMemoryChannelStorage()))
            sdk_file = max(sdk_file, bench_sdk(small, FileChannelStorage(str(Path(d) / f"f{i}"))))
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


if __name__ == "__main__":
    main()
