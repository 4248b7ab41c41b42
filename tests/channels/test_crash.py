"""kill -9 of the seller (twice) during a stream of 10,000 paid requests: after a restart
every acknowledged charge is in the seller's store and claimable on chain, nothing is charged
twice, and the buyers go on from what they saw acknowledged (a charge whose response they never
saw is voided by their next voucher, or proven by a corrective 402)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import ChannelContracts, ChannelStore, ChannelTerms
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.wire import payment_header
from agentbazaar.testing import ChannelPayer, LocalWorld, free_port

PRICE = 1_000
DEPOSIT = 10_000_000  # 10,000 requests at PRICE across four channels fit with room
PAYERS = (1, 3, 5, 6)
HERE = Path(__file__).parent


class Stream:
    """One buyer streaming paid requests, tracking what the seller acknowledged."""

    def __init__(self, payer: ChannelPayer, d: LocalWorld) -> None:
        self.payer = payer
        self.d = d
        self.acked = 0  # acknowledged charges (responses received)
        self.resynced = 0  # charges learnt from a corrective 402 (committed, response lost)
        self.deposited = False

    async def run(self, http: httpx.AsyncClient, url: str, until: asyncio.Event) -> None:
        while not until.is_set():
            p = self.payer
            if self.deposited:
                payload = p.next_voucher(PRICE)
            else:
                payload = p.deposit(PRICE, DEPOSIT, valid_before=int(time.time()) + 3600)
            try:
                header = payment_header(p.requirement(PRICE), payload)
                r = await http.get(url, headers={"PAYMENT-SIGNATURE": header})
            except httpx.HTTPError:
                await asyncio.sleep(0.01)  # the seller is down
                continue
            if r.status_code == 200:
                state = json.loads(base64.b64decode(r.headers["PAYMENT-RESPONSE"]))
                charged = int(state["extra"]["channelState"]["chargedCumulativeAmount"])
                assert charged == p.charged + PRICE, "charged something other than this request"
                p.charged = charged
                self.acked += 1
                self.deposited = True
                continue
            assert r.status_code == 402, r.text
            self.resync(json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"])))

    def resync(self, required: dict[str, Any]) -> None:
        extra = required["accepts"][0]["extra"]
        assert "channelState" in extra, required["error"]
        claimed = int(extra["channelState"]["chargedCumulativeAmount"])
        proof = extra["voucherState"]
        ceiling = int(proof["signedMaxClaimable"])
        p = self.payer
        digest = cx.voucher_digest(p.domain, p.cid, ceiling)
        assert cx.recover(digest, bytes.fromhex(proof["signature"][2:])) == bytes.fromhex(
            p.account.address[2:]
        ), "the seller's proof is not a voucher this buyer signed"
        assert claimed <= ceiling and claimed - p.charged == PRICE  # at most the one lost response
        self.resynced += 1
        p.charged = claimed
        self.deposited = True


def start_seller(
    rpc: str, db: Path, port: int, terms: ChannelTerms, fsync: bool
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "seller_proc.py"),
            rpc,
            str(db),
            str(port),
            terms.token,
            terms.receiver,
            "1" if fsync else "0",
        ],
        cwd=HERE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()  # never leave a seller behind
            proc.wait()
            raise AssertionError("seller did not start")
        time.sleep(0.05)


async def stream_until(streams: list[Stream], url: str, acks: int) -> None:
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=10) as http:
        tasks = [asyncio.create_task(s.run(http, url, stop)) for s in streams]
        while sum(s.acked for s in streams) < acks:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.gather(*tasks)


async def stream_and_kill(
    streams: list[Stream], url: str, acks: int, proc: subprocess.Popen[bytes]
) -> None:
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=10) as http:
        tasks = [asyncio.create_task(s.run(http, url, stop)) for s in streams]
        while sum(s.acked for s in streams) < acks:
            await asyncio.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight
        proc.wait()
        stop.set()
        await asyncio.gather(*tasks)


STREAM = 10_000  # paid requests acknowledged over the whole stream
KILLS = 2  # kill -9 of the seller, at evenly spaced points of the stream


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.parametrize("fsync", [True, False], ids=["fsync", "no-fsync"])
def test_kill_9_mid_stream_loses_no_acknowledged_charge(
    on_anvil: LocalWorld, tmp_path: Path, fsync: bool
) -> None:
    """10,000 paid requests from four buyers at once; the seller is killed twice mid-stream.
    At each kill: every acknowledged charge is on disk, at most the one request in flight per
    channel beyond it. After each restart the buyers go on from what they saw acknowledged; at
    the end the seller's charged totals equal what the buyers saw acknowledged (nobody paid for
    a response they never got), and a claim moves exactly that on chain."""
    d = on_anvil
    terms = ChannelTerms(
        chain_id=d.chain.chain_id,
        receiver=dev_account(4).address,
        receiver_authorizer=dev_account(2).address,
        token=d.usdc.address,
    )
    streams = []
    for i in PAYERS:
        d.mint(dev_account(i).address, DEPOSIT)
        streams.append(Stream(ChannelPayer(dev_account(i), terms), d))
    db, port = tmp_path / "seller.db", free_port()
    url = f"http://127.0.0.1:{port}/work"
    rpc = d.chain.url or ""
    proc = start_seller(rpc, db, port, terms, fsync)
    try:
        for k in range(1, KILLS + 1):
            asyncio.run(stream_and_kill(streams, url, STREAM * k // (KILLS + 1), proc))
            acked_at_kill = {s.payer.cid: s.payer.charged for s in streams}
            store = ChannelStore(db)
            on_disk = {r.channel_id: r for r in store.load_all().values()}
            store.close()
            for cid, charged in acked_at_kill.items():
                rec = on_disk[cid]
                assert charged <= rec.charged <= charged + PRICE  # acked => durable; <= 1 more
                assert rec.charged - rec.pending <= charged  # anything beyond is marked pending
            proc = start_seller(rpc, db, port, terms, fsync)
        asyncio.run(stream_until(streams, url, STREAM))
    finally:
        proc.kill()  # a no-op when it is already gone
        proc.wait()
    store = ChannelStore(db)
    records = store.load_all()
    store.close()
    assert sum(s.acked for s in streams) >= STREAM
    for s in streams:
        rec = records[s.payer.cid]
        assert rec.charged == s.payer.charged == (s.acked + s.resynced) * PRICE
        assert s.resynced <= KILLS
        assert rec.charged <= DEPOSIT
    contracts = ChannelContracts(d.chain, dev_account(2))
    contracts.claim(list(records.values()))
    for s in streams:
        assert contracts.state(s.payer.cid).total_claimed == s.payer.charged
