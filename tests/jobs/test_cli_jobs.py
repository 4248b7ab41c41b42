"""`bazaar job` and `bazaar stake` through the real console script against a real anvil: a
job's whole life, a dispute won by the honest side, and the issue's bad inputs each refused in
one line on stderr (exit 1) with nothing signed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.config import load_config
from agentbazaar.jobs import JobMarket, Staking, model, parse_deliverable
from agentbazaar.suite import Suite
from agentbazaar.wallet import Ledger, Wallet, open_wallet

pytestmark = pytest.mark.anvil
BAZAAR = str(Path(sys.executable).with_name("bazaar"))
JOBS_TOML = """
[jobs]
dispute_window = 3600
draw_period = 3600
commit_period = 600
reveal_period = 600
"""


@dataclass
class Cli:
    home: Path
    env: dict[str, str]
    chain: Chain

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BAZAAR, *args], env=self.env, capture_output=True, text=True, timeout=180
        )

    def ok(self, *args: str) -> Any:
        proc = self.run(*args, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def refused(self, *args: str) -> str:
        """The one line a refused command prints (exit 1, no traceback)."""
        proc = self.run(*args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        return lines[0]

    def signed(self, wallet: str) -> int:
        return len(Ledger(self.home / "ledger.sqlite").records(wallet=wallet))

    # set-up steps through the library (each command is tested through the script elsewhere)
    def wallet(self, name: str) -> Wallet:
        return open_wallet(load_config(self.home, env={}), name, passphrase="cli-pass")

    @property
    def market(self) -> JobMarket:
        return JobMarket.from_suite(Suite(self.chain, load_config(self.home, env={})))

    def funded_job(self, *, expires: int = 7_200, submit: bool = True) -> int:
        market, alice, bob = self.market, self.wallet("alice"), self.wallet("bob")
        job_id, _ = market.create(alice, provider=bob.address, evaluator=self.wallet("carol").address, budget=5_000_000, expires_in=expires)  # fmt: skip
        market.fund(alice, job_id)
        if submit:
            market.submit(bob, job_id, parse_deliverable("work"))
        return job_id

    def job(self, *, expires: str = "2h") -> int:
        created = self.ok(
            "job", "create", "-w", "alice", "--provider", "bob", "--evaluator", "carol",
            "--budget", "5 USDC", "--expires", expires, "--description", "summarise the report",
        )  # fmt: skip
        return int(created["id"])


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = tmp_path_factory.mktemp("jobs-cli") / "home"
    home.mkdir()
    port = free_port()
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {port}\n{JOBS_TOML}')  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE="cli-pass", BAZAAR_SCRYPT_N="1024", COLUMNS="200")  # fmt: skip
    node = AnvilNode(load_config(home, env={}))
    try:
        proc = subprocess.run(
            [BAZAAR, "init", "--wallets", "alice,bob,carol,v1,v2,v3", "--json"],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        yield Cli(home, env, Chain.rpc(node.running_url(), backend="local"))
    finally:
        node.stop()


def test_a_job_s_whole_life_from_the_shell(cli: Cli) -> None:
    job_id = cli.job()
    assert cli.ok("job", "show", str(job_id))["state"] == "open"
    funded = cli.ok("job", "fund", str(job_id), "-w", "alice")
    assert funded["amount"] == "6000000"  # 5 USDC budget + the 1 USDC dispute bond
    cli.ok("job", "submit", str(job_id), "-w", "bob", "--deliverable", "the summary")
    done = cli.ok("job", "complete", str(job_id), "-w", "carol")
    assert done["ticket"] is not None
    shown = cli.ok("job", "show", str(job_id))
    assert (shown["state"], shown["held"], shown["description"]) == ("completed", "0", "summarise the report")  # fmt: skip
    listed = cli.ok("job", "list", "--involving", "bob")
    assert job_id in [j["id"] for j in listed]
    text = cli.run("job", "show", str(job_id)).stdout
    assert f"job {job_id}: completed - 5 USDC" in text


def test_bad_inputs_are_one_line_refusals_with_nothing_signed(cli: Cli) -> None:
    job_id = cli.funded_job(expires=3_600)
    signed = cli.signed("alice")
    assert cli.refused("job", "fund", str(job_id), "-w", "alice") == f"error: cannot fund job {job_id}: already funded"  # fmt: skip
    assert cli.signed("alice") == signed  # funding twice signed nothing
    assert "only the evaluator completes or rejects this job" in cli.refused("job", "complete", str(job_id), "-w", "bob")  # fmt: skip
    late = cli.funded_job(expires=600, submit=False)
    cli.chain.advance_time(601)
    assert cli.refused("job", "submit", str(late), "-w", "bob", "--deliverable", "x") == f"error: cannot submit job {late}: expired: submissions are closed"  # fmt: skip
    cli.chain.advance_time(3_000 + 3_600)  # past the first job's expiry and its dispute window
    assert cli.refused("job", "dispute", str(job_id), "-w", "bob") == f"error: cannot dispute job {job_id}: dispute window closed"  # fmt: skip
    assert "not a duration" in cli.refused("job", "create", "-w", "alice", "--provider", "bob", "--evaluator", "carol", "--budget", "5 USDC", "--expires", "soon")  # fmt: skip
    assert "no wallet named 'nobody'" in cli.refused("job", "fund", str(job_id), "-w", "nobody")


def test_a_dispute_won_by_the_honest_side_from_the_shell(cli: Cli) -> None:
    bonded = cli.ok("stake", "bond", "50 USDC", "-w", "v1", "--role", "validator")
    assert bonded["validator"] is True
    staking = Staking(cli.chain, cli.market.terms.stake_registry)
    for v in ("v2", "v3"):
        staking.bond(cli.wallet(v), 50_000_000, model.ROLE_VALIDATOR)
    job_id = cli.funded_job()
    cli.ok("job", "reject", str(job_id), "-w", "carol")  # a wrong rejection of good work
    cli.ok("job", "dispute", str(job_id), "-w", "bob")
    cli.chain.mine(3)  # past the seed block
    committee = cli.ok("job", "draw", str(job_id), "-w", "alice")["committee"]
    assert len(committee) == 3
    cli.ok("job", "vote", str(job_id), "provider", "-w", "v1")  # it re-checked: the work is good
    assert "already voted" in cli.refused("job", "vote", str(job_id), "client", "-w", "v1")
    assert "in an open dispute" in cli.refused("stake", "unbond", "1 USDC", "-w", "v1")
    for v in ("v2", "v3"):
        cli.market.commit_vote(cli.wallet(v), job_id, "provider")
    assert cli.ok("job", "reveal", str(job_id), "-w", "v1")["vote"] == "provider"
    for v in ("v2", "v3"):
        cli.market.reveal_vote(cli.wallet(v), job_id)
    assert cli.ok("job", "resolve", str(job_id), "-w", "alice")["state"] == "completed"
    shown = cli.ok("stake", "show", "v1")
    assert (shown["bonded"], shown["locks"]) == ("50000000", 0)  # voted with the outcome
    listed = cli.ok("stake", "list")
    assert len(listed["validators"]) == 3 and listed["terms"]["min_validator"] == "50000000"
