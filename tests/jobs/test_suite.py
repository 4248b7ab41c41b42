"""The job contracts in the contract suite: deployed with what they need by
``deploy_suite(only={"JobEscrow"})``, linked (the escrow is the stake registry's court and a
ticket minter of the gate), reused when nothing changed, deployed again together when a registry
they are bound to moved, and ``[jobs]`` terms checked before a job contract is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import ContractSpec, Manifest
from agentbazaar.config import BazaarConfig
from agentbazaar.deployment import SUITE, deploy_suite, select
from agentbazaar.errors import ConfigError
from agentbazaar.identity.contracts import REPUTATION_KEY
from agentbazaar.jobs import deployment as jobs_deployment

JOB_KEYS = ("StakeRegistry", "FeedbackGate", "JobEscrow")


def _linked(chain: Chain, contracts: dict[str, object]) -> bool:
    stake, gate, escrow = (contracts[k] for k in JOB_KEYS)
    return bool(
        chain.call(stake.functions.court()) == escrow.address  # type: ignore[attr-defined]
        and chain.call(gate.functions.isMinter(escrow.address))  # type: ignore[attr-defined]
    )


def test_the_job_entries_are_listed_in_the_suite_after_what_they_need() -> None:
    keys = [e.key for e in SUITE if isinstance(e, ContractSpec)]
    for spec in jobs_deployment.SPECS:
        assert spec in SUITE
        assert all(keys.index(need) < keys.index(spec.key) for need in spec.needs), spec.key
    chosen = select({"JobEscrow"})
    assert jobs_deployment.LINK_JOBS in chosen
    assert {"USDC", REPUTATION_KEY, "ValidationRegistry", *JOB_KEYS} <= {
        e.key for e in chosen if isinstance(e, ContractSpec)
    }


def test_deployed_linked_reused_and_redeployed_together(tmp_path: Path) -> None:
    chain = Chain.embedded()
    cfg = BazaarConfig(home=tmp_path / "home", extra={"jobs": {"committee_size": 5}})
    manifest = Manifest(chain_id=chain.chain_id)
    first = deploy_suite(chain, cfg, only={"JobEscrow"}, manifest=manifest)
    assert _linked(chain, first.contracts)
    escrow = first.contracts["JobEscrow"]
    assert chain.call(escrow.functions.committeeSize()) == 5
    again = deploy_suite(chain, cfg, only={"JobEscrow"}, manifest=manifest)
    assert [again.statuses[k] for k in JOB_KEYS] == ["reused"] * 3
    # a new reputation registry: the gate is bound to the old one, so all three move together
    manifest.contracts.pop(REPUTATION_KEY)
    moved = deploy_suite(chain, cfg, only={"JobEscrow"}, manifest=manifest)
    assert [moved.statuses[k] for k in JOB_KEYS] == ["changed"] * 3
    assert moved.contracts["JobEscrow"].address != escrow.address
    assert _linked(chain, moved.contracts)
    gate = moved.contracts["FeedbackGate"]
    reputation = moved.contracts[REPUTATION_KEY].address
    assert chain.call(gate.functions.reputationRegistry()) == reputation


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"dispute_fees": 1}, "unknown [jobs] settings"),
        ({"dispute_fee": "one"}, "integers"),
    ],
)
def test_bad_jobs_terms_are_refused_before_a_job_contract_is_deployed(
    tmp_path: Path, terms: dict[str, object], message: str
) -> None:
    chain = Chain.embedded()
    cfg = BazaarConfig(home=tmp_path / "home", extra={"jobs": terms})
    manifest = Manifest(chain_id=chain.chain_id)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        deploy_suite(chain, cfg, only={"StakeRegistry"}, manifest=manifest)
    assert "StakeRegistry" not in manifest.contracts
