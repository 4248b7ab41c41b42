"""What the dashboard shows, read through the library's stores and the chain.

Sources, all under the data directory (``cfg.home``) unless said: the spend ledger
(``ledger.sqlite``: every payment a wallet of the directory made, x402, transfers, channel
deposits and vouchers), the receipts of served agents (``agents/*/receipts.sqlite``, with the
validators' verdicts), the discovery index of the ERC-8004 registries (followed from the chain),
wallets (``keystores/``, balances on chain, ``policies/``), contract records (``contracts/``) and
the dataset registry (on chain). Nothing here writes, except the discovery index following the
chain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from agentbazaar.agents.store import ReceiptStore
from agentbazaar.errors import BazaarError, NotFound
from agentbazaar.tokens import Token
from agentbazaar.units import format_units
from agentbazaar.wallet import Ledger, PolicyStore, SpendRecord

if TYPE_CHECKING:
    from agentbazaar.chain import Chain
    from agentbazaar.config import BazaarConfig
    from agentbazaar.identity.discovery import AgentRecord, Follower
    from agentbazaar.suite import Suite

T = TypeVar("T")
SYNC_EVERY = 2.0  # seconds between two syncs of the discovery index


def when(seconds: float | None) -> str | None:
    """A unix time as an ISO date (UTC), or None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(float(seconds), UTC).isoformat(timespec="seconds")


class DashboardData:
    """Read-only views over one data directory and its chain, as plain JSON data."""

    def __init__(self, cfg: BazaarConfig, chain: Chain, suite: Suite) -> None:
        self.cfg, self.chain, self.suite = cfg, chain, suite
        self.ledger = Ledger(cfg.ledger_path)
        self._follower: Follower | None = None
        self._synced = 0.0
        self._lock = threading.Lock()
        self._receipts: dict[Path, ReceiptStore] = {}
        self._views: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self._balances: dict[str, tuple[int, list[dict[str, str]]]] = {}

    # ---- helpers -------------------------------------------------------------------------------
    def token(self, key: str | None) -> Token | None:
        try:
            return self.suite.tokens.get(key) if key and key != "native" else None
        except BazaarError:
            return None

    def money(self, units: int, token_key: str | None, symbol: str | None = None,
              decimals: int | None = None) -> dict[str, str]:  # fmt: skip
        """Token units with the symbol, and the exact base units beside them."""
        token = self.token(token_key)
        if token is not None:
            return {"amount": token.format(units), "units": str(units)}
        if decimals is not None:
            return {"amount": f"{format_units(units, decimals)} {symbol or ''}".strip(),
                    "units": str(units)}  # fmt: skip
        if token_key == "native":
            return {"amount": f"{format_units(units, 18)} ETH", "units": str(units)}
        return {"amount": f"{units} base units", "units": str(units)}

    def payment(self, r: SpendRecord) -> dict[str, Any]:
        return {
            "id": r.id,
            "wallet": r.wallet,
            "kind": r.kind,
            "scheme": _scheme(r.kind),
            **self.money(r.amount, r.token, r.symbol, r.decimals),
            "symbol": r.symbol,
            "to": r.counterparty,
            "status": r.status,
            "tx": r.tx_hash,
            "created": when(r.created_at),
            "url": r.memo.get("url") if isinstance(r.memo, dict) else None,
            "error": r.error,
        }

    # ---- agents --------------------------------------------------------------------------------
    def follower(self) -> Follower | None:
        from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY
        from agentbazaar.identity.discovery import open_follower

        with self._lock:
            if self._follower is None:
                if not self.suite.has(IDENTITY_KEY):
                    return None
                reputation = (
                    str(self.suite.contract(REPUTATION_KEY).address)
                    if self.suite.has(REPUTATION_KEY) else None
                )  # fmt: skip
                self._follower = open_follower(
                    self.chain, self.cfg.home, str(self.suite.contract(IDENTITY_KEY).address),
                    reputation,
                )  # fmt: skip
            if time.monotonic() - self._synced > SYNC_EVERY:
                self._follower.sync()
                self._synced = time.monotonic()
            return self._follower

    def agent_json(self, r: AgentRecord) -> dict[str, Any]:
        skills = []
        for s in r.skills:
            prices = [
                {**self.money(int(p["amount"]), p.get("asset")), "scheme": p.get("scheme")}
                for p in s.get("prices", [])
            ]
            skills.append({"id": s.get("id"), "name": s.get("name"), "prices": prices})
        return {
            "agentId": r.agent_id, "name": r.name, "description": r.description,
            "owner": r.owner, "wallet": r.wallet, "trusted": r.trusted, "reason": r.reason,
            "active": r.active, "reputation": r.rep_avg, "reviews": r.rep_count,
            "score": round(r.score, 4), "skills": skills,
        }  # fmt: skip

    def agents(self, limit: int = 200) -> list[dict[str, Any]]:
        from agentbazaar.identity.discovery import Query

        follower = self.follower()
        if follower is None:
            return []
        query = Query(active=None, trusted_only=False, limit=max(1, min(limit, 1000)))
        return [self.agent_json(r) for r in follower.index.query(query)]

    def agent(self, agent_id: int) -> dict[str, Any]:
        follower = self.follower()
        record = follower.index.agent(agent_id) if follower is not None else None
        if record is None:
            raise NotFound(f"no agent {agent_id} on chain {self.chain.chain_id}")
        doc = self.agent_json(record)
        doc["card"] = record.uri if not record.uri.startswith("data:") else "data: URI (on chain)"
        doc["feedback"] = follower.index.feedback(agent_id) if follower else []
        doc["receipts"] = self.receipts(provider_agent_id=agent_id, limit=50)
        paid = self.ledger_payments_to(record.wallet) if record.wallet else []
        doc["payments"] = paid
        verdicts = [r["verdict"] for r in doc["receipts"] if r["verdict"] is not None]
        doc["validation"] = {
            "count": len(verdicts),
            "average": sum(verdicts) / len(verdicts) if verdicts else None,
        }
        return doc

    def ledger_payments_to(self, address: str, limit: int = 50) -> list[dict[str, Any]]:
        return [self.payment(r) for r in self.ledger.recent(limit=limit, counterparty=address)]

    # ---- payments, receipts, transactions ------------------------------------------------------
    def payments(self, limit: int = 100, before: int | None = None,
                 wallet: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        rows = self.ledger.recent(wallet, limit=max(1, min(limit, 1000)), before_id=before)
        return [self.payment(r) for r in rows]

    def receipt_stores(self) -> list[ReceiptStore]:
        for path in sorted((self.cfg.home / "agents").glob("*/receipts.sqlite")):
            if path not in self._receipts:
                self._receipts[path] = ReceiptStore(path)
        return list(self._receipts.values())

    def receipts(self, limit: int = 100, **where: Any) -> list[dict[str, Any]]:
        """Receipts of every served agent, merged by id (a sale and its purchase are one), with
        the verdict a validator of this directory gave (the lowest score when several did)."""
        seen: dict[str, dict[str, Any]] = {}
        stores = self.receipt_stores()
        for store in stores:
            for row in store.summaries(limit=limit, **where):
                mine = seen.setdefault(row["id"], dict(row, roles=[]))
                mine["roles"].append(row["role"])
        verdicts = self._verdicts(stores)
        out = sorted(seen.values(), key=lambda r: -int(r["timestamp"]))[:limit]
        for r in out:
            score, tx = verdicts.get(r["id"], (r["verdict"], r["verdict_tx"]))
            r.update(self.money(int(r["price"]), r["asset"]), time=when(r["timestamp"]),
                     verdict=score, verdict_tx=tx)  # fmt: skip
        return out

    @staticmethod
    def _verdicts(stores: list[ReceiptStore]) -> dict[str, tuple[int, str | None]]:
        found: dict[str, tuple[int, str | None]] = {}
        for store in stores:
            for v in store.verdicts():
                if v.receipt_id not in found or v.score < found[v.receipt_id][0]:
                    found[v.receipt_id] = (v.score, v.tx_hash)
        return found

    def transaction(self, tx_hash: str) -> dict[str, Any]:
        if not (tx_hash.startswith("0x") and len(tx_hash) == 66):
            raise NotFound(f"not a transaction hash: {tx_hash!r}")
        payments = [self.payment(r) for r in self.ledger.recent(limit=50, tx_hash=tx_hash)]
        receipts = self.receipts(tx_hash=tx_hash)
        onchain = self._onchain(tx_hash)
        if not payments and not receipts and onchain is None:
            raise NotFound(f"no transaction {tx_hash} here or on chain {self.chain.chain_id}")
        return {"hash": tx_hash, "chain": onchain, "payments": payments, "receipts": receipts}

    def _onchain(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            receipt = self.chain.receipt(tx_hash)
        except BazaarError:
            return None
        if receipt is None:
            return None
        block = self.chain.w3.eth.get_block(receipt["blockNumber"])
        return {
            "block": int(receipt["blockNumber"]), "status": int(receipt["status"]),
            "from": receipt["from"], "to": receipt.get("to"), "gasUsed": int(receipt["gasUsed"]),
            "time": when(int(block["timestamp"])),
        }  # fmt: skip

    # ---- wallets, budgets, charts --------------------------------------------------------------
    def fresh(self, name: str, key: tuple[Any, ...], read: Callable[[], T]) -> T:
        """``read()``, or its last answer while ``key`` (all the view depends on) is unchanged."""
        cached = self._views.get(name)
        if cached is not None and cached[0] == key:
            return cast(T, cached[1])
        out = read()
        self._views[name] = (key, out)
        return out

    def balances(self, address: str, block: int) -> list[dict[str, str]]:
        """Native and token balances of ``address`` at the chain head ``block``: one chain call
        per token, so kept until the head moves."""
        from agentbazaar.wallet import balances

        cached = self._balances.get(address)
        if cached is None or cached[0] != block:
            found = balances(self.chain, address, self.suite.tokens)
            shown = [{"token": b.token.symbol, **self.money(b.units, b.token.address or "native")}
                     for b in found]  # fmt: skip
            cached = self._balances[address] = (block, shown)
        return cached[1]

    def wallets(self) -> list[dict[str, Any]]:
        """Every wallet with its balances (read once per block) and spend against budget."""
        policies = PolicyStore(self.cfg.policy_dir)
        block, out = self.chain.block_number(), []
        for name, address in self._wallet_addresses():
            policy = (
                policies.load(name) if (self.cfg.policy_dir / f"{name}.toml").exists() else None
            )
            budgets = []
            for key, lim in policy.tokens.items() if policy else []:
                spent = self.ledger.spent_in_window(name, key, policy.window_seconds)  # type: ignore[union-attr]
                budgets.append({"symbol": lim.symbol,
                                "spent": self.money(spent, key, lim.symbol, lim.decimals),
                                "daily": self.money(lim.daily, key, lim.symbol, lim.decimals)
                                if lim.daily is not None else None})  # fmt: skip
            out.append({
                "name": name, "address": address,
                "balances": self.balances(address, block) if address else [],
                "budgets": budgets,
                "escrowed": {k: str(v) for k, v in self.ledger.escrowed(name).items() if v},
            })  # fmt: skip
        return out

    def _wallet_addresses(self) -> list[tuple[str, str | None]]:
        """Wallets of the ledger and of the keystores, with the address the ledger saw."""
        names = set(self.ledger.wallets())
        keystores = self.cfg.keystore_dir
        if keystores.is_dir():
            names |= {p.stem for p in keystores.glob("*.json") if not p.name.startswith(".")}
        out = []
        for name in sorted(names):
            last = self.ledger.recent(name, limit=1)
            out.append((name, last[0].payer if last else None))
        return out

    def chart(self, bucket: int = 3600) -> list[dict[str, Any]]:
        """Payments per time bucket and token (all wallets and kinds together: one bar per
        bucket): count and amount in token units, oldest first; reused while nothing moved."""
        key = (bucket, self.fingerprint())
        return self.fresh("chart", key, lambda: self._chart(bucket))

    def _chart(self, bucket: int) -> list[dict[str, Any]]:
        sums: dict[tuple[int, str], dict[str, Any]] = {}
        for row in self.ledger.totals(bucket):
            key = (row["bucket"], row["token"])
            into = sums.setdefault(key, {**row, "count": 0, "units": 0})
            into["count"] += row["count"]
            into["units"] += row["units"]
        out = []
        for row in sums.values():
            money = self.money(row["units"], row["token"], row["symbol"], row["decimals"])
            shown = {k: v for k, v in row.items() if k not in ("wallet", "kind")}
            out.append({**shown, **money, "time": when(row["bucket"])})
        return out

    # ---- contracts, datasets, overview ---------------------------------------------------------
    def contracts(self) -> list[dict[str, Any]]:
        import json

        root = self.cfg.home / "contracts" / "deployed" / str(self.chain.chain_id)
        out = []
        for path in sorted(root.glob("*.json")) if root.is_dir() else []:
            try:
                doc = json.loads(path.read_text())
            except ValueError:
                continue
            out.append({"address": path.stem, **{k: doc.get(k) for k in
                        ("template", "source_id", "tx_hash", "deployer", "block_number")}})  # fmt: skip
        return out

    def datasets(self) -> list[dict[str, Any]]:
        from agentbazaar.data.registry import REGISTRY_KEY, DatasetRegistry

        if not self.suite.has(REGISTRY_KEY):
            return []
        registry = DatasetRegistry.from_suite(self.suite)
        return [registry.dataset(i).to_dict() for i in range(1, min(registry.count(), 500) + 1)]

    def fingerprint(self) -> str:
        """Changes whenever something the pages show changes (the SSE stream polls it)."""
        last = self.ledger.recent(limit=1)
        head = last[0] if last else None
        receipts = sum(len(s.summaries(limit=1)) for s in self.receipt_stores())
        return f"{self.ledger.count()}:{head.status if head else ''}:{receipts}:" + (
            f"{self.chain.block_number()}"
        )

    def overview(self) -> dict[str, Any]:
        follower = self.follower()
        return {
            "chain": {"id": self.chain.chain_id, "backend": self.chain.backend,
                      "block": self.chain.block_number()},
            "counts": {"agents": follower.index.count() if follower else 0, "payments": self.ledger.count(),
                       "receipts": len(self.receipts(limit=1000))},
            "home": str(self.cfg.home),
        }  # fmt: skip


def _scheme(kind: str) -> str:
    return {"x402": "x402 exact", "voucher": "batch-settlement", "deposit": "batch-settlement",
            "refund": "batch-settlement"}.get(kind, kind)  # fmt: skip
