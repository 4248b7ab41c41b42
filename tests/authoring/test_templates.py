"""Each template's properties under hypothesis against its compiled bytecode, deployed with
filled parameters on a fork of an embedded chain, and its scenario; a mutated template fails
its properties (so they can fail); the static rules fire on code that breaks them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from authoring_helpers import World, make_world

from agentbazaar.authoring import TEMPLATES, Run, Sandbox, property_checks, static_check
from agentbazaar.authoring.sandbox import actor
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.chain.sources import SourceBundle, build, gather

DAY = 86_400


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("templates"))


def _params(world: World, name: str) -> dict[str, Any]:
    now, usdc, me = world.chain.timestamp(), world.usdc.address, world.wallet.address
    a = world.address
    return {
        "vesting": {"token": usdc, "amount": 1_000 * 10**6, "beneficiary": a("bob"),
                    "duration": 360 * DAY, "cliff": 90 * DAY, "start": now},
        "escrow": {"token": usdc, "amount": 50 * 10**6, "payee": a("carol"),
                   "arbiter": a("dave"), "deadline": now + 7 * DAY, "payer": me},
        "stream": {"token": usdc, "amount": 300 * 10**6, "recipient": a("bob"),
                   "duration": 30 * DAY, "start": now, "sender": me},
        "vault": {"token": usdc, "cap": 20 * 10**6, "session_key": a("bob"),
                  "payees": [a("carol"), a("dave")], "period": DAY, "owner": me,
                  "session_until": now + 30 * DAY, "fund": None, "epoch": now},
        "token": {"name": "Gold", "symbol": "GLD", "decimals": 18, "cap": 10**24,
                  "initial_supply": 10**21, "holder": a("carol")},
        "splitter": {"payees": [a("bob"), a("carol")], "shares": [70, 30], "token": usdc,
                     "upstream": a("dave"), "royalty_bps": 1000, "owner": None},
        "timelock": {"min_delay": 2 * DAY, "proposers": [a("carol")], "executors": [a("dave")],
                     "admin": None},
    }[name]  # fmt: skip


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_properties_and_scenario(world: World, name: str) -> None:
    template = TEMPLATES[name]
    params = _params(world, name)
    built = build(gather(template.contract))
    results = property_checks(
        template, built, params, deployer=world.wallet.address, chain=world.chain, examples=4
    )
    assert [r.name for r in results] == [f"property:{p.name}" for p in template.properties]
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    box = Sandbox(world.chain)
    handle = box.deploy(built, template.constructor(params), sender=world.wallet.address)
    steps = template.scenario(Run(box, handle, params, world.wallet.address))
    assert steps and all(s.ok for s in steps), [s.to_dict() for s in steps if not s.ok]
    assert static_check(gather(template.contract), built).ok


def _mutated(contract: str, old: str, new: str) -> SourceBundle:
    bundle = gather(contract)
    sources = dict(bundle.sources)
    assert old in sources[bundle.target]
    sources[bundle.target] = sources[bundle.target].replace(old, new)
    return SourceBundle(bundle.target, sources, bundle.settings, bundle.extra_abi)


@pytest.mark.parametrize(
    ("name", "old", "new", "fails"),
    [
        ("vesting", "if at < start + cliff:", "if at < start:", "nothing_before_cliff"),
        pytest.param("escrow", 'assert block.timestamp < deadline, "escrow: the deadline has passed"', "",
         "release_rule", marks=pytest.mark.slow),
        ("vault", "assert total <= self.cap[token]", "assert total <= 2 * self.cap[token]",
         "caps_never_exceeded"),
        pytest.param("token", "assert erc20.totalSupply + amount <= cap", "assert amount <= cap",
                     "supply_capped", marks=pytest.mark.slow),
    ],
)  # fmt: skip
def test_a_broken_template_fails_its_property(
    world: World, name: str, old: str, new: str, fails: str
) -> None:
    template = TEMPLATES[name]
    built = build(_mutated(template.contract, old, new))
    results = {r.name: r for r in property_checks(
        template, built, _params(world, name), deployer=world.wallet.address, chain=world.chain,
        examples=15,
    )}  # fmt: skip
    assert not results[f"property:{fails}"].ok
    assert "FAILED" in results[f"property:{fails}"].detail


def test_static_rules_fire(tmp_path: Path) -> None:
    source = """# pragma version ~=0.4.3
@external
def run(target: address, data: Bytes[100], n: uint256):
    raw_call(target, data)
    raw_call(target, data, is_delegate_call=True)
    for i: uint256 in range(n, bound=100000):
        pass
    selfdestruct(msg.sender)
"""
    bundle = SourceBundle("templates/Bad.vy", {"templates/Bad.vy": source})
    built = build(bundle, cache_dir=tmp_path)
    result = static_check(bundle, built)
    assert not result.ok
    rules = sorted((f["rule"], f["message"]) for f in result.data["findings"])
    assert rules == [
        ("forbidden-builtin", "uses delegatecall"),
        ("forbidden-builtin", "uses raw_call"),
        ("forbidden-builtin", "uses selfdestruct"),
        ("unbounded-loop", "loops up to 100000 times over caller input"),
    ]
    assert any("selfdestruct" in w for w in result.data["compiler_warnings"])


def test_the_sandbox_never_writes_the_chain(world: World) -> None:
    box = Sandbox(world.chain)
    who = actor("rich")
    box.deal(world.usdc.address, who, 123)
    assert box.balance(world.usdc.address, who) == 123
    box.warp(365 * DAY)
    assert box.now >= world.chain.timestamp() + 365 * DAY
    contract = world.chain.contract(world.usdc.address, [e for e in _erc20()])
    assert world.chain.call(contract.functions.balanceOf(who)) == 0
    # the embedded chain still executes transactions after a fork was made in this process
    world.chain.send(dev_account(0), {"to": who, "value": 7})
    assert world.chain.native_balance(who) == 7 and box.env.get_balance(who) == 0


def _erc20() -> list[dict[str, Any]]:
    from agentbazaar.authoring.sandbox import ERC20_ABI

    return ERC20_ABI
