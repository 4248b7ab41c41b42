"""`bazaar job` and `bazaar stake` through the real console script against a real anvil: a
job's whole life, a dispute won by the honest side, and the issue's bad inputs each refused in
one line on stderr (exit 1) with nothing signed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.jobs import JobMarket, Staking, model, parse_deliverable
from agentbazaar.suite import Suite
from agentbazaar.testing.cli import CliHome, make_home
from agentbazaar.wallet import Ledger, Wallet, open_wallet

pytestmark = pytest.mark.anvil
PASS = "cli-pass"
JOBS_TOML = """
[jobs]
dispute_window = 3600
draw_period = 3600
commit_period = 600
reveal_period = 600
"""


@dataclass
class Cli(CliHome):
    """The kit's CLI home, with its chain and the refusals and set-up steps of these tests."""

    chain: Chain

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
        return open_wallet(load_config(self.home, env={}), name, passphrase=PASS)

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
        created = self.json(
            "job", "create", "-w", "alice", "--provider", "bob", "--evaluator", "carol",
            "--budget", "5 USDC", "--expires", expires, "--description", "summarise the report",
        )  # fmt: skip
        return int(created["id"])


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = make_home(tmp_path_factory.mktemp("jobs-cli") / "home", passphrase=PASS, toml=JOBS_TOML)
    try:
        home.ok("init", "--wallets", "alice,bob,carol,v1,v2,v3", "--json")
        chain = Chain.rpc(home.anvil.running_url(), backend="local")
        yield Cli(home.home, home.env, chain)
    finally:
        home.anvil.stop()


def test_a_job_s_whole_life_from_the_shell(cli: Cli) -> None:
    job_id = cli.job()
    assert cli.json("job", "show", str(job_id))["state"] == "open"
    funded = cli.json("job", "fund", str(job_id), "-w", "alice")
    assert funded["amount"] == "6000000"  # 5 USDC budget + the 1 USDC dispute bond
    cli.json("job", "submit", str(job_id), "-w", "bob", "--deliverable", "the summary")
    done = cli.json("job", "complete", str(job_id), "-w", "carol")
    assert done["ticket"] is not None
    shown = cli.json("job", "show", str(job_id))
    assert (shown["state"], shown["held"], shown["description"]) == ("completed", "0", "summarise the report")  # fmt: skip
    listed = cli.json("job", "list", "--involving", "bob")
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
    bonded = cli.json("stake", "bond", "50 USDC", "-w", "v1", "--role", "validator")
    assert bonded["validator"] is True
    staking = Staking(cli.chain, cli.market.terms.stake_registry)
    for v in ("v2", "v3"):
        staking.bond(cli.wallet(v), 50_000_000, model.ROLE_VALIDATOR)
    job_id = cli.funded_job()
    cli.json("job", "reject", str(job_id), "-w", "carol")  # a wrong rejection of good work
    cli.json("job", "dispute", str(job_id), "-w", "bob")
    cli.chain.mine(3)  # past the seed block
    committee = cli.json("job", "draw", str(job_id), "-w", "alice")["committee"]
    assert len(committee) == 3
    cli.json("job", "vote", str(job_id), "provider", "-w", "v1")  # it re-checked: the work is good
    assert "already voted" in cli.refused("job", "vote", str(job_id), "client", "-w", "v1")
    assert "in an open dispute" in cli.refused("stake", "unbond", "1 USDC", "-w", "v1")
    for v in ("v2", "v3"):
        cli.market.commit_vote(cli.wallet(v), job_id, "provider")
    assert cli.json("job", "reveal", str(job_id), "-w", "v1")["vote"] == "provider"
    for v in ("v2", "v3"):
        cli.market.reveal_vote(cli.wallet(v), job_id)
    assert cli.json("job", "resolve", str(job_id), "-w", "alice")["state"] == "completed"
    shown = cli.json("stake", "show", "v1")
    assert (shown["bonded"], shown["locks"]) == ("50000000", 0)  # voted with the outcome
    listed = cli.json("stake", "list")
    assert len(listed["validators"]) == 3 and listed["terms"]["min_validator"] == "50000000"
