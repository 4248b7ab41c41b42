"""The vault as the on-chain agent account: an EIP-3009 payment from the vault, signed by the
agent's session key, validates in our stablecoin through ERC-1271 once pre-authorized within the
cap; past the cap or unauthorized it does not. On a fork of an embedded chain with our token."""

from __future__ import annotations

import os

import pytest
from authoring_helpers import World, make_world
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.crypto import keccak

from agentbazaar.authoring import TEMPLATES, Sandbox
from agentbazaar.authoring.sandbox import Handle
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.sources import build, gather

DAY = 86_400
TYPEHASH = keccak(
    text="TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    "uint256 validBefore,bytes32 nonce)"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("vault"))


def test_session_key_payments_validate_through_erc1271_within_the_cap(world: World) -> None:
    box = Sandbox(world.chain)
    agent = Account.create()
    owner, payee = world.wallet.address, world.address("carol")
    now, cap = box.now, 20 * 10**6
    vault = box.deploy(
        build(gather(TEMPLATES["vault"].contract)),
        (owner, agent.address, now + 30 * DAY, world.usdc.address, cap, DAY, now, [payee]),
        sender=owner,
    )
    box.deal(world.usdc.address, vault.address, 100 * 10**6)
    abi = compile_contract("Stablecoin").abi
    by_bytes = [e for e in abi if e.get("name") == "transferWithAuthorization"
                and e["inputs"][-1]["type"] == "bytes"]  # fmt: skip
    token = Handle(world.usdc.address, by_bytes)

    def pay(amount: int, *, authorize: bool = True) -> bool:
        nonce = os.urandom(32)
        args = (world.usdc.address, payee, amount, 0, 2**40, nonce)
        if authorize:
            out = box.call(vault, "authorize_transfer", *args, sender=agent.address)
            if not out.ok:
                return False
            digest = bytes(out.value)
        else:  # the very digest the token checks, signed by the key, never authorized
            domain = bytes(box.view(Handle(world.usdc.address, abi), "DOMAIN_SEPARATOR"))
            struct = keccak(
                encode(
                    ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
                    [TYPEHASH, vault.address, payee, amount, 0, 2**40, nonce],
                )
            )
            digest = keccak(b"\x19\x01" + domain + struct)
        signature = bytes(Account.unsafe_sign_hash(digest, agent.key).signature)
        sent = box.call(token, "transferWithAuthorization", vault.address, payee, amount, 0,
                        2**40, nonce, signature, sender=payee)  # fmt: skip
        return sent.ok

    before = box.balance(world.usdc.address, payee)
    assert pay(15 * 10**6)
    assert box.balance(world.usdc.address, payee) - before == 15 * 10**6
    assert not pay(6 * 10**6)  # 15 + 6 > 20: refused at authorization, nothing signed counts
    assert not pay(1 * 10**6, authorize=False)  # a signature on a digest never authorized
    assert pay(5 * 10**6)  # exactly the cap
    box.warp(DAY)
    assert pay(20 * 10**6)  # a new period
    assert box.balance(world.usdc.address, payee) - before == 40 * 10**6
