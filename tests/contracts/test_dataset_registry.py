"""DatasetRegistry.vy: publishing, licences, lineage, royalties through splitters, versions;
every revert path."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from token_helpers import deploy_stablecoin

from agentbazaar.data.cid import cid_of_bytes
from agentbazaar.testing import boa_deployer as deployer_of

REGISTRY = "DatasetRegistry"
SPLITTER = "RevenueSplitter"
IDENTITY = "IdentityRegistry"
ZERO = "0x0000000000000000000000000000000000000000"
TERMS = b"\x11" * 32
OPEN, NON_COMMERCIAL, NO_DERIVATIVES = 1, 2, 3


def addr(name: str) -> str:
    return str(boa.env.generate_address(name))


def new_cid() -> bytes:
    return cid_of_bytes(os.urandom(16)).binary


@dataclass
class World:
    registry: Any
    identity: Any
    usdc: Any
    minter: str
    owner: str
    publisher: str
    agent_id: int

    def publish(
        self,
        *,
        cid: bytes | None = None,
        licence: int = OPEN,
        royalty: int = 0,
        parents: list[int] | None = None,
        contributors: list[str] | None = None,
        shares: list[int] | None = None,
        token: str | None = None,
        sender: str | None = None,
        agent_id: int | None = None,
    ) -> int:
        contributors = contributors if contributors is not None else [self.publisher]
        with boa.env.prank(sender or self.publisher):
            return int(
                self.registry.publish(
                    cid or new_cid(),
                    self.agent_id if agent_id is None else agent_id,
                    licence,
                    royalty,
                    token or self.usdc.address,
                    1_000_000,
                    1_000,
                    parents or [],
                    contributors,
                    shares if shares is not None else [10_000] * len(contributors),
                )
            )

    def splitter(self, dataset_id: int) -> Any:
        with warnings.catch_warnings():  # a clone's code is the EIP-1167 proxy
            warnings.simplefilter("ignore")
            return deployer_of(SPLITTER).at(self.registry.getDataset(dataset_id)[8])

    def pay(self, dataset_id: int, amount: int) -> None:
        with boa.env.prank(self.minter):
            self.usdc.mint(self.registry.getDataset(dataset_id)[8], amount)


@pytest.fixture
def world(minter: str) -> World:
    owner, publisher = addr("registry-owner"), addr("publisher")
    identity = deployer_of(IDENTITY).deploy("agentbazaar Agent", "AGENT")
    implementation = deployer_of(SPLITTER).deploy(ZERO, [], [], [], [], ZERO)
    with boa.env.prank(owner):
        registry = deployer_of(REGISTRY).deploy(identity.address, implementation.address)
        registry.addLicence("open", True, True, True, TERMS)
        registry.addLicence("non-commercial", False, True, True, TERMS)
        registry.addLicence("no-derivatives", True, False, True, TERMS)
    with boa.env.prank(publisher):
        agent_id = int(identity.register())
    usdc = deploy_stablecoin(minter)
    return World(registry, identity, usdc, minter, owner, publisher, agent_id)


# ---- behaviour -------------------------------------------------------------------------------
def test_publish_records_the_entry_and_a_splitter(world: World) -> None:
    cid = new_cid()
    a, b = addr("a"), addr("b")
    dataset_id = world.publish(cid=cid, contributors=[a, b], shares=[7_500, 2_500], royalty=500)
    entry = world.registry.getDataset(dataset_id)
    assert entry[0] == cid and entry[1] == world.agent_id and entry[2] == world.publisher
    assert (entry[3], entry[4], entry[5], entry[6], entry[7]) == (
        OPEN,
        500,
        world.usdc.address,
        1_000_000,
        1_000,
    )
    assert (entry[9], entry[10]) == (1, dataset_id)
    assert world.registry.idOf(cid) == dataset_id
    assert world.registry.idOf(new_cid()) == 0
    splitter = world.splitter(dataset_id)
    assert splitter.owner() == world.registry.address
    assert [splitter.shares(a), splitter.shares(b)] == [7_500, 2_500]
    world.pay(dataset_id, 1_000)
    assert splitter.release(a) == 750


def test_derived_datasets_pay_their_parents_on_every_sale(world: World) -> None:
    grand, parent_payee, child_payee = addr("grand"), addr("parent"), addr("child")
    root = world.publish(contributors=[grand], royalty=1_000)  # 10% of derived sales
    mid = world.publish(contributors=[parent_payee], royalty=2_000, parents=[root])
    leaf = world.publish(contributors=[child_payee], parents=[mid])
    assert list(world.registry.parentsOf(leaf)) == [mid]
    world.pay(leaf, 10_000)
    assert world.splitter(leaf).release(child_payee) == 8_000  # 20% to mid
    assert world.splitter(mid).release(parent_payee) == 1_800  # 10% of mid's 2,000 to root
    assert world.splitter(root).release(grand) == 200


def test_versions_keep_the_splitter_and_point_at_the_latest(world: World) -> None:
    first = world.publish()
    with boa.env.prank(world.publisher):
        second = world.registry.publishVersion(first, new_cid(), 5, 6)
        third = world.registry.publishVersion(second, new_cid(), 7, 8)
    entries = [world.registry.getDataset(i) for i in (first, second, third)]
    assert [e[9] for e in entries] == [1, 2, 3]
    assert {e[8] for e in entries} == {entries[0][8]}
    assert {e[10] for e in entries} == {first}
    assert world.registry.latestVersion(first) == third
    with boa.env.prank(world.publisher), boa.reverts("registry: not the latest version"):
        world.registry.publishVersion(first, new_cid(), 1, 1)


def test_prices_and_shares_change_through_the_publisher(world: World) -> None:
    dataset_id = world.publish()
    contributor = addr("contributor")
    with boa.env.prank(world.publisher):
        world.registry.setPrice(dataset_id, 9, 10)
        world.registry.awardShares(dataset_id, contributor, 2_500)
    entry = world.registry.getDataset(dataset_id)
    assert (entry[6], entry[7]) == (9, 10)
    splitter = world.splitter(dataset_id)
    assert splitter.shares(contributor) == 2_500 and splitter.totalShares() == 12_500
    world.pay(dataset_id, 125)
    assert splitter.release(contributor) == 25


def test_licences_are_readable(world: World) -> None:
    assert world.registry.licenceCount() == 3
    assert tuple(world.registry.getLicence(NON_COMMERCIAL)) == (
        "non-commercial",
        False,
        True,
        True,
        TERMS,
    )


# ---- every revert ----------------------------------------------------------------------------
def test_constructor_refuses_zero_addresses() -> None:
    with boa.reverts("registry: zero identity registry"):
        deployer_of(REGISTRY).deploy(ZERO, addr("x"))
    with boa.reverts("registry: zero splitter implementation"):
        deployer_of(REGISTRY).deploy(addr("x"), ZERO)


def test_add_licence_reverts(world: World) -> None:
    with boa.reverts("registry: caller is not the owner"):
        world.registry.addLicence("x", True, True, True, TERMS)
    with boa.env.prank(world.owner):
        with boa.reverts("registry: empty licence name"):
            world.registry.addLicence("", True, True, True, TERMS)
        with boa.reverts("registry: empty terms hash"):
            world.registry.addLicence("x", True, True, True, b"\x00" * 32)
    with boa.reverts("registry: caller is not the owner"):
        world.registry.transferOwnership(addr("x"))


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"sender": "stranger"}, "registry: sender is not the agent's wallet"),
        ({"cid": b"\x01" * 33}, "registry: CID too short"),
        ({"licence": 0}, "registry: unknown licence"),
        ({"licence": 4}, "registry: unknown licence"),
        ({"royalty": 10_001}, "registry: royalty above 100%"),
        (
            {"licence": NO_DERIVATIVES, "royalty": 1},
            "registry: royalty on a licence without derivatives",
        ),
        ({"token": ZERO}, "registry: zero token"),
        ({"contributors": [], "shares": []}, "registry: no contributors"),
        (
            {"contributors": ["a"], "shares": [5_000, 5_000]},
            "registry: contributors and shares differ in length",
        ),
        (
            {"contributors": ["a", "b"], "shares": [5_000, 4_999]},
            "registry: shares must sum to 10000",
        ),
        ({"contributors": ["a", "a"], "shares": [5_000, 5_000]}, "splitter: duplicate payee"),
        ({"contributors": ["a", "b"], "shares": [10_000, 0]}, "splitter: zero shares"),
        ({"parents": [99]}, "registry: parent does not exist"),
        ({"parents": [0]}, "registry: parent does not exist"),
    ],
)
def test_publish_reverts(world: World, kwargs: dict[str, Any], reason: str) -> None:
    names = {n: addr(n) for n in ("a", "b", "stranger")}
    if "sender" in kwargs:
        kwargs["sender"] = names[kwargs["sender"]]
    if "contributors" in kwargs:
        kwargs["contributors"] = [names[c] for c in kwargs["contributors"]]
    with boa.reverts(reason):
        world.publish(**kwargs)


def test_publish_reverts_on_cid_reuse_and_bad_parents(world: World, minter: str) -> None:
    cid = new_cid()
    open_parent = world.publish(cid=cid, royalty=6_000)
    closed_parent = world.publish(licence=NO_DERIVATIVES)
    heavy_parent = world.publish(royalty=5_000)
    with boa.reverts("registry: CID already registered"):
        world.publish(cid=cid)
    with boa.reverts("registry: duplicate parent"):
        world.publish(parents=[open_parent, open_parent])
    with boa.reverts("registry: parent licence forbids derivatives"):
        world.publish(parents=[closed_parent])
    with boa.reverts("registry: parent royalties above 100%"):
        world.publish(parents=[open_parent, heavy_parent])
    other_token = deploy_stablecoin(minter)
    with boa.reverts("registry: parent is paid in another token"):
        world.publish(parents=[open_parent], token=other_token.address)


def test_unregistered_agent_cannot_publish(world: World) -> None:
    with boa.reverts("erc721: invalid token ID"):
        world.publish(agent_id=42)


def test_publish_version_reverts(world: World) -> None:
    first = world.publish()
    taken = world.publish()
    stranger = addr("stranger")
    with boa.env.prank(world.publisher):
        with boa.reverts("registry: unknown dataset"):
            world.registry.publishVersion(99, new_cid(), 1, 1)
        with boa.reverts("registry: CID already registered"):
            world.registry.publishVersion(first, world.registry.getDataset(taken)[0], 1, 1)
        with boa.reverts("registry: CID too short"):
            world.registry.publishVersion(first, b"\x01", 1, 1)
    with boa.env.prank(stranger), boa.reverts("registry: caller is not the publisher"):
        world.registry.publishVersion(first, new_cid(), 1, 1)
    with boa.env.prank(world.publisher):
        world.identity.unsetAgentWallet(world.agent_id)
        with boa.reverts("registry: sender is not the agent's wallet"):
            world.registry.publishVersion(first, new_cid(), 1, 1)


def test_publisher_only_updates_revert_for_others(world: World) -> None:
    dataset_id = world.publish()
    stranger = addr("stranger")
    with boa.env.prank(stranger):
        with boa.reverts("registry: caller is not the publisher"):
            world.registry.setPrice(dataset_id, 1, 1)
        with boa.reverts("registry: caller is not the publisher"):
            world.registry.awardShares(dataset_id, stranger, 1)
    with boa.env.prank(world.publisher):
        with boa.reverts("registry: unknown dataset"):
            world.registry.setPrice(7, 1, 1)
        with boa.reverts("registry: unknown dataset"):
            world.registry.awardShares(7, stranger, 1)
        with boa.reverts("splitter: zero shares"):
            world.registry.awardShares(dataset_id, stranger, 0)


def test_views_revert_on_unknown_ids(world: World) -> None:
    with boa.reverts("registry: unknown dataset"):
        world.registry.getDataset(1)
    with boa.reverts("registry: unknown dataset"):
        world.registry.parentsOf(0)
    with boa.reverts("registry: unknown licence"):
        world.registry.getLicence(0)


def test_splitters_cannot_be_taken_over(world: World) -> None:
    dataset_id = world.publish()
    splitter = world.splitter(dataset_id)
    with boa.reverts("splitter: already initialized"):
        splitter.initialize(world.usdc.address, [addr("thief")], [1], [], [], addr("thief"))
    with boa.reverts("splitter: caller is not the owner"):
        splitter.addShares(addr("thief"), 1)
