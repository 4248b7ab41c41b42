"""Discovery queries: the filter, the result record, the indexed SQL and the full-scan reference."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agentbazaar.identity.errors import DiscoveryError

AMOUNT_WIDTH = 78  # uint256 fits in 78 decimal digits: zero-padded text sorts like the number


# ---- queries and results -----------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    skill: str | None = None  # a skill id or tag (case-insensitive)
    asset: str | None = None  # token address the max price is in
    max_price: int | None = None  # base units of ``asset``
    min_rep: Decimal | None = None  # minimum proven average feedback value
    active: bool | None = True
    trusted_only: bool = True
    limit: int = 20


@dataclass(frozen=True)
class AgentRecord:
    agent_id: int
    owner: str
    uri: str
    wallet: str | None
    name: str
    description: str
    trusted: bool
    reason: str
    active: bool
    rep_count: int
    rep_avg: float | None
    score: float
    skills: list[dict[str, Any]] = field(default_factory=list)
    # reputation money can't fake (identity.weighted): feedback weighed by proven payment
    # volume, payers funded from one source counted once, self-funded payers not at all
    weighted_score: float = 0.0
    weighted_avg: float | None = None
    payers: int = 0
    clusters: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def query_sql(q: Query) -> tuple[str, list[Any]]:
    if q.limit < 1 or q.limit > 1000:
        raise DiscoveryError("limit must be between 1 and 1000")
    if (q.max_price is None) != (q.asset is None):
        raise DiscoveryError("a max price needs its asset (token address), and the other way round")
    if q.max_price is not None and q.max_price < 0:
        raise DiscoveryError("max price must not be negative")
    where: list[str] = []
    params: list[Any] = []
    if q.trusted_only:
        where.append("a.trusted = 1")
    if q.active is not None:
        where.append("a.active = ?")
        params.append(int(q.active))
    if q.min_rep is not None:
        where.append("a.rep_avg >= ?")
        params.append(float(q.min_rep))
    price = "o.asset = ? AND o.amount <= ?"
    price_args: list[Any] = []
    if q.asset is not None and q.max_price is not None:
        price_args = [q.asset.lower(), str(q.max_price).zfill(AMOUNT_WIDTH)]
    if q.skill:  # correlated EXISTS: walk agents by score, stop at ``limit`` matches
        sub = "SELECT 1 FROM terms t WHERE t.term = ? AND t.agent_id = a.agent_id"
        if price_args:
            sub += (
                " AND EXISTS (SELECT 1 FROM offers o WHERE o.agent_id = t.agent_id"
                f" AND o.skill_id = t.skill_id AND {price})"
            )
        where.append(f"EXISTS ({sub})")
        params += [q.skill.strip().lower(), *price_args]
    elif price_args:
        where.append(f"EXISTS (SELECT 1 FROM offers o WHERE o.agent_id = a.agent_id AND {price})")
        params += price_args
    sql = "SELECT a.* FROM agents a"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY a.score DESC, a.agent_id LIMIT ?"
    return sql, [*params, q.limit]


def record_from_row(row: sqlite3.Row) -> AgentRecord:
    return AgentRecord(
        agent_id=int(row["agent_id"]),
        owner=str(row["owner"]),
        uri=str(row["uri"]),
        wallet=row["wallet"],
        name=str(row["name"]),
        description=str(row["description"]),
        trusted=bool(row["trusted"]),
        reason=str(row["reason"]),
        active=bool(row["active"]),
        rep_count=int(row["rep_count"]),
        rep_avg=row["rep_avg"],
        score=float(row["score"]),
        skills=json.loads(row["skills"]),
        weighted_score=float(row["wscore"]),
        weighted_avg=row["wavg"],
        payers=int(row["payers"]),
        clusters=int(row["clusters"]),
    )


def scan_query(db: sqlite3.Connection, q: Query) -> list[int]:
    """Reference: the same query as a plain full scan of the agents table, filtered in Python."""
    query_sql(q)  # same validation
    hits: list[tuple[float, int]] = []
    skill = q.skill.strip().lower() if q.skill else None
    cap = (q.asset.lower(), q.max_price) if q.asset and q.max_price is not None else None
    for row in db.execute("SELECT * FROM agents NOT INDEXED"):
        if q.trusted_only and not row["trusted"]:
            continue
        if q.active is not None and bool(row["active"]) != q.active:
            continue
        if q.min_rep is not None and (row["rep_avg"] is None or row["rep_avg"] < float(q.min_rep)):
            continue
        if (skill or cap) and not _skills_match(json.loads(row["skills"]), skill, cap):
            continue
        hits.append((-float(row["score"]), int(row["agent_id"])))
    return [agent_id for _, agent_id in sorted(hits)[: q.limit]]


def _skills_match(
    skills: Iterable[Mapping[str, Any]], skill: str | None, cap: tuple[str, int] | None
) -> bool:
    for s in skills:
        if skill and skill not in {str(s["id"]).lower(), *(str(t).lower() for t in s["tags"])}:
            continue
        if cap is None or any(
            str(p["asset"]).lower() == cap[0] and int(p["amount"]) <= cap[1] for p in s["prices"]
        ):
            return True
    return False
