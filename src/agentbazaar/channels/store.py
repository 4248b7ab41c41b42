"""Durable per-channel state for a seller: SQLite in WAL mode with group commit.

A paid response may only leave the server after its charge is on disk. Committing one SQLite
transaction (with an fsync) per voucher would cap a seller at a few hundred vouchers a second, so
writes go through one writer thread that takes every update queued since its last commit and
writes them in a single transaction: callers wait for *their* update to be durable, and under
load one fsync covers hundreds of charges.

Three kinds of write: `commit`/`save` (wait until durable), `write_ahead` (queue now, await the
returned future later: the engine syncs a charge while the handler runs) and `submit_lazy` (no
waiting: rides along with the next durable commit, or is written on its own after a few ms).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, fields
from pathlib import Path

from agentbazaar.channels._crypto import ChannelConfig
from agentbazaar.channels.errors import ChannelStoreError
from agentbazaar.sqlite import Database, add_columns, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    channel_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    charged TEXT NOT NULL,
    signed_max TEXT NOT NULL,
    signature BLOB NOT NULL,
    balance TEXT NOT NULL,
    total_claimed TEXT NOT NULL,
    withdraw_requested_at INTEGER NOT NULL,
    refund_nonce TEXT NOT NULL,
    synced_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    pending TEXT NOT NULL DEFAULT '0'
)
"""
# a store from before charges were written ahead has no pending column
_MIGRATIONS = (_SCHEMA, add_columns("channels", {"pending": "TEXT NOT NULL DEFAULT '0'"}))
_COLUMNS = (
    "channel_id, config, charged, signed_max, signature, balance, total_claimed, "
    "withdraw_requested_at, refund_nonce, synced_at_ms, updated_at_ms, pending"
)
_UPSERT = f"""
INSERT INTO channels ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(channel_id) DO UPDATE SET
    charged=excluded.charged, signed_max=excluded.signed_max, signature=excluded.signature,
    balance=excluded.balance, total_claimed=excluded.total_claimed,
    withdraw_requested_at=excluded.withdraw_requested_at, refund_nonce=excluded.refund_nonce,
    synced_at_ms=excluded.synced_at_ms, updated_at_ms=excluded.updated_at_ms,
    pending=excluded.pending
"""
_MAX_GROUP = 4096
log = logging.getLogger(__name__)
LAZY_DELAY_S = 0.005  # how long a lazy write waits for a durable one to share its commit

# who waits for a record to be durable: a thread (concurrent Future), an event loop, or nobody
# (a lazy write: it rides along with the next commit, or is written after LAZY_DELAY_S)
_Waiter = Future[None] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"] | None


@dataclass(frozen=True)
class ChannelRecord:
    """What the seller knows about one channel. Amounts are integer base units (uint128)."""

    channel_id: bytes
    config: ChannelConfig
    charged: int = 0  # chargedCumulativeAmount: sum of every acknowledged charge
    signed_max: int = 0  # maxClaimableAmount of the latest voucher accepted
    signature: bytes = b""  # the payer's signature over that voucher
    balance: int = 0  # mirrored from chain
    total_claimed: int = 0  # mirrored from chain
    withdraw_requested_at: int = 0  # mirrored from chain (0: no timed withdrawal pending)
    refund_nonce: int = 0  # mirrored from chain
    synced_at_ms: int = 0  # when the mirrored fields were read
    updated_at_ms: int = 0
    # the part of `charged` whose response may not have gone out: a charge is written ahead of
    # its handler and confirmed (pending back to 0) after the response; see ChannelEngine
    pending: int = 0

    @property
    def channel_hex(self) -> str:
        return "0x" + self.channel_id.hex()

    @property
    def unclaimed(self) -> int:
        """Charged but not yet claimed on chain."""
        return self.charged - self.total_claimed

    def evolve(self, **changes: object) -> ChannelRecord:
        """A copy with ``changes`` (the request path makes two per voucher: this skips the
        frozen dataclass's field-by-field __init__, ~8x cheaper than dataclasses.replace)."""
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"ChannelRecord has no field(s) {sorted(unknown)}")
        new = object.__new__(ChannelRecord)
        state = new.__dict__
        state.update(self.__dict__)
        state.update(changes)
        return new


_FIELDS = frozenset(f.name for f in fields(ChannelRecord))


@functools.lru_cache(maxsize=65536)
def _config_json(config: ChannelConfig) -> str:
    return json.dumps(config.to_wire(), sort_keys=True)


def _row(rec: ChannelRecord) -> tuple[object, ...]:
    return (
        rec.channel_hex,
        _config_json(rec.config),
        str(rec.charged),
        str(rec.signed_max),
        rec.signature,
        str(rec.balance),
        str(rec.total_claimed),
        rec.withdraw_requested_at,
        str(rec.refund_nonce),
        rec.synced_at_ms,
        rec.updated_at_ms,
        str(rec.pending),
    )


def _record(row: tuple[object, ...]) -> ChannelRecord:
    cid, cfg, charged, smax, sig, bal, claimed, wra, nonce, synced, updated, pending = row
    return ChannelRecord(
        channel_id=bytes.fromhex(str(cid)[2:]),
        config=ChannelConfig.from_wire(json.loads(str(cfg))),
        charged=int(str(charged)),
        signed_max=int(str(smax)),
        signature=bytes(sig) if isinstance(sig, (bytes, memoryview)) else b"",
        balance=int(str(bal)),
        total_claimed=int(str(claimed)),
        withdraw_requested_at=int(str(wra)),
        refund_nonce=int(str(nonce)),
        synced_at_ms=int(str(synced)),
        updated_at_ms=int(str(updated)),
        pending=int(str(pending)),
    )


class ChannelStore:
    """SQLite-backed channel records with a group-committing writer thread.

    ``fsync=True`` (default): a commit returns after SQLite's fsync of the WAL (survives power
    loss). ``fsync=False``: after the WAL write reached the operating system (survives a crash
    or kill -9 of the process, not of the machine); for sellers that prefer latency."""

    def __init__(
        self, path: Path | str, *, fsync: bool = True, group_window_s: float = 0.0003
    ) -> None:
        self.path = Path(path)
        try:
            self._db = Database(self.path, _MIGRATIONS, synchronous="FULL" if fsync else "NORMAL")
        except sqlite3.Error as exc:
            raise ChannelStoreError(f"cannot open the channel store {self.path}: {exc}") from exc
        # (record, waiter); a None record is a flush marker, a None item stops the writer
        self._queue: queue.SimpleQueue[tuple[ChannelRecord | None, _Waiter] | None] = (
            queue.SimpleQueue()
        )
        self.fsync = fsync
        # group commit: while more requests are under way than a batch holds, the writer waits
        # up to this long for their charges (0: never waits); `in_flight` is kept by the engine
        self.group_window_s = group_window_s
        self.in_flight = 0
        self.commits = 0  # transactions written (for diagnostics and benchmarks)
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="channel-store", daemon=True)
        self._writer.start()

    # ---- reads --------------------------------------------------------------------------
    def load_all(self) -> dict[bytes, ChannelRecord]:
        with self._db.locked() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM channels").fetchall()
        return {rec.channel_id: rec for rec in map(_record, rows)}

    def get(self, channel_id: bytes) -> ChannelRecord | None:
        with self._db.locked() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM channels WHERE channel_id = ?", ("0x" + channel_id.hex(),)
            ).fetchone()
        return _record(row) if row else None

    # ---- writes -------------------------------------------------------------------------
    def submit(self, rec: ChannelRecord) -> Future[None]:
        """Queue ``rec`` for the next group commit; the future resolves once it is durable."""
        if self._closed:
            raise ChannelStoreError("the channel store is closed")
        fut: Future[None] = Future()
        self._queue.put((rec, fut))
        return fut

    def write_ahead(self, rec: ChannelRecord) -> asyncio.Future[None]:
        """Queue ``rec`` now and return a future (of the running event loop) that resolves once
        it is durable: the caller does other work (runs the handler) while the disk syncs."""
        if self._closed:
            raise ChannelStoreError("the channel store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put((rec, (loop, fut)))
        return fut

    def submit_lazy(self, rec: ChannelRecord) -> None:
        """Queue ``rec`` without waiting: it shares the next durable commit (or is written on
        its own after `LAZY_DELAY_S`). For writes whose loss in a crash is harmless."""
        if self._closed:
            raise ChannelStoreError("the channel store is closed")
        self._queue.put((rec, None))

    def flush(self) -> None:
        """Wait until everything queued before this call (lazy writes included) is durable."""
        if self._closed:
            raise ChannelStoreError("the channel store is closed")
        fut: Future[None] = Future()
        self._queue.put((None, fut))
        fut.result()

    def save(self, rec: ChannelRecord) -> None:
        """Write ``rec`` and wait until it is durable."""
        self.submit(rec).result()

    async def commit(self, rec: ChannelRecord) -> None:
        """Write ``rec``; returns once it is durable (awaitable from an event loop).

        The writer wakes each event loop once per group commit, not once per record."""
        if self._closed:
            raise ChannelStoreError("the channel store is closed")
        if not self.fsync:  # no fsync to wait for: a WAL append inline beats two thread hops
            self._write_now([rec])
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put((rec, (loop, fut)))
        await fut

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._db.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            durable = 0 if item[1] is None else 1
            deadline = 0.0
            stop = False
            while len(batch) < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    if durable == 0:
                        wait = LAZY_DELAY_S  # only lazy writes: give a durable one time to join
                    elif durable < self.in_flight and self.group_window_s > 0:
                        # other requests are under way: their charges may arrive within the
                        # window and share this commit's fsync (~100 us of CPU each)
                        now = time.monotonic()
                        deadline = deadline or now + self.group_window_s
                        wait = deadline - now
                        if wait <= 0:
                            break
                    else:
                        break
                    try:
                        nxt = self._queue.get(timeout=wait)
                    except queue.Empty:
                        break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                if nxt[1] is not None:
                    durable += 1
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[ChannelRecord | None, _Waiter]]) -> None:
        latest: dict[bytes, ChannelRecord] = {}
        for rec, _ in batch:
            if rec is not None:  # later updates of one channel supersede earlier ones
                latest[rec.channel_id] = rec
        try:
            if latest:
                self._write_now(list(latest.values()))
        except ChannelStoreError as exc:
            log.error("%s (%d queued records not written)", exc, len(latest))
            _notify(batch, exc)
            return
        _notify(batch, None)

    def _write_now(self, records: list[ChannelRecord]) -> None:
        try:
            with self._db.locked() as db:
                with transaction(db):
                    db.executemany(_UPSERT, [_row(r) for r in records])
                self.commits += 1
        except sqlite3.Error as exc:
            raise ChannelStoreError(f"channel store write failed: {exc}") from exc


def _notify(batch: list[tuple[ChannelRecord | None, _Waiter]], error: Exception | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, waiter in batch:
        if waiter is None:
            continue
        if isinstance(waiter, Future):
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
        else:
            by_loop.setdefault(waiter[0], []).append(waiter[1])
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, futures, error)
        except RuntimeError:  # that event loop is closed: nobody is waiting any more
            pass


def _resolve(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for fut in futures:
        if fut.done():  # the awaiting request was cancelled
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
