"""Data DAO contributions: rows submitted to a dataset, scored, and paid in revenue shares.

A dataset declares a ``RowSchema`` (typed fields, the text field that is embedded, length
bounds). ``ContributionValidator.score`` checks every row of a contribution, in order:

1. **schema**: a JSON object with exactly the declared fields and types (``str``, ``int``,
   ``float``, ``bool``; ``int`` is not a ``bool``, a ``float`` field takes integers);
2. **quality**: the text is within ``min_chars``..``max_chars`` after trimming, at least half of
   its characters are letters or digits, no single character makes up more than half of it,
   and the embedding model can read it whole (inside its token window);
3. **duplicates**: the same normalised text as a row already in the dataset or earlier in this
   contribution, or an embedding whose cosine similarity to one of them is at least
   ``duplicate_cosine`` (0.95 by default: paraphrases and near copies, measured with the
   dataset's embedding model).

Accepted rows join the dataset's state (later rows and contributions are compared with them)
and earn ``shares_per_row`` shares each; each rejected row is recorded with its reason. The core
is pure (an ``Embedder`` is passed in: anything with ``embed(texts)`` returning L2-normalised
vectors); ``ContributionStore`` keeps every decision in SQLite, and ``award`` turns a report's
shares into the registry's ``awardShares`` on chain.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from agentbazaar.data.errors import ContributionError
from agentbazaar.errors import InputError
from agentbazaar.sqlite import Database

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from agentbazaar.data.registry import DatasetRegistry

FieldType = Literal["str", "int", "float", "bool"]
Matrix = npt.NDArray[np.float32]
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}
MAX_ROWS = 10_000
_BATCH = 128


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> Any: ...


def dataset_embedder() -> Embedder:
    """The MiniLM model contributions are compared with (``agentbazaar.models``, loaded once per
    process)."""
    from agentbazaar.models.embedding import shared_model

    return shared_model()


@dataclass(frozen=True)
class RowSchema:
    fields: dict[str, FieldType]
    text_field: str
    min_chars: int = 10
    max_chars: int = 1_000

    def __post_init__(self) -> None:
        if self.fields.get(self.text_field) != "str":
            raise ContributionError(f"the text field {self.text_field!r} must be a 'str' field")
        if any(t not in _TYPES for t in self.fields.values()):
            raise ContributionError(f"field types must be one of {sorted(_TYPES)}")

    @classmethod
    def from_json(cls, data: Any) -> RowSchema:
        try:
            return cls(
                fields=dict(data["fields"]),
                text_field=str(data["text"]),
                min_chars=int(data.get("min_chars", 10)),
                max_chars=int(data.get("max_chars", 1_000)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ContributionError(f"malformed row schema: {exc}") from exc


@dataclass(frozen=True)
class RowDecision:
    index: int
    accepted: bool
    reason: str
    text_hash: str | None = None


@dataclass(frozen=True)
class ContributionReport:
    contributor: str
    rows: tuple[RowDecision, ...]
    shares: int

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.rows if r.accepted)

    @property
    def rejected(self) -> list[RowDecision]:
        return [r for r in self.rows if not r.accepted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "contributor": self.contributor,
            "accepted": self.accepted,
            "rejected": len(self.rejected),
            "shares": self.shares,
            "rows": [r.__dict__ for r in self.rows],
        }


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def parse_rows(raw: bytes | str) -> list[Any]:
    """JSON Lines (one JSON value per non-empty line); a line that is not JSON stays as text so
    it is rejected with its reason instead of failing the whole contribution."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    rows: list[Any] = []
    for line in text.splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                rows.append(_NotJson(line))
    if not rows:
        raise ContributionError("the contribution has no rows")
    if len(rows) > MAX_ROWS:
        raise ContributionError(f"{len(rows)} rows in one contribution; at most {MAX_ROWS}")
    return rows


@dataclass(frozen=True)
class _NotJson:
    line: str


def schema_problem(row: Any, schema: RowSchema) -> str | None:
    if isinstance(row, _NotJson):
        return "schema: the line is not JSON"
    if not isinstance(row, dict):
        return "schema: a row must be a JSON object"
    missing = [f for f in schema.fields if f not in row]
    if missing:
        return f"schema: missing field {missing[0]!r}"
    extra = sorted(set(row) - set(schema.fields))
    if extra:
        return f"schema: unknown field {extra[0]!r}"
    for name, kind in schema.fields.items():
        value = row[name]
        if not isinstance(value, _TYPES[kind]) or (kind != "bool" and isinstance(value, bool)):
            return f"schema: field {name!r} must be {kind}"
    return None


def quality_problem(text: str, schema: RowSchema) -> str | None:
    stripped = text.strip()
    if len(stripped) < schema.min_chars:
        return f"quality: too short ({len(stripped)} < {schema.min_chars} characters)"
    if len(stripped) > schema.max_chars:
        return f"quality: too long ({len(stripped)} > {schema.max_chars} characters)"
    meaningful = sum(1 for c in stripped if c.isalnum())
    if meaningful * 2 < len(stripped):
        return "quality: mostly symbols (under half letters or digits)"
    top = max(stripped.count(c) for c in set(stripped) if not c.isspace())
    if top * 2 > len(stripped.replace(" ", "")):
        return "quality: one character repeated (over half the text)"
    return None


@dataclass
class ContributionValidator:
    """The state of one dataset's rows: text hashes and embeddings of what is accepted."""

    schema: RowSchema
    embedder: Embedder
    duplicate_cosine: float = 0.95
    shares_per_row: int = 1
    _hashes: set[str] = field(default_factory=set)
    _vectors: Matrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def add_existing(self, texts: Sequence[str]) -> None:
        """Load rows already in the dataset (they are compared with, never scored)."""
        texts = [t for t in texts if text_hash(t) not in self._hashes]
        self._hashes.update(text_hash(t) for t in texts)
        if texts:
            self._append(self._embed(texts))

    def score(self, contributor: str, rows: Sequence[Any]) -> ContributionReport:
        decisions: dict[int, RowDecision] = {}
        candidates: list[tuple[int, str]] = []
        for index, row in enumerate(rows):
            problem = schema_problem(row, self.schema)
            text = "" if problem else str(row[self.schema.text_field])
            problem = problem or quality_problem(text, self.schema)
            if problem:
                decisions[index] = RowDecision(index, False, problem)
            else:
                candidates.append((index, text))
        vectors = self._embed_each([t for _, t in candidates], decisions, candidates)
        for (index, text), vector in zip(candidates, vectors, strict=True):
            if index not in decisions:
                decisions[index] = self._judge(index, text, vector)
        ordered = tuple(decisions[i] for i in range(len(rows)))
        shares = sum(1 for d in ordered if d.accepted) * self.shares_per_row
        return ContributionReport(contributor, ordered, shares)

    def _judge(self, index: int, text: str, vector: Matrix) -> RowDecision:
        digest = text_hash(text)
        if digest in self._hashes:
            return RowDecision(
                index, False, "duplicate: the same text is already in the dataset", digest
            )
        if self._vectors.shape[0]:
            sims = self._vectors @ vector
            best = int(np.argmax(sims))
            if float(sims[best]) >= self.duplicate_cosine:
                return RowDecision(
                    index,
                    False,
                    f"duplicate: cosine {float(sims[best]):.3f} to an existing row "
                    f"(threshold {self.duplicate_cosine})",
                    digest,
                )
        self._hashes.add(digest)
        self._append(vector.reshape(1, -1))
        return RowDecision(index, True, "accepted", digest)

    def _embed(self, texts: list[str]) -> Matrix:
        parts = [self._vectors_of(texts[i : i + _BATCH]) for i in range(0, len(texts), _BATCH)]
        return np.vstack(parts).astype(np.float32)

    def _embed_each(
        self, texts: list[str], decisions: dict[int, RowDecision], candidates: list[tuple[int, str]]
    ) -> list[Matrix]:
        """Vectors per candidate; a text the model cannot read whole is rejected alone."""
        if not texts:
            return []
        try:
            return list(self._embed(texts))
        except InputError:
            out: list[Matrix] = []
            for index, text in candidates:
                try:
                    out.append(self._vectors_of([text])[0])
                except InputError as exc:
                    decisions[index] = RowDecision(index, False, f"quality: {exc}")
                    out.append(np.zeros(1, dtype=np.float32))
            return out

    def _vectors_of(self, texts: list[str]) -> Matrix:
        result = self.embedder.embed(texts)
        vectors = getattr(result, "vectors", result)
        return np.asarray(vectors, dtype=np.float32)

    def _append(self, vectors: Matrix) -> None:
        self._vectors = vectors if self._vectors.size == 0 else np.vstack([self._vectors, vectors])


# ---- records and the chain -------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS contributions (
    id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL, contributor TEXT NOT NULL,
    submitted_at INTEGER NOT NULL, accepted INTEGER NOT NULL, rejected INTEGER NOT NULL,
    shares INTEGER NOT NULL, tx_hash TEXT);
CREATE TABLE IF NOT EXISTS contribution_rows (
    contribution_id INTEGER NOT NULL REFERENCES contributions(id), row_index INTEGER NOT NULL,
    accepted INTEGER NOT NULL, reason TEXT NOT NULL, text_hash TEXT,
    PRIMARY KEY (contribution_id, row_index));
"""


class ContributionStore:
    """Every contribution and every row decision, with its reason (SQLite; ``None`` = memory)."""

    def __init__(self, path: Path | None) -> None:
        self._db = Database(path, [_SCHEMA], synchronous="FULL")

    def record(self, dataset_id: int, report: ContributionReport) -> int:
        with self._db.transaction() as db:
            cur = db.execute(
                "INSERT INTO contributions (dataset_id, contributor, submitted_at, accepted,"
                " rejected, shares) VALUES (?,?,?,?,?,?)",
                (dataset_id, report.contributor, int(time.time()), report.accepted,
                 len(report.rejected), report.shares),
            )  # fmt: skip
            contribution_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO contribution_rows VALUES (?,?,?,?,?)",
                [
                    (contribution_id, r.index, int(r.accepted), r.reason, r.text_hash)
                    for r in report.rows
                ],
            )
        return contribution_id

    def set_award(self, contribution_id: int, tx_hash: str) -> None:
        with self._db.transaction() as db:
            db.execute("UPDATE contributions SET tx_hash=? WHERE id=?", (tx_hash, contribution_id))

    def contributions(self, dataset_id: int) -> list[dict[str, Any]]:
        with self._db.locked() as db:
            cur = db.execute(
                "SELECT id, contributor, submitted_at, accepted, rejected, shares, tx_hash"
                " FROM contributions WHERE dataset_id=? ORDER BY id", (dataset_id,),
            )  # fmt: skip
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def rejections(self, contribution_id: int) -> list[tuple[int, str]]:
        with self._db.locked() as db:
            return [
                (int(i), str(r))
                for i, r in db.execute(
                    "SELECT row_index, reason FROM contribution_rows WHERE contribution_id=?"
                    " AND accepted=0 ORDER BY row_index",
                    (contribution_id,),
                )
            ]

    def close(self) -> None:
        self._db.close()


def award(
    registry: DatasetRegistry,
    publisher: LocalAccount,
    dataset_id: int,
    report: ContributionReport,
    *,
    store: ContributionStore | None = None,
    contribution_id: int | None = None,
) -> str | None:
    """Give the contributor its earned shares through the registry (publisher's key, gas only);
    returns the transaction hash, or None when nothing was accepted."""
    if report.shares == 0:
        return None
    receipt = registry.award_shares(publisher, dataset_id, report.contributor, report.shares)
    tx_hash = str(receipt["transactionHash"].to_0x_hex())
    if store is not None and contribution_id is not None:
        store.set_award(contribution_id, tx_hash)
    return tx_hash
