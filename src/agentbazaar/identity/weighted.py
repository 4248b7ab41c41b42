"""Reputation money can't fake: feedback weighed by proven payment volume and distinct payers,
with payers funded from one source counted as one, and payers funded by the agent itself not
counted at all. Pure: the funding roots come from ``identity.funding`` (or any other source).

For one agent, each proven piece of feedback carries who paid (``payer``), how much
(``amount``, base units of the payment) and its ``value``. Payers are grouped into clusters by
their funding root (the address their money came from, followed back a few hops); then

- a cluster whose root is the agent's owner or wallet (or a payer that is) counts nothing: the
  agent paid itself through intermediaries;
- each other cluster c has volume V_c (sum of its payments) and value r_c (its feedback values
  averaged, weighed by payment), and weight w_c = sqrt(V_c): more money counts more, with
  diminishing returns, so one rich payer cannot outweigh many;
- weighted average = sum(w_c * r_c) / sum(w_c); weighted score = weighted average * n / (n +
  PRIOR_WEIGHT) with n the number of clusters counted (distinct payers in the sense that matters).

Properties (tested): splitting one payer's payments across any number of addresses funded from
the same source changes nothing; adding a ring of reviewers funded by the agent changes nothing;
the raw score is the plain average * count / (count + PRIOR_WEIGHT), as discovery always showed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

PRIOR_WEIGHT = 3


@dataclass(frozen=True)
class PaidFeedback:
    payer: str
    amount: int
    value: Decimal


@dataclass(frozen=True)
class WeightedScore:
    raw_avg: Decimal | None
    raw_score: Decimal
    weighted_avg: Decimal | None
    weighted_score: Decimal
    payers: int  # distinct paying addresses
    clusters: int  # funding clusters counted (not self-funded)
    volume: int  # payment volume counted

    def to_dict(self) -> dict[str, object]:
        def num(d: Decimal | None) -> float | None:
            return None if d is None else float(d)

        return {
            "raw_avg": num(self.raw_avg),
            "raw_score": float(self.raw_score),
            "weighted_avg": num(self.weighted_avg),
            "weighted_score": float(self.weighted_score),
            "payers": self.payers,
            "clusters": self.clusters,
            "volume": str(self.volume),
        }


def confidence(avg: Decimal | None, n: int, prior: int = PRIOR_WEIGHT) -> Decimal:
    """``avg * n / (n + prior)``: few reviews count less (0 without any)."""
    return avg * n / (n + prior) if avg is not None and n else Decimal(0)


def score(
    feedback: Sequence[PaidFeedback],
    roots: Mapping[str, str],
    own_addresses: Collection[str],
    *,
    prior: int = PRIOR_WEIGHT,
) -> WeightedScore:
    """Raw and weighted scores of one agent's proven feedback.

    ``roots``: payer -> funding root (a payer missing from it is its own root);
    ``own_addresses``: the agent's owner and wallet."""
    raw_avg = sum((f.value for f in feedback), Decimal(0)) / len(feedback) if feedback else None
    own = {a.lower() for a in own_addresses}
    clusters: dict[str, list[PaidFeedback]] = {}
    for f in feedback:
        root = roots.get(f.payer, f.payer).lower()
        if root in own or f.payer.lower() in own or f.amount <= 0:
            continue
        clusters.setdefault(root, []).append(f)
    total_weight, weighted_sum, volume = Decimal(0), Decimal(0), 0
    for items in clusters.values():
        v_c = sum(f.amount for f in items)
        r_c = sum((f.value * f.amount for f in items), Decimal(0)) / v_c
        w_c = Decimal(v_c).sqrt()
        total_weight += w_c
        weighted_sum += w_c * r_c
        volume += v_c
    weighted_avg = weighted_sum / total_weight if total_weight else None
    return WeightedScore(
        raw_avg=raw_avg,
        raw_score=confidence(raw_avg, len(feedback), prior),
        weighted_avg=weighted_avg,
        weighted_score=confidence(weighted_avg, len(clusters), prior),
        payers=len({f.payer.lower() for f in feedback}),
        clusters=len(clusters),
        volume=volume,
    )
