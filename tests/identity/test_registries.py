"""The ERC-8004 registries on titanoboa: every function and every revert path, plus one
round-trip through the Python wrappers on the embedded chain after ``deploy_suite``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boa
import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.deploy import deploy_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import BazaarConfig, load_config
from agentbazaar.deployment import deploy_suite
from agentbazaar.errors import TransactionReverted
from agentbazaar.identity.contracts import (
    MetadataEntry,
    Registries,
    ReputationSummary,
    ValidationSummary,
    sign_agent_wallet,
    summarize_feedback,
)
from agentbazaar.identity.errors import RegistryInputError
from agentbazaar.suite import Suite
from agentbazaar.testing import boa_deployer

ZERO = "0x0000000000000000000000000000000000000000"
NOHASH = b"\0" * 32

ERC1271_WALLET = """
# pragma version ~=0.4.3
accepted: public(Bytes[65])

@external
def accept(signature: Bytes[65]):
    self.accepted = signature

@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[65]) -> bytes4:
    if keccak256(signature) == keccak256(self.accepted):
        return 0x1626ba7e
    return 0xffffffff
"""

NOT_A_RECEIVER = """
# pragma version ~=0.4.3
interface IReg:
    def register() -> uint256: nonpayable

@external
def register_in(registry: address) -> uint256:
    return extcall IReg(registry).register()
"""


# ---- helpers ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def partials() -> dict[str, Any]:
    return {
        name: boa_deployer(name)
        for name in ("IdentityRegistry", "ReputationRegistry", "ValidationRegistry")
    }


class Env:
    def __init__(self, partials: dict[str, Any]) -> None:
        self.identity = partials["IdentityRegistry"].deploy("agentbazaar Agent", "AGENT")
        self.reputation = partials["ReputationRegistry"].deploy(self.identity.address)
        self.validation = partials["ValidationRegistry"].deploy(self.identity.address)
        self.owner: LocalAccount = dev_account(1)
        self.client: LocalAccount = dev_account(2)
        self.stranger: LocalAccount = dev_account(3)
        self.wallet: LocalAccount = dev_account(4)
        self.validator: LocalAccount = dev_account(5)

    def register(self, *args: Any, sender: str | None = None) -> int:
        with boa.env.prank(sender or self.owner.address):
            return int(self.identity.register(*args))

    def wallet_signature(
        self, agent_id: int, wallet: LocalAccount, deadline: int, *, owner: str | None = None
    ) -> bytes:
        return sign_agent_wallet(
            wallet,
            chain_id=boa.env.evm.patch.chain_id,
            registry=str(self.identity.address),
            agent_id=agent_id,
            owner=owner or self.owner.address,
            deadline=deadline,
        )

    def give(
        self,
        agent_id: int,
        value: int,
        decimals: int = 0,
        tag1: str = "",
        tag2: str = "",
        *,
        sender: str | None = None,
    ) -> None:
        with boa.env.prank(sender or self.client.address):
            self.reputation.giveFeedback(
                agent_id, value, decimals, tag1, tag2, "https://a.example/x", "", NOHASH
            )


@pytest.fixture
def env(partials: dict[str, Any]) -> Env:
    return Env(partials)


def logs(contract: Any, event: str) -> list[dict[str, Any]]:
    """Decode ``event`` logs of the contract's last call (boa cannot decode indexed strings)."""
    abi = next(e for e in contract.abi if e["type"] == "event" and e["name"] == event)
    types = ",".join(i["type"] for i in abi["inputs"])
    topic0 = int.from_bytes(keccak(text=f"{event}({types})"), "big")
    out = []
    for _, address, topics, data in sorted(contract._computation.get_raw_log_entries()):
        if topics[0] != topic0 or to_checksum_address(address) != contract.address:
            continue
        plain = [i for i in abi["inputs"] if not i["indexed"]]
        values = iter(abi_decode([i["type"] for i in plain], data))
        indexed = iter(topics[1:])
        row: dict[str, Any] = {}
        for i in abi["inputs"]:
            if not i["indexed"]:
                row[i["name"]] = next(values)
                continue
            topic = next(indexed)
            if i["type"] == "address":
                row[i["name"]] = to_checksum_address(topic.to_bytes(32, "big")[12:])
            elif i["type"] in ("string", "bytes", "bytes32"):
                row[i["name"]] = topic.to_bytes(32, "big")
            else:
                row[i["name"]] = topic
        out.append(row)
    return out


# ---- identity: register ---------------------------------------------------------------------
def test_register_without_uri_mints_sequential_ids_with_owner_as_wallet(env: Env) -> None:
    first = env.register()
    registered = logs(env.identity, "Registered")
    assert registered == [{"agentId": 0, "agentURI": "", "owner": env.owner.address}]
    wallet_set = logs(env.identity, "MetadataSet")
    assert wallet_set[0]["metadataKey"] == "agentWallet"
    assert wallet_set[0]["indexedMetadataKey"] == keccak(text="agentWallet")
    assert wallet_set[0]["metadataValue"] == bytes.fromhex(env.owner.address[2:])
    second = env.register(sender=env.client.address)
    assert (first, second) == (0, 1)
    assert env.identity.ownerOf(0) == env.owner.address
    assert env.identity.ownerOf(1) == env.client.address
    assert env.identity.getAgentWallet(1) == env.client.address
    assert env.identity.tokenURI(0) == ""
    assert env.identity.totalSupply() == 2
    assert env.identity.name() == "agentbazaar Agent" and env.identity.symbol() == "AGENT"


def test_register_with_uri_and_metadata(env: Env) -> None:
    uri = "data:application/json;base64," + "QUJD" * 500
    agent = env.register(uri)
    assert logs(env.identity, "Registered")[0]["agentURI"] == uri
    assert env.identity.tokenURI(agent) == uri
    entries = [("a2a", b"https://agent.example/a2a"), ("price", b"\x01\x02")]
    other = env.register("https://agent.example/card.json", entries)
    keys = [e["metadataKey"] for e in logs(env.identity, "MetadataSet")]
    assert keys == ["agentWallet", "a2a", "price"]
    assert env.identity.getMetadata(other, "a2a") == b"https://agent.example/a2a"
    assert env.identity.getMetadata(other, "price") == b"\x01\x02"
    assert env.identity.getMetadata(other, "missing") == b""


def test_register_rejects_reserved_key_in_metadata(env: Env) -> None:
    with boa.reverts("identity: reserved metadata key"), boa.env.prank(env.owner.address):
        env.identity.register("u", [("agentWallet", bytes.fromhex(env.wallet.address[2:]))])
    assert env.identity.totalSupply() == 0


def test_register_from_contract_without_receiver_reverts(env: Env) -> None:
    caller = boa.loads(NOT_A_RECEIVER)
    with boa.reverts():
        caller.register_in(env.identity.address)
    assert env.identity.totalSupply() == 0


def test_tokenuri_and_wallet_of_unknown_agent_revert(env: Env) -> None:
    with boa.reverts("erc721: invalid token ID"):
        env.identity.tokenURI(7)
    with boa.reverts("erc721: invalid token ID"):
        env.identity.getAgentWallet(7)
    with boa.reverts("erc721: invalid token ID"):
        env.identity.isAuthorizedOrOwner(env.owner.address, 7)


def test_supports_erc165_erc721_and_metadata_interfaces(env: Env) -> None:
    for iface in (
        b"\x01\xff\xc9\xa7",
        b"\x80\xac\x58\xcd",
        b"\x5b\x5e\x13\x9f",
        b"\x49\x06\x49\x06",
    ):
        assert env.identity.supportsInterface(iface)
    assert not env.identity.supportsInterface(b"\xff\xff\xff\xff")


# ---- identity: URI and metadata -------------------------------------------------------------
def test_set_agent_uri_by_owner_and_operator_not_by_stranger(env: Env) -> None:
    agent = env.register("old")
    with boa.env.prank(env.owner.address):
        env.identity.setAgentURI(agent, "new")
    assert logs(env.identity, "URIUpdated") == [
        {"agentId": agent, "newURI": "new", "updatedBy": env.owner.address}
    ]
    assert env.identity.tokenURI(agent) == "new"
    with (
        boa.reverts("identity: not the agent's owner or operator"),
        boa.env.prank(env.stranger.address),
    ):
        env.identity.setAgentURI(agent, "hijack")
    with boa.env.prank(env.owner.address):
        env.identity.setApprovalForAll(env.stranger.address, True)
    with boa.env.prank(env.stranger.address):
        env.identity.setAgentURI(agent, "by operator")
    assert env.identity.tokenURI(agent) == "by operator"
    with boa.reverts("erc721: invalid token ID"), boa.env.prank(env.owner.address):
        env.identity.setAgentURI(99, "x")


def test_set_metadata_rules(env: Env) -> None:
    agent = env.register()
    with boa.env.prank(env.owner.address):
        env.identity.setMetadata(agent, "skills", b"translate")
    [event] = logs(env.identity, "MetadataSet")
    assert event["indexedMetadataKey"] == keccak(text="skills")
    assert (event["metadataKey"], event["metadataValue"]) == ("skills", b"translate")
    assert env.identity.getMetadata(agent, "skills") == b"translate"
    with boa.reverts("identity: reserved metadata key"), boa.env.prank(env.owner.address):
        env.identity.setMetadata(agent, "agentWallet", b"\x11" * 20)
    with (
        boa.reverts("identity: not the agent's owner or operator"),
        boa.env.prank(env.stranger.address),
    ):
        env.identity.setMetadata(agent, "skills", b"spam")
    with boa.env.prank(env.owner.address):
        env.identity.approve(env.stranger.address, agent)
    with boa.env.prank(env.stranger.address):
        env.identity.setMetadata(agent, "skills", b"approved")
    assert env.identity.getMetadata(agent, "skills") == b"approved"
    assert env.identity.isAuthorizedOrOwner(env.stranger.address, agent)
    assert not env.identity.isAuthorizedOrOwner(env.client.address, agent)


# ---- identity: agent wallet -----------------------------------------------------------------
def test_set_agent_wallet_with_valid_signature(env: Env) -> None:
    agent = env.register()
    deadline = boa.env.timestamp + 60
    sig = env.wallet_signature(agent, env.wallet, deadline)
    with boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)
    [event] = logs(env.identity, "MetadataSet")
    assert event["metadataValue"] == bytes.fromhex(env.wallet.address[2:])
    assert env.identity.getAgentWallet(agent) == env.wallet.address
    assert env.identity.getMetadata(agent, "agentWallet") == bytes.fromhex(env.wallet.address[2:])


def test_set_agent_wallet_deadline_exactly_five_minutes_ahead_is_accepted(env: Env) -> None:
    agent = env.register()
    deadline = boa.env.timestamp + 300
    sig = env.wallet_signature(agent, env.wallet, deadline)
    with boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)
    assert env.identity.getAgentWallet(agent) == env.wallet.address


def test_set_agent_wallet_expired_deadline_reverts(env: Env) -> None:
    agent = env.register()
    deadline = boa.env.timestamp + 60
    sig = env.wallet_signature(agent, env.wallet, deadline)
    boa.env.time_travel(seconds=61)
    with boa.reverts("identity: signature expired"), boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)
    assert env.identity.getAgentWallet(agent) == env.owner.address


def test_set_agent_wallet_deadline_too_far_ahead_reverts(env: Env) -> None:
    agent = env.register()
    deadline = boa.env.timestamp + 301
    sig = env.wallet_signature(agent, env.wallet, deadline)
    with boa.reverts("identity: deadline too far ahead"), boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)


def test_set_agent_wallet_wrong_signer_or_wrong_message_reverts(env: Env) -> None:
    agent = env.register()
    other = env.register()
    deadline = boa.env.timestamp + 60
    bad = [
        env.wallet_signature(agent, env.stranger, deadline),  # signed by someone else
        env.wallet_signature(other, env.wallet, deadline),  # for another agent
        env.wallet_signature(agent, env.wallet, deadline - 1),  # another deadline
        env.wallet_signature(agent, env.wallet, deadline, owner=env.client.address),
        b"\x00" * 65,
    ]
    for sig in bad:
        with boa.reverts(), boa.env.prank(env.owner.address):
            env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)
    assert env.identity.getAgentWallet(agent) == env.owner.address


def test_set_agent_wallet_needs_owner_and_nonzero_wallet(env: Env) -> None:
    agent = env.register()
    deadline = boa.env.timestamp + 60
    sig = env.wallet_signature(agent, env.wallet, deadline)
    with (
        boa.reverts("identity: not the agent's owner or operator"),
        boa.env.prank(env.stranger.address),
    ):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)
    with boa.reverts("identity: zero wallet"), boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, ZERO, deadline, sig)
    with boa.reverts("erc721: invalid token ID"), boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(42, env.wallet.address, deadline, sig)


def test_set_agent_wallet_accepts_erc1271_contract_wallet(env: Env) -> None:
    agent = env.register()
    contract_wallet = boa.loads(ERC1271_WALLET)
    proof = b"\x07" * 65
    contract_wallet.accept(proof)
    deadline = boa.env.timestamp + 60
    with boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, contract_wallet.address, deadline, proof)
    assert env.identity.getAgentWallet(agent) == contract_wallet.address
    with boa.reverts("identity: invalid wallet signature"), boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, contract_wallet.address, deadline, b"\x08" * 65)


def test_unset_agent_wallet(env: Env) -> None:
    agent = env.register()
    with (
        boa.reverts("identity: not the agent's owner or operator"),
        boa.env.prank(env.stranger.address),
    ):
        env.identity.unsetAgentWallet(agent)
    with boa.env.prank(env.owner.address):
        env.identity.unsetAgentWallet(agent)
    [event] = logs(env.identity, "MetadataSet")
    assert (event["metadataKey"], event["metadataValue"]) == ("agentWallet", b"")
    assert env.identity.getAgentWallet(agent) == ZERO
    assert env.identity.getMetadata(agent, "agentWallet") == b""


@pytest.mark.parametrize("method", ["transferFrom", "safeTransferFrom"])
def test_agent_wallet_cleared_on_transfer(env: Env, method: str) -> None:
    agent = env.register()
    deadline = boa.env.timestamp + 60
    sig = env.wallet_signature(agent, env.wallet, deadline)
    with boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)
        getattr(env.identity, method)(env.owner.address, env.client.address, agent)
    cleared = logs(env.identity, "MetadataSet")
    assert [(e["metadataKey"], e["metadataValue"]) for e in cleared] == [("agentWallet", b"")]
    assert env.identity.ownerOf(agent) == env.client.address
    assert env.identity.getAgentWallet(agent) == ZERO
    assert env.identity.getMetadata(agent, "agentWallet") == b""
    # the old proof names the old owner: it is useless to the new one
    with boa.reverts("identity: invalid wallet signature"), boa.env.prank(env.client.address):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)


def test_transfer_rules(env: Env) -> None:
    agent = env.register()
    with (
        boa.reverts("erc721: caller is not token owner or approved"),
        boa.env.prank(env.stranger.address),
    ):
        env.identity.transferFrom(env.owner.address, env.stranger.address, agent)
    with boa.env.prank(env.owner.address):  # to oneself: the wallet stays
        env.identity.transferFrom(env.owner.address, env.owner.address, agent)
    assert env.identity.getAgentWallet(agent) == env.owner.address
    with boa.env.prank(env.owner.address):
        env.identity.approve(env.stranger.address, agent)
    with boa.env.prank(env.stranger.address):
        env.identity.transferFrom(env.owner.address, env.client.address, agent)
    assert env.identity.ownerOf(agent) == env.client.address
    assert env.identity.getApproved(agent) == ZERO


# ---- reputation -----------------------------------------------------------------------------
def test_give_feedback_records_and_emits(env: Env) -> None:
    agent = env.register()
    assert env.reputation.getIdentityRegistry() == env.identity.address
    with boa.env.prank(env.client.address):
        env.reputation.giveFeedback(
            agent, -250, 1, "quality", "latency", "https://a/x", "ipfs://fb", b"\x05" * 32
        )
    [event] = logs(env.reputation, "NewFeedback")
    assert event == {
        "agentId": agent,
        "clientAddress": env.client.address,
        "feedbackIndex": 1,
        "value": -250,
        "valueDecimals": 1,
        "indexedTag1": keccak(text="quality"),
        "tag1": "quality",
        "tag2": "latency",
        "endpoint": "https://a/x",
        "feedbackURI": "ipfs://fb",
        "feedbackHash": b"\x05" * 32,
    }
    assert env.reputation.readFeedback(agent, env.client.address, 1) == (
        -250,
        1,
        "quality",
        "latency",
        False,
    )
    env.give(agent, 10)
    assert env.reputation.getLastIndex(agent, env.client.address) == 2
    assert env.reputation.getLastIndex(agent, env.stranger.address) == 0
    assert env.reputation.getClients(agent) == [env.client.address]
    env.give(agent, 10, sender=env.stranger.address)
    assert env.reputation.getClients(agent) == [env.client.address, env.stranger.address]
    assert env.reputation.getClientCount(agent) == 2
    assert env.reputation.getClientsPage(agent, 1, 10) == [env.stranger.address]
    assert env.reputation.getClientsPage(agent, 5, 10) == []


def test_self_review_by_owner_or_operators_rejected(env: Env) -> None:
    agent = env.register()
    with boa.reverts("reputation: self-feedback not allowed"):
        env.give(agent, 100, sender=env.owner.address)
    with boa.env.prank(env.owner.address):
        env.identity.setApprovalForAll(env.stranger.address, True)
        env.identity.approve(env.validator.address, agent)
    with boa.reverts("reputation: self-feedback not allowed"):
        env.give(agent, 100, sender=env.stranger.address)
    with boa.reverts("reputation: self-feedback not allowed"):
        env.give(agent, 100, sender=env.validator.address)
    deadline = boa.env.timestamp + 60
    sig = env.wallet_signature(agent, env.wallet, deadline)
    with boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, env.wallet.address, deadline, sig)
    with boa.reverts("reputation: self-feedback not allowed"):
        env.give(agent, 100, sender=env.wallet.address)
    assert env.reputation.getClients(agent) == []


def test_feedback_value_bounds_and_unknown_agent(env: Env) -> None:
    agent = env.register()
    with boa.reverts("reputation: valueDecimals above 18"):
        env.give(agent, 1, 19)
    with boa.reverts("reputation: value too large"):
        env.give(agent, 10**38 + 1)
    with boa.reverts("reputation: value too large"):
        env.give(agent, -(10**38) - 1)
    env.give(agent, 10**38, 18)
    env.give(agent, -(10**38), 18)
    with boa.reverts("erc721: invalid token ID"):
        env.give(12345, 1)


def test_revoke_feedback(env: Env) -> None:
    agent = env.register()
    env.give(agent, 80)
    env.give(agent, 20)
    with boa.env.prank(env.client.address):
        env.reputation.revokeFeedback(agent, 2)
    assert logs(env.reputation, "FeedbackRevoked") == [
        {"agentId": agent, "clientAddress": env.client.address, "feedbackIndex": 2}
    ]
    assert env.reputation.readFeedback(agent, env.client.address, 2)[4] is True
    assert env.reputation.getSummary(agent, [env.client.address], "", "") == (1, 80, 0)
    with boa.reverts("reputation: already revoked"), boa.env.prank(env.client.address):
        env.reputation.revokeFeedback(agent, 2)
    with boa.reverts("reputation: feedbackIndex must be > 0"), boa.env.prank(env.client.address):
        env.reputation.revokeFeedback(agent, 0)
    with boa.reverts("reputation: feedbackIndex out of bounds"), boa.env.prank(env.client.address):
        env.reputation.revokeFeedback(agent, 3)
    # only the client who gave it can revoke it: for anyone else the index does not exist
    with boa.reverts("reputation: feedbackIndex out of bounds"), boa.env.prank(env.owner.address):
        env.reputation.revokeFeedback(agent, 1)


def test_read_feedback_index_checks(env: Env) -> None:
    agent = env.register()
    env.give(agent, 1)
    with boa.reverts("reputation: feedbackIndex must be > 0"):
        env.reputation.readFeedback(agent, env.client.address, 0)
    with boa.reverts("reputation: feedbackIndex out of bounds"):
        env.reputation.readFeedback(agent, env.client.address, 2)


def test_append_response_and_response_count(env: Env) -> None:
    agent = env.register()
    env.give(agent, 50)
    env.give(agent, 60)
    with boa.env.prank(env.owner.address):
        env.reputation.appendResponse(agent, env.client.address, 1, "ipfs://r1", b"\x01" * 32)
    assert logs(env.reputation, "ResponseAppended") == [
        {
            "agentId": agent,
            "clientAddress": env.client.address,
            "feedbackIndex": 1,
            "responder": env.owner.address,
            "responseURI": "ipfs://r1",
            "responseHash": b"\x01" * 32,
        }
    ]
    with boa.env.prank(env.owner.address):
        env.reputation.appendResponse(agent, env.client.address, 1, "ipfs://r2", NOHASH)
        env.reputation.appendResponse(agent, env.client.address, 2, "ipfs://r3", NOHASH)
    with boa.env.prank(env.stranger.address):
        env.reputation.appendResponse(agent, env.client.address, 1, "ipfs://r4", NOHASH)
    count = env.reputation.getResponseCount
    assert count(agent, env.client.address, 1, []) == 3
    assert count(agent, env.client.address, 1, [env.owner.address]) == 2
    assert count(agent, env.client.address, 0, []) == 4  # every index of the client
    assert count(agent, ZERO, 0, [env.stranger.address]) == 1  # every client
    with boa.reverts("reputation: empty responseURI"):
        env.reputation.appendResponse(agent, env.client.address, 1, "", NOHASH)
    with boa.reverts("reputation: feedbackIndex out of bounds"):
        env.reputation.appendResponse(agent, env.client.address, 3, "x", NOHASH)
    with boa.reverts("reputation: feedbackIndex must be > 0"):
        env.reputation.appendResponse(agent, env.client.address, 0, "x", NOHASH)


def test_summary_needs_clients_and_filters_tags(env: Env) -> None:
    agent = env.register()
    with boa.reverts("reputation: clientAddresses required"):
        env.reputation.getSummary(agent, [], "", "")
    assert env.reputation.getSummary(agent, [env.client.address], "", "") == (0, 0, 0)
    env.give(agent, 90, 0, "quality", "fast")
    env.give(agent, 70, 0, "quality", "slow")
    env.give(agent, 10, 0, "price", "fast", sender=env.stranger.address)
    both = [env.client.address, env.stranger.address]
    summary = env.reputation.getSummary
    assert summary(agent, both, "", "") == (3, 56, 0)  # 170 / 3 truncated
    assert summary(agent, both, "quality", "") == (2, 80, 0)
    assert summary(agent, both, "", "fast") == (2, 50, 0)
    assert summary(agent, both, "quality", "slow") == (1, 70, 0)
    assert summary(agent, [env.stranger.address], "", "") == (1, 10, 0)
    assert summary(agent, both, "nope", "") == (0, 0, 0)


def test_summary_normalises_decimals_and_truncates_toward_zero(env: Env) -> None:
    agent = env.register()
    env.give(agent, 9977, 2)  # 99.77
    env.give(agent, 9000, 2)  # 90.00
    env.give(agent, 95, 0)  # 95
    # average 94.923333.. in WAD, returned at the most frequent decimals (2): 9492
    assert env.reputation.getSummary(agent, [env.client.address], "", "") == (3, 9492, 2)
    negative = env.register()
    env.give(negative, -7)
    env.give(negative, -8)
    assert env.reputation.getSummary(negative, [env.client.address], "", "") == (2, -7, 0)


def test_read_all_feedback(env: Env) -> None:
    agent = env.register()
    env.give(agent, 1, 0, "a")
    env.give(agent, 2, 1, "b")
    env.give(agent, 3, 0, "a", sender=env.stranger.address)
    with boa.env.prank(env.client.address):
        env.reputation.revokeFeedback(agent, 1)
    clients, indexes, values, decimals, tag1s, tag2s, revoked = env.reputation.readAllFeedback(
        agent, [], "", "", True
    )
    assert clients == [env.client.address, env.client.address, env.stranger.address]
    assert (indexes, values, decimals) == ([1, 2, 1], [1, 2, 3], [0, 1, 0])
    assert (tag1s, tag2s, revoked) == (["a", "b", "a"], ["", "", ""], [True, False, False])
    live = env.reputation.readAllFeedback(agent, [], "a", "", False)
    assert live[0] == [env.stranger.address] and live[2] == [3]
    only = env.reputation.readAllFeedback(agent, [env.client.address], "", "", False)
    assert only[1] == [2]


# ---- validation -----------------------------------------------------------------------------
def _request(env: Env, agent: int, request_hash: bytes, *, sender: str | None = None) -> None:
    with boa.env.prank(sender or env.owner.address):
        env.validation.validationRequest(env.validator.address, agent, "ipfs://req", request_hash)


def test_validation_request_rules(env: Env) -> None:
    agent = env.register()
    assert env.validation.getIdentityRegistry() == env.identity.address
    _request(env, agent, b"\x01" * 32)
    assert logs(env.validation, "ValidationRequest") == [
        {
            "validatorAddress": env.validator.address,
            "agentId": agent,
            "requestURI": "ipfs://req",
            "requestHash": b"\x01" * 32,
        }
    ]
    status = env.validation.getValidationStatus(b"\x01" * 32)
    assert status[:5] == (env.validator.address, agent, 0, NOHASH, "")
    with boa.reverts("validation: not the agent's owner or operator"):
        _request(env, agent, b"\x02" * 32, sender=env.stranger.address)
    with boa.reverts("validation: requestHash already used"):
        _request(env, agent, b"\x01" * 32)
    with boa.reverts("validation: zero validator"), boa.env.prank(env.owner.address):
        env.validation.validationRequest(ZERO, agent, "x", b"\x03" * 32)
    with boa.reverts("erc721: invalid token ID"):
        _request(env, 77, b"\x04" * 32)
    with boa.env.prank(env.owner.address):
        env.identity.setApprovalForAll(env.stranger.address, True)
    _request(env, agent, b"\x05" * 32, sender=env.stranger.address)
    assert env.validation.getAgentValidations(agent) == [b"\x01" * 32, b"\x05" * 32]
    assert env.validation.getValidatorRequests(env.validator.address) == [
        b"\x01" * 32,
        b"\x05" * 32,
    ]


def test_validation_response_only_by_named_validator_and_updatable(env: Env) -> None:
    agent = env.register()
    h = b"\x09" * 32
    _request(env, agent, h)
    with (
        boa.reverts("validation: not the requested validator"),
        boa.env.prank(env.stranger.address),
    ):
        env.validation.validationResponse(h, 80, "", NOHASH, "soft")
    with boa.reverts("validation: response above 100"), boa.env.prank(env.validator.address):
        env.validation.validationResponse(h, 101, "", NOHASH, "soft")
    with boa.reverts("validation: unknown requestHash"), boa.env.prank(env.validator.address):
        env.validation.validationResponse(b"\x0a" * 32, 50, "", NOHASH, "")
    with boa.env.prank(env.validator.address):
        env.validation.validationResponse(h, 60, "ipfs://r", b"\x02" * 32, "soft")
    assert logs(env.validation, "ValidationResponse") == [
        {
            "validatorAddress": env.validator.address,
            "agentId": agent,
            "requestHash": h,
            "response": 60,
            "responseURI": "ipfs://r",
            "responseHash": b"\x02" * 32,
            "tag": "soft",
        }
    ]
    first = env.validation.getValidationStatus(h)
    boa.env.time_travel(seconds=30)
    with boa.env.prank(env.validator.address):
        env.validation.validationResponse(h, 100, "ipfs://r2", b"\x03" * 32, "hard")
    again = env.validation.getValidationStatus(h)
    assert again[:5] == (env.validator.address, agent, 100, b"\x03" * 32, "hard")
    assert again[5] == first[5] + 30
    with boa.reverts("validation: unknown requestHash"):
        env.validation.getValidationStatus(b"\x0b" * 32)


def test_validation_summary_and_paging(env: Env) -> None:
    agent = env.register()
    other_validator = dev_account(6).address
    for i, (validator, response, tag) in enumerate(
        [
            (env.validator.address, 90, "hard"),
            (env.validator.address, 60, "soft"),
            (other_validator, 30, "hard"),
            (other_validator, None, ""),
        ]
    ):
        h = bytes([i + 1]) * 32
        with boa.env.prank(env.owner.address):
            env.validation.validationRequest(validator, agent, "", h)
        if response is not None:
            with boa.env.prank(validator):
                env.validation.validationResponse(h, response, "", NOHASH, tag)
    summary = env.validation.getSummary
    assert summary(agent, [], "") == (3, 60)  # the unanswered request does not count
    assert summary(agent, [env.validator.address], "") == (2, 75)
    assert summary(agent, [], "hard") == (2, 60)
    assert summary(agent, [other_validator], "hard") == (1, 30)
    assert summary(agent, [env.stranger.address], "") == (0, 0)
    assert env.validation.getAgentValidationCount(agent) == 4
    assert env.validation.getAgentValidationsPage(agent, 1, 2) == [b"\x02" * 32, b"\x03" * 32]
    assert env.validation.getAgentValidationsPage(agent, 9, 2) == []
    assert env.validation.getValidatorRequestCount(other_validator) == 2
    assert env.validation.getValidatorRequestsPage(other_validator, 1, 5) == [b"\x04" * 32]


def test_registries_refuse_zero_identity(partials: dict[str, Any]) -> None:
    for name in ("ReputationRegistry", "ValidationRegistry"):
        with boa.reverts():
            partials[name].deploy(ZERO)


def test_fresh_random_wallet_can_be_bound(env: Env) -> None:
    agent = env.register()
    fresh = Account.create()
    deadline = boa.env.timestamp + 10
    sig = env.wallet_signature(agent, fresh, deadline)
    with boa.env.prank(env.owner.address):
        env.identity.setAgentWallet(agent, fresh.address, deadline, sig)
    assert env.identity.getAgentWallet(agent) == fresh.address


# ---- the suite on a chain, through the Python wrappers -------------------------------------------
def _deploy(chain: Chain, cfg: BazaarConfig) -> Registries:
    ctx = deploy_suite(chain, cfg)
    for key in ("IdentityRegistry", "ReputationRegistry", "ValidationRegistry"):
        assert ctx.statuses[key] == "deployed"
    regs = Registries.from_suite(Suite.from_context(ctx))
    assert regs.reputation.identity_registry() == regs.identity.address
    assert regs.validation.identity_registry() == regs.identity.address
    for i in (1, 2, 4, 5):
        chain.fund_native(dev_account(i).address, 10**19)
    return regs


def _round_trip(chain: Chain, regs: Registries) -> None:
    owner, wallet, client = dev_account(1), dev_account(4), dev_account(2)
    agent = regs.identity.register(
        owner, "https://agent.example/card.json", [MetadataEntry("a2a", b"https://a/a2a")]
    )
    assert regs.identity.exists(agent) and not regs.identity.exists(agent + 1000)
    assert regs.identity.owner_of(agent) == owner.address
    assert regs.identity.agent_uri(agent) == "https://agent.example/card.json"
    assert regs.identity.get_metadata(agent, "a2a") == b"https://a/a2a"
    assert regs.identity.get_agent_wallet(agent) == owner.address

    regs.identity.bind_wallet(owner, agent, wallet)
    assert regs.identity.get_agent_wallet(agent) == wallet.address
    assert regs.identity.get_metadata(agent, "agentWallet") == bytes.fromhex(wallet.address[2:])

    index = regs.reputation.give_feedback(client, agent, 87, tag1="quality")
    assert index == 1
    assert regs.reputation.clients(agent) == [client.address]
    assert regs.reputation.summary(agent, [client.address]) == ReputationSummary(1, 87, 0)
    with pytest.raises(TransactionReverted, match="self-feedback"):
        regs.reputation.give_feedback(owner, agent, 100)

    regs.identity.transfer(owner, agent, client.address)
    assert regs.identity.get_agent_wallet(agent) is None
    assert regs.identity.owner_of(agent) == client.address


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for the embedded deployments (their manifests live in memory), so the suite's
    contracts are compiled once, into the compiler's default cache shared with other runs."""
    return tmp_path_factory.mktemp("home")


def test_deploy_suite_and_wrapper_round_trip_embedded(shared_home: Path) -> None:
    chain = Chain.embedded()
    _round_trip(chain, _deploy(chain, load_config(shared_home, env={})))


@pytest.mark.anvil
def test_wrapper_round_trip_on_anvil(shared_anvil: AnvilNode, anvil_config: BazaarConfig) -> None:
    chain = Chain.rpc(shared_anvil.running_url(), backend="local")
    _round_trip(chain, _deploy(chain, anvil_config))


@pytest.fixture(scope="module")
def deployed(shared_home: Path) -> tuple[Chain, Registries]:
    chain = Chain.embedded()
    return chain, _deploy(chain, load_config(shared_home, env={}))


def test_wrapper_rejects_bad_input_before_sending(deployed: tuple[Chain, Registries]) -> None:
    chain, regs = deployed
    owner = dev_account(1)
    nonce = chain.w3.eth.get_transaction_count(owner.address)
    agent = regs.identity.register(owner)
    ident, rep, val = regs.identity, regs.reputation, regs.validation
    bad: list[tuple[Callable[[], object], str]] = [
        (lambda: ident.register(owner, "x" * 16385), "16385 bytes"),
        (lambda: ident.register(owner, "u", [MetadataEntry("k", b"")] * 17), "at most 16"),
        (lambda: ident.register(owner, "u", [MetadataEntry("k" * 129, b"")]), "metadata key"),
        (lambda: ident.set_metadata(owner, agent, "k", b"x" * 1025), "1025 bytes"),
        (lambda: ident.set_metadata(owner, agent, "agentWallet", b""), "reserved"),
        (lambda: ident.set_agent_uri(owner, agent, "é" * 8193), "16386 bytes"),
        (lambda: ident.bind_wallet(owner, agent, dev_account(4), deadline=1), "has passed"),
        (
            lambda: ident.bind_wallet(
                owner, agent, dev_account(4), deadline=ident.default_deadline() + 600
            ),
            "more than 5 minutes",
        ),
        (lambda: ident.set_agent_wallet(owner, agent, ZERO, 10**12, b""), "zero address"),
        (
            lambda: ident.set_agent_wallet(
                owner, agent, dev_account(4).address, ident.default_deadline(), b"\x01" * 64
            ),
            "65 bytes",
        ),
        (lambda: ident.owner_of(-1), "agentId"),
        (lambda: rep.give_feedback(owner, agent, 1, 19), "valueDecimals"),
        (lambda: rep.give_feedback(owner, agent, 10**38 + 1), "1e38"),
        (lambda: rep.give_feedback(owner, agent, 1, tag1="t" * 65), "tag1"),
        (lambda: rep.give_feedback(owner, agent, 1, feedback_hash=b"\x01"), "32 bytes"),
        (lambda: rep.summary(agent, []), "non-empty"),
        (lambda: rep.summary(agent, "0x" + "11" * 20), "list of addresses"),
        (lambda: rep.append_response(owner, agent, owner.address, 1, ""), "empty"),
        (lambda: rep.read_feedback(agent, "not-an-address", 1), "client"),
        (lambda: val.respond(owner, b"\x01" * 32, 101), "0..100"),
        (lambda: val.request(owner, "0x12", agent, "", b"\x01" * 32), "validator"),
    ]
    for call, message in bad:
        with pytest.raises(RegistryInputError, match=message):
            call()
    assert chain.w3.eth.get_transaction_count(owner.address) == nonce + 1  # only the register


def test_wrapper_reverts_become_typed_errors(deployed: tuple[Chain, Registries]) -> None:
    _, regs = deployed
    owner, stranger, validator = dev_account(1), dev_account(2), dev_account(5)
    agent = regs.identity.register(owner, "https://a.example/card.json")
    with pytest.raises(TransactionReverted, match="not the agent's owner or operator"):
        regs.identity.set_agent_uri(stranger, agent, "https://evil.example")
    with pytest.raises(TransactionReverted, match="invalid token ID"):
        regs.identity.agent_uri(10**9)
    h = keccak(text="request-1")
    regs.validation.request(owner, validator.address, agent, "ipfs://req", h)
    with pytest.raises(TransactionReverted, match="not the requested validator"):
        regs.validation.respond(stranger, h, 50)
    regs.validation.respond(validator, h, 40, tag="soft")
    regs.validation.respond(validator, h, 90, tag="hard", response_uri="ipfs://r")
    status = regs.validation.status(h)
    assert (status.validator, status.agent_id, status.response, status.tag) == (
        validator.address,
        agent,
        90,
        "hard",
    )
    assert regs.validation.summary(agent) == ValidationSummary(1, 90)
    assert regs.validation.agent_requests(agent) == [h]
    assert regs.validation.validator_requests(validator.address) == [h]
    index = regs.reputation.give_feedback(stranger, agent, 3, tag1="a")
    regs.reputation.append_response(owner, agent, stranger.address, index, "ipfs://thanks")
    assert regs.reputation.response_count(agent, stranger.address, index) == 1
    [fb] = regs.reputation.read_all_feedback(agent)
    assert (fb.client, fb.index, fb.value, fb.tag1, fb.is_revoked) == (
        stranger.address,
        1,
        3,
        "a",
        False,
    )
    regs.reputation.revoke_feedback(stranger, agent, index)
    assert regs.reputation.read_feedback(agent, stranger.address, index).is_revoked
    assert regs.reputation.last_index(agent, stranger.address) == 1
    assert regs.reputation.read_all_feedback(agent) == []
    with pytest.raises(TransactionReverted, match="already revoked"):
        regs.reputation.revoke_feedback(stranger, agent, index)


# ---- getSummary arithmetic: contract == the off-chain model, on random feedback ----------------
_feedback_entry = st.tuples(
    st.integers(min_value=0, max_value=2),  # which client
    st.integers(min_value=-(10**38), max_value=10**38),
    st.integers(min_value=0, max_value=18),
    st.booleans(),  # revoke it afterwards
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(_feedback_entry, min_size=1, max_size=8))
# a huge 0-decimal value averaged with values at 1 decimal: the average at the most frequent
# decimals (1) overflows int128, so the summary falls back to 0 decimals
@example(
    entries=[
        (0, 0, 1, False),
        (0, 0, 1, False),
        (0, 99_999_999_999_806_571_868_861_659_332_047_011_840, 0, False),
    ]
)
def test_summary_matches_offchain_model(
    partials: dict[str, Any], entries: list[tuple[int, int, int, bool]]
) -> None:
    with boa.env.anchor():
        env = Env(partials)
        agent = env.register()
        clients = [dev_account(i).address for i in (2, 3, 4)]
        for who, value, decimals, revoke in entries:
            env.give(agent, value, decimals, sender=clients[who])
            if revoke:
                with boa.env.prank(clients[who]):
                    env.reputation.revokeFeedback(
                        agent, env.reputation.getLastIndex(agent, clients[who])
                    )
        live = [(v, d) for _, v, d, revoked in entries if not revoked]
        expected = summarize_feedback(live)
        got = env.reputation.getSummary(agent, clients, "", "")
        assert got == (expected.count, expected.summary_value, expected.summary_value_decimals)


def test_redeployed_identity_gets_fresh_bound_registries(shared_home: Path) -> None:
    chain = Chain.embedded()
    cfg = load_config(shared_home, env={})
    first = deploy_suite(chain, cfg)
    old_identity = first.contracts["IdentityRegistry"].address
    deploy_contract(  # a new identity registry, as after a change of its source
        chain,
        first.deployer,
        first.manifest,
        "IdentityRegistry",
        "IdentityRegistry",
        ("agentbazaar Agent", "AGENT"),
        artifacts_dir=cfg.artifacts_dir,
        force=True,
    )
    again = deploy_suite(chain, cfg, manifest=first.manifest)
    new_identity = again.contracts["IdentityRegistry"].address
    assert new_identity != old_identity
    assert again.statuses["IdentityRegistry"] == "reused"
    for key in ("ReputationRegistry", "ValidationRegistry"):
        assert again.statuses[key] == "changed"
        assert chain.call(again.contracts[key].functions.getIdentityRegistry()) == new_identity
        assert first.manifest.contracts[key].address == again.contracts[key].address
