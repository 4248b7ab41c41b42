"""Discovery index: the ERC-8004 registries' events in SQLite, answering queries in milliseconds.

Pieces, from pure to IO:

- :class:`RegistryEvent`: one decoded registry log (Registered, URIUpdated, MetadataSet, the
  ERC-721 Transfer, NewFeedback, FeedbackRevoked).
- :class:`DiscoveryIndex`: the SQLite store (WAL). ``ingest(events, block_hashes, head)`` stores
  the events and re-derives every touched agent from *its* events (event sourcing), so a reorg is
  a delete of the orphaned events followed by the same re-derivation (``rollback``). Each agent's
  card is resolved (data: URI or https), its signature verified, and its wallet compared with the
  on-chain ``agentWallet`` (from ``MetadataSet("agentWallet")``, cleared by a transfer); an agent
  failing any check is kept as *untrusted* with the reason. Feedback counts only when its payment
  is proven on chain (see ``feedback``) and its value is a 0..100 rating, or by the ticket the
  payer consumed in the FeedbackGate; one payment proves one feedback, the first to claim it
  (agents sharing a wallet share its payments). Each agent gets a raw score and a weighted one
  (``identity.weighted``: by payment volume, distinct payers, funding clusters traced on chain
  by ``identity.funding``).
- :class:`Follower`: reads the registries with ``eth_getLogs`` in block ranges, resumes from the
  last indexed block, and on a block-hash mismatch rolls back to the fork point.

Queries (:class:`Query`): skill id or tag, max price in one asset, min proven reputation, active,
trusted; ordered by ``score`` (proven average x n / (n + 3)), then agent id; records carry the
weighted score beside it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from hexbytes import HexBytes
from web3 import Web3
from web3.types import FilterParams, RPCEndpoint

from agentbazaar.chain import Chain, chain_errors
from agentbazaar.errors import BazaarError, ChainError, IdentityError
from agentbazaar.identity._discovery_query import (
    AMOUNT_WIDTH,
    AgentRecord,
    Query,
    query_sql,
    record_from_row,
    scan_query,
)
from agentbazaar.identity._discovery_resolve import ChainResolver, Resolver
from agentbazaar.identity._registry_events import (
    IDENTITY_EVENTS,
    REPUTATION_EVENTS,
    RegistryEvent,
    _cs,
    decode_log,
)
from agentbazaar.identity.cards import Card, check_wallet, parse_card
from agentbazaar.identity.errors import DiscoveryError, FeedbackValueError
from agentbazaar.identity.feedback import check_rating
from agentbazaar.identity.weighted import PaidFeedback, score
from agentbazaar.sqlite import MEMORY, Database, add_columns, connect

__all__ = [
    "IDENTITY_EVENTS",
    "REPUTATION_EVENTS",
    "AgentRecord",
    "ChainResolver",
    "DiscoveryError",
    "DiscoveryIndex",
    "Follower",
    "IngestStats",
    "Query",
    "RegistryEvent",
    "Resolver",
    "SyncStats",
    "decode_log",
    "index_path",
    "open_follower",
    "scan_query",
]

AGENT_WALLET_KEY = "agentWallet"
_ZERO = "0x0000000000000000000000000000000000000000"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  block INTEGER NOT NULL, log_index INTEGER NOT NULL, block_hash TEXT NOT NULL,
  tx_hash TEXT NOT NULL, name TEXT NOT NULL, agent_id INTEGER NOT NULL, args TEXT NOT NULL,
  PRIMARY KEY (block, log_index));
CREATE INDEX IF NOT EXISTS events_agent ON events (agent_id, block, log_index);
CREATE TABLE IF NOT EXISTS agents (
  agent_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, uri TEXT NOT NULL, wallet TEXT,
  name TEXT NOT NULL, description TEXT NOT NULL, trusted INTEGER NOT NULL, reason TEXT NOT NULL,
  active INTEGER NOT NULL, rep_count INTEGER NOT NULL, rep_avg REAL, score REAL NOT NULL,
  skills TEXT NOT NULL, wscore REAL NOT NULL DEFAULT 0, wavg REAL,
  payers INTEGER NOT NULL DEFAULT 0, clusters INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS agents_rank ON agents (trusted, active, score DESC, agent_id);
CREATE INDEX IF NOT EXISTS agents_rank_any ON agents (trusted, score DESC, agent_id);
CREATE INDEX IF NOT EXISTS agents_score ON agents (score DESC, agent_id);
CREATE TABLE IF NOT EXISTS terms (
  term TEXT NOT NULL, agent_id INTEGER NOT NULL, skill_id TEXT NOT NULL,
  PRIMARY KEY (term, agent_id, skill_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS terms_agent ON terms (agent_id);
CREATE TABLE IF NOT EXISTS offers (
  agent_id INTEGER NOT NULL, skill_id TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
  scheme TEXT NOT NULL, PRIMARY KEY (agent_id, asset, amount, skill_id, scheme)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback (
  agent_id INTEGER NOT NULL, client TEXT NOT NULL, idx INTEGER NOT NULL, value TEXT NOT NULL,
  decimals INTEGER NOT NULL, tag1 TEXT NOT NULL, tag2 TEXT NOT NULL, revoked INTEGER NOT NULL,
  proven INTEGER NOT NULL, reason TEXT NOT NULL, payment_tx TEXT, block INTEGER NOT NULL,
  PRIMARY KEY (agent_id, client, idx));
CREATE INDEX IF NOT EXISTS feedback_payment ON feedback (payment_tx, block, agent_id);
"""
_SHARED = "payment already proves feedback for agent"


@dataclass
class _AgentState:
    owner: str = _ZERO
    uri: str = ""
    wallet: str | None = None
    registered: bool = False
    feedback: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


@dataclass
class IngestStats:
    events: int = 0
    agents: int = 0
    head: int = -1


class DiscoveryIndex:
    """The SQLite discovery index of one identity (+ reputation) registry on one chain."""

    def __init__(
        self,
        path: Path | str,
        *,
        chain_id: int,
        identity_registry: str,
        reputation_registry: str | None = None,
    ) -> None:
        self.path = str(path)
        try:
            self._database = Database(self.path, _MIGRATIONS, row_factory=sqlite3.Row)
        except sqlite3.Error as exc:
            raise DiscoveryError(f"cannot open the discovery index {self.path}: {exc}") from exc
        self.db = self._database.conn
        self._reader = self.db  # readers see committed state only (WAL) when the file is shared
        if self.path != MEMORY:
            self._reader = connect(self.path, row_factory=sqlite3.Row)
        self._cards: dict[str, tuple[Card | None, str]] = {}
        self._proofs: dict[tuple[Any, ...], tuple[str | None, int, str, str]] = {}
        self._bind(chain_id, identity_registry, reputation_registry)

    def _bind(self, chain_id: int, identity: str, reputation: str | None) -> None:
        want = {
            "chain_id": str(chain_id),
            "identity": identity.lower(),
            "reputation": str(reputation or "").lower(),
        }
        have = {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM meta")}
        for key, value in want.items():
            if key in have and have[key] != value:
                raise DiscoveryError(
                    f"index {self.path} belongs to {key} {have[key]}, not {value}: "
                    "use another index file or delete it"
                )
        with self._database.transaction():
            for key, value in want.items():
                self.db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
        self.chain_id = chain_id
        self.identity = Web3.to_checksum_address(identity)
        self.reputation = Web3.to_checksum_address(reputation) if reputation else None

    def close(self) -> None:
        if self._reader is not self.db:
            self._reader.close()
        self._database.close()

    # ---- progress -------------------------------------------------------------------------
    def last_block(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
        return int(row["value"]) if row else -1

    def block_hash(self, number: int) -> str | None:
        row = self.db.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        return str(row["hash"]) if row else None

    def stored_blocks(self, below: int) -> list[tuple[int, str]]:
        """Stored (number, hash) pairs at or below ``below``, newest first."""
        rows = self.db.execute(
            "SELECT number, hash FROM blocks WHERE number <= ? ORDER BY number DESC", (below,)
        )
        return [(int(r["number"]), str(r["hash"])) for r in rows]

    def event_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    # ---- ingestion ------------------------------------------------------------------------
    def ingest(
        self,
        events: Sequence[RegistryEvent],
        block_hashes: Mapping[int, str],
        head: int,
        resolver: Resolver,
    ) -> IngestStats:
        """Store ``events`` (blocks up to ``head``) and re-derive the agents they touch.

        Atomic: after a crash the index is at the previous ``head`` or at this one.
        """
        if head < self.last_block():
            raise DiscoveryError(
                f"cannot ingest up to block {head}: index is at {self.last_block()}"
            )
        touched = sorted({e.agent_id for e in events})
        with self._database.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.block_number,
                        e.log_index,
                        e.block_hash,
                        e.tx_hash,
                        e.name,
                        e.agent_id,
                        json.dumps(dict(e.args), sort_keys=True),
                    )
                    for e in events
                ],
            )
            hashes = dict(block_hashes)
            hashes.update({e.block_number: e.block_hash for e in events})
            self.db.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?)", hashes.items())
            for agent_id in touched:
                self._derive(agent_id, resolver)
            self._settle_shared_payments(resolver)
            self._set_last_block(head)
        return IngestStats(events=len(events), agents=len(touched), head=head)

    def rollback(self, fork_block: int, resolver: Resolver) -> int:
        """Forget everything after ``fork_block`` (a reorg); returns the agents re-derived."""
        self._proofs.clear()  # a payment may have been reorged out with its block
        with self._database.transaction():
            rows = self.db.execute(
                "SELECT DISTINCT agent_id FROM events WHERE block > ?", (fork_block,)
            ).fetchall()
            self.db.execute("DELETE FROM events WHERE block > ?", (fork_block,))
            self.db.execute("DELETE FROM blocks WHERE number > ?", (fork_block,))
            losers = self.db.execute(
                "SELECT DISTINCT agent_id FROM feedback WHERE reason LIKE ?", (_SHARED + "%",)
            ).fetchall()  # their payment's first claim may be gone with the fork
            for agent_id in sorted({int(r["agent_id"]) for r in [*rows, *losers]}):
                self._derive(agent_id, resolver)
            self._settle_shared_payments(resolver)
            self._set_last_block(fork_block)
        return len(rows)

    def _set_last_block(self, head: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('last_block', ?)", (str(head),))

    def _replay(self, agent_id: int) -> _AgentState:
        state = _AgentState()
        rows = self.db.execute(
            "SELECT name, args, block FROM events WHERE agent_id = ? ORDER BY block, log_index",
            (agent_id,),
        )
        for row in rows:
            name, args = row["name"], json.loads(row["args"])
            if name == "Registered":
                state.registered, state.uri, state.owner = True, args["agentURI"], args["owner"]
            elif name == "URIUpdated":
                state.uri = args["newURI"]
            elif name == "MetadataSet" and args["metadataKey"] == AGENT_WALLET_KEY:
                raw = HexBytes(args["metadataValue"])
                wallet = _cs("0x" + raw[-20:].hex()) if len(raw) >= 20 else None
                state.wallet = None if wallet == _ZERO else wallet
            elif name == "Transfer":
                state.owner = args["to"]
                if int(args["from"], 16) != 0 and args["from"].lower() != args["to"].lower():
                    state.wallet = None  # the standard clears agentWallet when the token moves
            elif name == "NewFeedback":
                key = (args["clientAddress"], int(args["feedbackIndex"]))
                state.feedback[key] = dict(args, block=int(row["block"]), revoked=False)
            elif name == "FeedbackRevoked":
                key = (args["clientAddress"], int(args["feedbackIndex"]))
                if key in state.feedback:
                    state.feedback[key]["revoked"] = True
        return state

    def _card(self, uri: str, resolver: Resolver) -> tuple[Card | None, str]:
        if uri in self._cards:
            return self._cards[uri]
        try:
            result: tuple[Card | None, str] = (parse_card(resolver.document(uri)), "")
        except BazaarError as exc:
            result = (None, f"{type(exc).__name__}: {exc}")
        if len(self._cards) > 50_000:
            self._cards.clear()
        self._cards[uri] = result
        return result

    def _derive(self, agent_id: int, resolver: Resolver) -> None:
        for table in ("agents", "terms", "offers", "feedback"):
            self.db.execute(f"DELETE FROM {table} WHERE agent_id = ?", (agent_id,))
        state = self._replay(agent_id)
        if not state.registered or int(state.owner, 16) == 0:
            return  # never registered in the surviving history, or burned
        card, reason = self._card(state.uri, resolver) if state.uri else (None, "no agentURI")
        if card is not None:
            try:
                check_wallet(card, state.wallet)
            except IdentityError as exc:
                reason = f"{type(exc).__name__}: {exc}"
        trusted = card is not None and not reason
        tokens = {p.asset.lower() for s in (card.skills if card else []) for p in s.prices}
        proven = self._derive_feedback(agent_id, state, tokens, resolver)
        own = [a for a in (state.owner, state.wallet) if a]
        roots = resolver.funding_roots({f.payer for f in proven}, tokens, own) if proven else {}
        rep = score(proven, roots, own)
        skills = [s.model_dump(mode="json", exclude_none=True) for s in card.skills] if card else []
        self.db.execute(
            f"INSERT INTO agents ({_AGENT_COLUMNS}) VALUES ({', '.join('?' * 17)})",
            (
                agent_id,
                _cs(state.owner),
                state.uri,
                state.wallet,
                card.name if card else "",
                card.description if card else "",
                int(trusted),
                reason,
                int(bool(card and card.active)),
                len(proven),
                float(rep.raw_avg) if rep.raw_avg is not None else None,
                float(rep.raw_score),
                json.dumps(skills),
                float(rep.weighted_score),
                float(rep.weighted_avg) if rep.weighted_avg is not None else None,
                rep.payers,
                rep.clusters,
            ),
        )
        if card is None:
            return
        for s in card.skills:
            terms = {s.id.lower(), *(t.lower() for t in s.tags)}
            self.db.executemany(
                "INSERT OR IGNORE INTO terms VALUES (?, ?, ?)",
                [(t, agent_id, s.id) for t in terms],
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO offers VALUES (?, ?, ?, ?, ?)",
                [
                    (agent_id, s.id, p.asset.lower(), p.amount.zfill(AMOUNT_WIDTH), p.scheme)
                    for p in s.prices
                ],
            )

    def _derive_feedback(
        self, agent_id: int, state: _AgentState, tokens: set[str], resolver: Resolver
    ) -> list[PaidFeedback]:
        """Each feedback with whether its payment is proven (stored); returns the proven,
        unrevoked ones with who paid and how much."""
        proven: list[PaidFeedback] = []
        claimed: set[str] = set()
        for (client, idx), fb in sorted(state.feedback.items(), key=lambda kv: kv[1]["block"]):
            tx, amount, payer, reason = self._proof(agent_id, fb, state.wallet, tokens, resolver)
            if tx is not None and tx in claimed:
                reason, tx = "payment already proves another feedback for this agent", None
            try:
                check_rating(int(fb["value"]), int(fb["valueDecimals"]))
            except FeedbackValueError as exc:  # a rating out of range is no reputation
                reason, tx = f"{type(exc).__name__}: {exc}", None
            first = self._first_claim(tx, agent_id, int(fb["block"])) if tx else None
            if first is not None:
                reason, tx = f"{_SHARED} {first}", None
            ok = not reason
            if ok and tx is not None:
                claimed.add(tx)
                if not fb["revoked"]:
                    value = Decimal(int(fb["value"])).scaleb(-int(fb["valueDecimals"]))
                    proven.append(PaidFeedback(payer, amount, value))
            self.db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    agent_id,
                    client,
                    idx,
                    str(fb["value"]),
                    int(fb["valueDecimals"]),
                    fb["tag1"],
                    fb["tag2"],
                    int(fb["revoked"]),
                    int(ok),
                    reason,
                    tx,
                    fb["block"],
                ),
            )
        return proven

    def _first_claim(self, tx: str, agent_id: int, block: int) -> int | None:
        """The other agent whose proven feedback claimed payment ``tx`` first, if any: one
        payment proves one feedback, whichever agents share the wallet it paid."""
        row = self.db.execute(
            "SELECT agent_id FROM feedback WHERE payment_tx = ? AND proven = 1 AND agent_id != ?"
            " AND (block < ? OR (block = ? AND agent_id < ?)) ORDER BY block, agent_id LIMIT 1",
            (tx, agent_id, block, block, agent_id),
        ).fetchone()
        return int(row["agent_id"]) if row else None

    def _settle_shared_payments(self, resolver: Resolver) -> None:
        """Re-derive each agent holding a proven claim on a payment an earlier feedback of
        another agent claimed (agents derived in one batch did not see each other's claims)."""
        for _ in range(10_000):  # each round demotes claims that are not first: it ends
            rows = self.db.execute(
                "SELECT DISTINCT f.agent_id FROM feedback f JOIN feedback g"
                " ON g.payment_tx = f.payment_tx AND g.agent_id != f.agent_id"
                " WHERE f.proven = 1 AND g.proven = 1"
                " AND (g.block < f.block OR (g.block = f.block AND g.agent_id < f.agent_id))"
            ).fetchall()
            if not rows:
                return
            for row in rows:
                self._derive(int(row["agent_id"]), resolver)
        raise DiscoveryError("shared payments did not settle")  # pragma: no cover

    def _proof(
        self,
        agent_id: int,
        fb: Mapping[str, Any],
        wallet: str | None,
        tokens: set[str],
        resolver: Resolver,
    ) -> tuple[str | None, int, str, str]:
        """(proof, amount, payer, "") when the feedback's payment is proven, else (None, 0, "",
        reason); cached until a rollback, so re-deriving an agent does not re-read every
        payment."""
        key = (agent_id, fb["clientAddress"], fb["feedbackIndex"], fb["feedbackHash"], wallet,
               frozenset(tokens))  # fmt: skip
        if key not in self._proofs:
            try:
                self._proofs[key] = (*resolver.verify_feedback(fb, agent_id, wallet, tokens), "")
            except BazaarError as exc:
                self._proofs[key] = (None, 0, "", f"{type(exc).__name__}: {exc}")
            if len(self._proofs) > 200_000:
                self._proofs.clear()
        return self._proofs[key]

    # ---- queries --------------------------------------------------------------------------
    def query(self, q: Query) -> list[AgentRecord]:
        """Agents matching ``q``, best score first (indexed: milliseconds at 10,000 agents)."""
        sql, params = query_sql(q)
        try:
            rows = self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise DiscoveryError(f"discovery query failed: {exc}") from exc
        return [record_from_row(r) for r in rows]

    def agent(self, agent_id: int) -> AgentRecord | None:
        row = self._reader.execute(
            "SELECT * FROM agents WHERE agent_id = ?", (agent_id,)
        ).fetchone()
        return record_from_row(row) if row else None

    def feedback(self, agent_id: int) -> list[dict[str, Any]]:
        rows = self._reader.execute(
            "SELECT client, idx, value, decimals, tag1, tag2, revoked, proven, reason, payment_tx"
            " FROM feedback WHERE agent_id = ? ORDER BY block, client, idx",
            (agent_id,),
        )
        return [dict(r) for r in rows]

    def count(self, *, trusted: bool | None = None) -> int:
        if trusted is None:
            return int(self._reader.execute("SELECT COUNT(*) FROM agents").fetchone()[0])
        sql = "SELECT COUNT(*) FROM agents WHERE trusted = ?"
        return int(self._reader.execute(sql, (int(trusted),)).fetchone()[0])


_AGENT_COLUMNS = (
    "agent_id, owner, uri, wallet, name, description, trusted, reason, active, rep_count, "
    "rep_avg, score, skills, wscore, wavg, payers, clusters"
)
_ADDED_COLUMNS = {  # added after the first release: indexes created before get them on open
    "wscore": "REAL NOT NULL DEFAULT 0",
    "wavg": "REAL",
    "payers": "INTEGER NOT NULL DEFAULT 0",
    "clusters": "INTEGER NOT NULL DEFAULT 0",
}
_MIGRATIONS = (_SCHEMA, add_columns("agents", _ADDED_COLUMNS))


# ---- following the chain -----------------------------------------------------------------------
@dataclass
class SyncStats:
    events: int = 0
    agents: int = 0
    head: int = -1
    reorgs: int = 0
    rolled_back_to: int | None = None


class Follower:
    """Keeps a :class:`DiscoveryIndex` in step with the chain (resumable, reorg-safe)."""

    def __init__(
        self,
        index: DiscoveryIndex,
        chain: Chain,
        *,
        resolver: Resolver | None = None,
        batch_blocks: int = 2_000,
    ) -> None:
        if chain.chain_id != index.chain_id:
            raise DiscoveryError(f"index is for chain {index.chain_id}, not {chain.chain_id}")
        self.index = index
        self.chain = chain
        self.resolver = resolver or ChainResolver(chain, index.identity)
        self.batch_blocks = batch_blocks
        self.addresses = [a for a in (index.identity, index.reputation) if a]

    def _hash(self, number: int) -> str:
        with chain_errors("read a block", url=self.chain.url):
            return HexBytes(self.chain.w3.eth.get_block(number)["hash"]).to_0x_hex()

    def check_reorg(self) -> int | None:
        """If the indexed tip is no longer on the chain, roll back to the fork point."""
        last = self.index.last_block()
        if last < 0 or self.index.block_hash(last) in (None, self._hash_or_none(last)):
            return None
        fork = -1
        for number, stored in self.index.stored_blocks(last):
            if self._hash_or_none(number) == stored:
                fork = number
                break
        self.index.rollback(fork, self.resolver)
        return fork

    def _hash_or_none(self, number: int) -> str | None:
        try:
            return self._hash(number)
        except BazaarError:
            return None

    def sync(self, to_block: int | None = None) -> SyncStats:
        """Index every block up to ``to_block`` (default: the chain head)."""
        stats = SyncStats()
        fork = self.check_reorg()
        if fork is not None:
            stats.reorgs, stats.rolled_back_to = 1, fork
        head = self.chain.block_number() if to_block is None else to_block
        start = self.index.last_block() + 1
        span = self.batch_blocks
        while start <= head:
            end = min(start + span - 1, head)
            try:
                events = self._events(start, end)
            except ChainError:
                if end == start:
                    raise
                span = max(1, (end - start + 1) // 2)  # nodes cap eth_getLogs ranges / results
                continue
            result = self.index.ingest(events, {end: self._hash(end)}, end, self.resolver)
            stats.events += result.events
            stats.agents += result.agents
            start = end + 1
        stats.head = self.index.last_block()
        return stats

    def _events(self, start: int, end: int) -> list[RegistryEvent]:
        params: FilterParams = {
            "fromBlock": start,
            "toBlock": end,
            "address": cast(Any, self.addresses),
        }
        with chain_errors("read registry logs", url=self.chain.url):
            logs = self._raw_logs(params) if self.chain.url else self.chain.w3.eth.get_logs(params)
        out = []
        for log in logs:
            event = decode_log(log, self.index.identity, self.index.reputation)
            if event is not None:
                out.append(event)
        return out

    def _raw_logs(self, params: FilterParams) -> list[Mapping[str, Any]]:
        """eth_getLogs without web3's result formatters (half the catch-up time at scale);
        ``decode_log`` reads the hex quantities itself."""
        raw = {**params, "fromBlock": hex(int(params["fromBlock"])), "toBlock": hex(int(params["toBlock"]))}  # fmt: skip
        response = self.chain.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [raw])
        if "error" in response:
            error = cast(Mapping[str, Any], response["error"])
            raise ChainError(f"eth_getLogs failed: {error.get('message', error)}")
        return cast(list[Mapping[str, Any]], response["result"])


def index_path(home: Path, chain_id: int, identity_registry: str) -> Path:
    return home / "discovery" / f"{chain_id}-{identity_registry.lower()[2:10]}.sqlite"


def open_follower(
    chain: Chain,
    home: Path | None,
    identity_registry: str,
    reputation_registry: str | None,
    *,
    gate: str | None = None,
) -> Follower:
    """The index of this registry pair (under ``home``, or in memory) and its follower; with
    the FeedbackGate, feedback it wrote is proven by the tickets behind it."""
    path: Path | str = ":memory:"
    if home is not None and chain.backend != "embedded":
        path = index_path(home, chain.chain_id, identity_registry)
    index = DiscoveryIndex(
        path,
        chain_id=chain.chain_id,
        identity_registry=identity_registry,
        reputation_registry=reputation_registry,
    )
    return Follower(index, chain, resolver=ChainResolver(chain, identity_registry, gate=gate))
