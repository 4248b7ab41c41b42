"""Weighted reputation as properties: splitting a payer across addresses funded from one source
changes nothing, a ring funded by the agent changes nothing, money counts with diminishing
returns, and the raw score is the plain average the index always showed."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from agentbazaar.identity.weighted import PRIOR_WEIGHT, PaidFeedback, score

OWNER, WALLET = "0x" + "0a" * 20, "0x" + "0b" * 20
values = st.integers(0, 100).map(Decimal)
amounts = st.integers(1, 10**9)
honest = st.lists(st.tuples(amounts, values), min_size=0, max_size=6).map(
    lambda items: [PaidFeedback(f"0x{i + 1:040x}", a, v) for i, (a, v) in enumerate(items)]
)


@given(honest, amounts, values, st.integers(1, 12))
def test_splitting_a_payer_across_one_source_changes_nothing(
    base: list[PaidFeedback], amount: int, value: Decimal, k: int
) -> None:
    source = "0x" + "ee" * 20
    one = [*base, PaidFeedback(source, amount * k, value)]
    ring = [*base, *(PaidFeedback(f"0x{0xF000 + i:040x}", amount, value) for i in range(k))]
    roots = {f.payer: source for f in ring[len(base) :]}
    assert score(ring, roots, [OWNER, WALLET]).weighted_score == score(one, {}, [OWNER, WALLET]).weighted_score  # fmt: skip
    assert score(ring, roots, [OWNER]).clusters == len(base) + 1


@given(honest, amounts, st.integers(1, 20))
def test_a_ring_funded_by_the_agent_does_not_raise_the_weighted_score(
    base: list[PaidFeedback], amount: int, k: int
) -> None:
    ring = [PaidFeedback(f"0x{0xF000 + i:040x}", amount, Decimal(100)) for i in range(k)]
    roots = {f.payer: OWNER for f in ring}  # each ring payer traced back to the agent's owner
    before = score(base, {}, [OWNER, WALLET])
    after = score([*base, *ring], roots, [OWNER, WALLET])
    assert after.weighted_score == before.weighted_score
    assert after.weighted_avg == before.weighted_avg and after.clusters == before.clusters
    assert after.raw_score >= before.raw_score  # the raw score is fooled
    if base and min(f.value for f in base) < 100:
        assert after.raw_score > before.raw_score


def test_raw_score_is_the_plain_average_with_the_prior() -> None:
    fb = [PaidFeedback("0x" + "01" * 20, 1, Decimal(90)), PaidFeedback("0x" + "02" * 20, 5, Decimal(60))]  # fmt: skip
    s = score(fb, {}, [])
    assert s.raw_avg == 75 and s.raw_score == Decimal(75) * 2 / (2 + PRIOR_WEIGHT)
    assert s.payers == s.clusters == 2 and s.volume == 6
    # weighted: sqrt(1) * 90 + sqrt(5) * 60 over sqrt(1) + sqrt(5)
    w = (Decimal(90) + Decimal(5).sqrt() * 60) / (1 + Decimal(5).sqrt())
    assert s.weighted_avg == w


def test_a_hundred_times_the_money_counts_ten_times_not_a_hundred() -> None:
    small = [PaidFeedback(f"0x{i + 1:040x}", 100, Decimal(100)) for i in range(10)]
    whale = PaidFeedback("0x" + "99" * 20, 10_000, Decimal(0))
    s = score([*small, whale], {}, [])
    # ten payers of 100 (weight 10 each) against one of 10,000 (weight 100): an even split
    assert s.weighted_avg == 50


def test_no_feedback_scores_zero() -> None:
    s = score([], {}, [OWNER])
    assert (s.raw_avg, s.weighted_avg, s.raw_score, s.weighted_score) == (None, None, 0, 0)
