"""Contribution scoring with the real MiniLM model: schema, quality, duplicates, shares, records,
and the on-chain share award through the registry."""

from __future__ import annotations

import json
import os

import pytest
from eth_account import Account

from agentbazaar.data.cid import cid_of_bytes
from agentbazaar.data.contributions import (
    ContributionStore,
    ContributionValidator,
    RowSchema,
    award,
    dataset_embedder,
    parse_rows,
)
from agentbazaar.errors import DataError
from conftest import DataWorld

pytestmark = pytest.mark.inference

SCHEMA = RowSchema(fields={"text": "str", "label": "int"}, text_field="text", min_chars=10)
EXISTING = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Photosynthesis converts light energy into chemical energy in plants.",
]


@pytest.fixture
def validator() -> ContributionValidator:
    v = ContributionValidator(SCHEMA, dataset_embedder(), shares_per_row=3)
    v.add_existing(EXISTING)
    return v


def test_each_row_is_accepted_or_rejected_with_its_reason(validator: ContributionValidator) -> None:
    raw = "\n".join(
        [
            json.dumps(
                {"text": "Mount Everest is the highest mountain above sea level.", "label": 1}
            ),
            json.dumps({"text": "too short", "label": 1}),
            json.dumps({"text": "Valid text but the label is missing here."}),
            json.dumps({"text": "Valid text with an extra field in this row.", "label": 1, "x": 2}),
            json.dumps({"text": "Valid text whose label has the wrong type.", "label": "one"}),
            json.dumps({"text": "Valid text whose label is a boolean value.", "label": True}),
            "this line is not JSON",
            json.dumps(["a", "list"]),
            json.dumps({"text": "!!!! ???? #### $$$$ %%%% &&&&", "label": 1}),
            json.dumps({"text": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "label": 1}),
            json.dumps(
                {"text": "the eiffel tower is a wrought-iron   lattice tower in paris.", "label": 0}
            ),
            json.dumps(
                {"text": "The Eiffel Tower is a wrought-iron lattice tower in Paris!", "label": 0}
            ),
            json.dumps(
                {"text": "Mount Everest is the highest mountain above sea level.", "label": 2}
            ),
            json.dumps({"text": "Water boils at 100 degrees Celsius at sea level.", "label": 1}),
        ]
    )
    report = validator.score("0x" + "11" * 20, parse_rows(raw))
    reasons = [r.reason for r in report.rows]
    assert reasons[0] == "accepted"
    assert reasons[1].startswith("quality: too short")
    assert reasons[2] == "schema: missing field 'label'"
    assert reasons[3] == "schema: unknown field 'x'"
    assert reasons[4] == "schema: field 'label' must be int"
    assert reasons[5] == "schema: field 'label' must be int"
    assert reasons[6] == "schema: the line is not JSON"
    assert reasons[7] == "schema: a row must be a JSON object"
    assert reasons[8].startswith("quality: mostly symbols")
    assert reasons[9].startswith("quality: one character repeated")
    assert reasons[10] == "duplicate: the same text is already in the dataset"
    assert reasons[11].startswith("duplicate: cosine")  # a near copy, found by the embedding
    assert reasons[12] == "duplicate: the same text is already in the dataset"  # row 0 of this one
    assert reasons[13] == "accepted"
    assert report.accepted == 2 and report.shares == 6


def test_accepted_rows_count_against_later_contributions(validator: ContributionValidator) -> None:
    first = validator.score(
        "a", [{"text": "Honey never spoils when it is sealed well.", "label": 1}]
    )
    second = validator.score(
        "b", [{"text": "Honey never spoils when it is sealed well!", "label": 1}]
    )
    assert first.accepted == 1 and second.accepted == 0 and second.shares == 0


def test_texts_beyond_the_model_window_are_rejected_alone(validator: ContributionValidator) -> None:
    schema = RowSchema(fields={"text": "str"}, text_field="text", max_chars=4_000)
    wide = ContributionValidator(schema, validator.embedder)
    long_text = " ".join(f"word{i}" for i in range(600))
    report = wide.score(
        "c", [{"text": long_text}, {"text": "A perfectly ordinary sentence about trains."}]
    )
    assert report.rows[0].reason.startswith("quality:") and not report.rows[0].accepted
    assert report.rows[1].accepted


def test_store_records_every_decision(validator: ContributionValidator) -> None:
    store = ContributionStore(None)
    report = validator.score(
        "d",
        [
            {"text": "short", "label": 1},
            {"text": "Owls can rotate their heads very far.", "label": 1},
        ],
    )
    contribution_id = store.record(7, report)
    store.set_award(contribution_id, "0xabc")
    [row] = store.contributions(7)
    assert (row["accepted"], row["rejected"], row["shares"], row["tx_hash"]) == (1, 1, 3, "0xabc")
    assert store.rejections(contribution_id) == [(0, "quality: too short (5 < 10 characters)")]


def test_bad_schema_and_empty_contributions_are_refused() -> None:
    with pytest.raises(DataError):
        RowSchema(fields={"text": "int"}, text_field="text")
    with pytest.raises(DataError):
        RowSchema.from_json({"fields": {"text": "str"}})
    with pytest.raises(DataError, match="no rows"):
        parse_rows("\n\n")


def test_accepted_shares_are_awarded_on_chain(
    data_world: DataWorld, validator: ContributionValidator
) -> None:
    w = data_world
    dataset_id = w.registry.publish(
        w.publisher,
        cid=cid_of_bytes(os.urandom(32)),
        agent_id=w.agent_id,
        licence=1,
        token=w.usdc.address,
        price=1_000,
    )
    contributor = Account.create().address
    report = validator.score(
        contributor, [{"text": "Octopuses have three hearts and blue blood.", "label": 1}]
    )
    store = ContributionStore(None)
    contribution_id = store.record(dataset_id, report)
    tx_hash = award(
        w.registry, w.publisher, dataset_id, report, store=store, contribution_id=contribution_id
    )
    assert tx_hash is not None and store.contributions(dataset_id)[0]["tx_hash"] == tx_hash
    splitter = w.registry.splitter(dataset_id)
    assert w.chain.call(splitter.functions.shares(contributor)) == 3
    assert w.chain.call(splitter.functions.totalShares()) == 10_003
    nothing = validator.score(contributor, [{"text": "tiny", "label": 1}])
    assert award(w.registry, w.publisher, dataset_id, nothing) is None
