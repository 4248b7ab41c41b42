"""Permit2 and the x402 Permit2 proxies on titanoboa: the SDK's ABI, type hashes and typed data,
every refusal (replay, expiry, wrong witness, amount above the maximum, nonce reuse, another
facilitator), contract-wallet owners, the EIP-2612 path, and conservation of funds as a stateful
property."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
import pytest
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_utils import function_abi_to_4byte_selector
from hypothesis import given, settings
from hypothesis import strategies as st
from permit2_helpers import (
    MAX,
    Permit,
    deploy,
    deploy_wallet,
    digest_of,
    make_permit,
    permit2_domain,
    reverts_with,
    sign,
)
from token_helpers import deploy_stablecoin, new_account, sign_permit
from x402.mechanisms.evm import constants as c

from agentbazaar.chain.compiler import compile_contract
from agentbazaar.payments import permit2 as p2

WITNESS_PREFIX = "Witness witness)"


@dataclass
class Env:
    usdc: Any
    permit2: Any
    upto: Any
    exact: Any
    minter: str
    payer: LocalAccount
    payee: str
    facilitator: str

    def fund(self, owner: str, amount: int) -> None:
        with boa.env.prank(self.minter):
            self.usdc.mint(owner, amount)

    def upto_permit(self, amount: int, **kw: Any) -> Permit:
        p = make_permit(
            self.payer.address, self.usdc, amount, self.upto, self.payee,
            facilitator=self.facilitator, **kw,
        )  # fmt: skip
        return sign(p, self.payer, self.permit2)

    def settle(self, p: Permit, amount: int, *, sender: str | None = None, **kw: Any) -> None:
        with boa.env.prank(sender or self.facilitator):
            self.upto.settle(p.permit, amount, p.owner, p.witness, p.signature, **kw)


@pytest.fixture
def env() -> Env:
    minter = str(boa.env.generate_address("minter"))
    usdc = deploy_stablecoin(minter)
    permit2 = deploy("Permit2")
    e = Env(
        usdc=usdc,
        permit2=permit2,
        upto=deploy("X402UptoPermit2Proxy", permit2.address),
        exact=deploy("X402ExactPermit2Proxy", permit2.address),
        minter=minter,
        payer=new_account(),
        payee=new_account().address,
        facilitator=str(boa.env.generate_address("facilitator")),
    )
    e.fund(e.payer.address, 1_000_000)
    with boa.env.prank(e.payer.address):
        usdc.approve(permit2.address, MAX)
    return e


# ---- wire compatibility with the SDK ------------------------------------------------------
def _selectors(abi: list[dict[str, Any]]) -> dict[str, bytes]:
    return {
        e["name"]: function_abi_to_4byte_selector(e) for e in abi if e.get("type") == "function"
    }


def test_proxy_selectors_match_the_sdk_abi() -> None:
    upto = _selectors(compile_contract("X402UptoPermit2Proxy").abi)
    exact = _selectors(compile_contract("X402ExactPermit2Proxy").abi)
    for ours, sdk_abi in (
        (upto, c.X402_UPTO_PERMIT2_PROXY_ABI + c.X402_UPTO_PERMIT2_PROXY_SETTLE_WITH_PERMIT_ABI),
        (exact, c.X402_EXACT_PERMIT2_PROXY_ABI + c.X402_EXACT_PERMIT2_PROXY_SETTLE_WITH_PERMIT_ABI),
    ):
        for name, sel in _selectors(sdk_abi).items():
            assert ours[name] == sel, name
    permit2 = _selectors(compile_contract("Permit2").abi)
    # Uniswap Permit2's selectors
    assert permit2["permitWitnessTransferFrom"].hex() == "137c29fe"
    assert permit2["nonceBitmap"].hex() == "4fe02b44"
    assert permit2["invalidateUnorderedNonces"].hex() == "3ff9dcb1"
    assert permit2["DOMAIN_SEPARATOR"].hex() == "3644e515"


def _encode_type(types: dict[str, list[dict[str, str]]], name: str) -> str:
    return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in types[name]) + ")"


@pytest.mark.parametrize(
    ("types", "proxy"),
    [(c.UPTO_PERMIT2_WITNESS_TYPES, "X402UptoPermit2Proxy"), (c.PERMIT2_WITNESS_TYPES, "X402ExactPermit2Proxy")],
)  # fmt: skip
def test_witness_type_strings_are_the_sdk_typed_data(types: Any, proxy: str) -> None:
    """The proxy's WITNESS_TYPE_STRING completes Permit2's stub into exactly the EIP-712 type
    the SDK signs (primary type, then the referenced structs in alphabetical order)."""
    contract = deploy(proxy, boa.env.generate_address("permit2"))
    full = "".join(
        _encode_type(types, n) for n in ("PermitWitnessTransferFrom", "TokenPermissions", "Witness")
    )
    stub = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,"
    assert stub + contract.WITNESS_TYPE_STRING() == full
    assert contract.WITNESS_TYPE_STRING().startswith(WITNESS_PREFIX)
    assert contract.WITNESS_TYPEHASH() == keccak(_encode_type(types, "Witness").encode())
    ours = p2.UPTO_WITNESS_TYPE_STRING if "facilitator" in full else p2.EXACT_WITNESS_TYPE_STRING
    assert ours == contract.WITNESS_TYPE_STRING()


def test_domain_separator_is_permit2s(env: Env) -> None:
    from eth_account.messages import encode_typed_data

    signable = encode_typed_data(
        domain_data=permit2_domain(env.permit2),
        message_types={"Empty": []},
        message_data={},
    )
    assert env.permit2.DOMAIN_SEPARATOR() == signable.header
    assert p2.domain_separator(1) == p2.domain_separator(1)  # pure and stable


def test_our_digest_is_the_sdks_typed_data(env: Env) -> None:
    """``permit2.permit2_digest`` (computed directly) equals the SDK's typed data at the
    canonical address, for both witnesses."""
    for facilitator in (env.facilitator, None):
        p = make_permit(
            env.payer.address, env.usdc, 77, env.upto, env.payee, facilitator=facilitator
        )
        auth = p2.Permit2Authorization(
            payer=p.owner, token=p.token, amount=p.amount, spender=p.spender, nonce=p.nonce,
            deadline=p.deadline, to=p.to, valid_after=p.valid_after,
            facilitator=p.facilitator, signature=b"",
        )  # fmt: skip
        assert p2.permit2_digest(auth, 31337) == digest_of(p, p2.PERMIT2_ADDRESS, 31337)


# ---- upto: the happy path and every refusal -----------------------------------------------
def test_upto_settles_the_used_amount_once(env: Env) -> None:
    p = env.upto_permit(1000)
    env.settle(p, 400)
    assert env.usdc.balanceOf(env.payee) == 400
    assert env.usdc.balanceOf(env.payer.address) == 1_000_000 - 400
    assert env.usdc.balanceOf(env.upto.address) == 0
    word = env.permit2.nonceBitmap(env.payer.address, p.nonce >> 8)
    assert word >> (p.nonce & 255) & 1 == 1
    with reverts_with("InvalidNonce()"):  # the same signature again
        env.settle(p, 400)
    with reverts_with("InvalidNonce()"):  # even for the rest of the maximum
        env.settle(p, 600)
    assert env.usdc.balanceOf(env.payee) == 400


def test_upto_refusals(env: Env) -> None:
    p = env.upto_permit(1000)
    with reverts_with("AmountExceedsPermitted()"):
        env.settle(p, 1001)
    with reverts_with("UnauthorizedFacilitator()"):
        env.settle(p, 10, sender=str(boa.env.generate_address("other")))
    with reverts_with("InvalidAmount()"):
        env.settle(p, 0)
    with boa.env.prank(env.facilitator), reverts_with("InvalidOwner()"):
        env.upto.settle(p.permit, 10, "0x" + "00" * 20, p.witness, p.signature)
    moved = ("0x" + "00" * 20, env.facilitator, 0)
    with boa.env.prank(env.facilitator), reverts_with("InvalidDestination()"):
        env.upto.settle(p.permit, 10, p.owner, moved, p.signature)
    other = (new_account().address, env.facilitator, 0)  # the payee changed: wrong witness
    with boa.env.prank(env.facilitator), reverts_with("InvalidSigner()"):
        env.upto.settle(p.permit, 10, p.owner, other, p.signature)
    bigger = ((p.token, p.amount + 1), p.nonce, p.deadline)  # the maximum changed
    with boa.env.prank(env.facilitator), reverts_with("InvalidSigner()"):
        env.upto.settle(bigger, 10, p.owner, p.witness, p.signature)
    assert env.usdc.balanceOf(env.payee) == 0
    env.settle(p, 10)  # none of the refusals used the nonce
    assert env.usdc.balanceOf(env.payee) == 10


def test_expired_and_early_permits(env: Env) -> None:
    now = boa.env.evm.patch.timestamp
    late = env.upto_permit(100, deadline=now - 1)
    with reverts_with("SignatureExpired(uint256)", now - 1):
        env.settle(late, 50)
    early = env.upto_permit(100, valid_after=now + 60)
    with reverts_with("PaymentTooEarly()"):
        env.settle(early, 50)
    boa.env.time_travel(seconds=61)
    env.settle(early, 50)
    assert env.usdc.balanceOf(env.payee) == 50


def test_nonce_reuse_and_invalidation(env: Env) -> None:
    first = env.upto_permit(100, nonce=7)
    second = env.upto_permit(200, nonce=7)  # another permit, same nonce
    env.settle(first, 100)
    with reverts_with("InvalidNonce()"):
        env.settle(second, 100)
    third = env.upto_permit(100, nonce=(5 << 8) | 3)
    with boa.env.prank(env.payer.address):
        env.permit2.invalidateUnorderedNonces(5, 1 << 3)
    (event,) = env.permit2.get_logs()
    assert type(event).__name__ == "UnorderedNonceInvalidation"
    assert (event.owner, event.word, event.mask) == (env.payer.address, 5, 1 << 3)
    with reverts_with("InvalidNonce()"):
        env.settle(third, 100)
    assert env.usdc.balanceOf(env.payee) == 100


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_signature_forms(env: Env) -> None:
    """Our one signature rule (lib/signature_checker.vy) with Permit2's errors: 65-byte low-s
    ECDSA with v in {0, 1, 27, 28}; not the EIP-2098 form, not the malleable twin."""
    p = env.upto_permit(100)
    r, s, v = p.signature[:32], p.signature[32:64], p.signature[64]
    compact = r + ((v - 27) << 255 | int.from_bytes(s, "big")).to_bytes(32, "big")
    twin = r + (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big") + bytes([55 - v])
    for refused, error in (
        (compact, "InvalidSignatureLength()"),
        (p.signature + b"\0", "InvalidSignatureLength()"),
        (twin, "InvalidSignature()"),
    ):
        with boa.env.prank(env.facilitator), reverts_with(error):
            env.upto.settle(p.permit, 100, p.owner, p.witness, refused)
    with boa.env.prank(env.facilitator):  # v as the recovery id (0/1) is accepted
        env.upto.settle(p.permit, 100, p.owner, p.witness, r + s + bytes([v - 27]))
    forged = sign(
        make_permit(
            env.payer.address, env.usdc, 100, env.upto, env.payee, facilitator=env.facilitator
        ),
        new_account(),
        env.permit2,
    )
    with reverts_with("InvalidSigner()"):
        env.settle(forged, 100)
    assert env.usdc.balanceOf(env.payee) == 100


def test_transfer_failures_revert_with_permit2s_reason(env: Env) -> None:
    poor = new_account()
    p = sign(
        make_permit(poor.address, env.usdc, 100, env.upto, env.payee, facilitator=env.facilitator),
        poor,
        env.permit2,
    )
    with pytest.raises(boa.BoaError, match="TRANSFER_FROM_FAILED"):
        env.settle(p, 100)


def test_contract_wallet_owner_signs_through_erc1271(env: Env) -> None:
    owner = new_account()
    template = deploy_wallet("SmartAccount")
    factory = deploy_wallet("SmartAccountFactory", template.address, env.permit2.address)
    wallet = factory.createAccount(owner.address, env.usdc.address, b"\1" * 32)
    assert env.usdc.allowance(wallet, env.permit2.address) == MAX
    env.fund(wallet, 500)
    p = sign(
        make_permit(wallet, env.usdc, 300, env.upto, env.payee, facilitator=env.facilitator),
        owner,
        env.permit2,
    )
    p.signature += b"wallet metadata"  # ERC-1271 signatures need not be 65 bytes
    env.settle(p, 120)
    assert env.usdc.balanceOf(env.payee) == 120
    stranger = sign(
        make_permit(wallet, env.usdc, 300, env.upto, env.payee, facilitator=env.facilitator),
        new_account(),
        env.permit2,
    )
    with reverts_with("InvalidContractSignature()"):
        env.settle(stranger, 120)


# ---- exact proxy --------------------------------------------------------------------------
def test_exact_proxy_moves_the_permitted_amount_for_anyone(env: Env) -> None:
    p = sign(
        make_permit(env.payer.address, env.usdc, 250, env.exact, env.payee, facilitator=None),
        env.payer,
        env.permit2,
    )
    with boa.env.prank(str(boa.env.generate_address("anyone"))):
        env.exact.settle(p.permit, p.owner, p.witness, p.signature)
    assert env.usdc.balanceOf(env.payee) == 250
    with reverts_with("InvalidNonce()"):
        env.exact.settle(p.permit, p.owner, p.witness, p.signature)
    upto_signed = env.upto_permit(250)  # an upto permit is not an exact one
    with reverts_with("InvalidSigner()"):
        env.exact.settle(
            upto_signed.permit, upto_signed.owner, (env.payee, 0), upto_signed.signature
        )


# ---- EIP-2612 in the same transaction -----------------------------------------------------
def test_settle_with_permit_approves_permit2_in_the_same_transaction(env: Env) -> None:
    fresh = new_account()
    env.fund(fresh.address, 1000)
    now = boa.env.evm.patch.timestamp
    approval = sign_permit(env.usdc, fresh, env.permit2.address, 1000, 0, now + 600)
    p = sign(
        make_permit(
            fresh.address, env.usdc, 1000, env.upto, env.payee, facilitator=env.facilitator
        ),
        fresh,
        env.permit2,
    )
    args = (1000, now + 600, approval[:32], approval[32:64], approval[64])
    with boa.env.prank(env.facilitator):
        env.upto.settleWithPermit(args, p.permit, 700, p.owner, p.witness, p.signature)
    assert env.usdc.balanceOf(env.payee) == 700
    assert type(env.upto.get_logs()[-1]).__name__ == "SettledWithPermit"
    q = sign(
        make_permit(fresh.address, env.usdc, 300, env.upto, env.payee, facilitator=env.facilitator),
        fresh,
        env.permit2,
    )
    with boa.env.prank(env.facilitator), reverts_with("Permit2612AmountMismatch()"):
        env.upto.settleWithPermit(args, q.permit, 300, q.owner, q.witness, q.signature)


def test_a_failing_eip2612_permit_is_reported_not_fatal(env: Env) -> None:
    """The payer approved Permit2 already; a stale permit fails, the settlement goes on."""
    now = boa.env.evm.patch.timestamp
    p = sign(
        make_permit(env.payer.address, env.usdc, 100, env.exact, env.payee, facilitator=None),
        env.payer,
        env.permit2,
    )
    bad = (100, now + 600, b"\1" * 32, b"\2" * 32, 27)
    env.exact.settleWithPermit(bad, p.permit, p.owner, p.witness, p.signature)
    assert env.usdc.balanceOf(env.payee) == 100
    names = [type(log).__name__ for log in env.exact.get_logs()]
    assert "EIP2612PermitFailedWithReason" in names and names[-1] == "SettledWithPermit"


# ---- properties -----------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(
    nonces=st.lists(
        st.integers(min_value=0, max_value=2**256 - 1), min_size=1, max_size=6, unique=True
    )
)
def test_each_nonce_is_its_own_bit(nonces: list[int]) -> None:
    permit2 = deploy("Permit2")
    owner = boa.env.generate_address("owner")
    for n in nonces:
        with boa.env.prank(owner):
            permit2.invalidateUnorderedNonces(n >> 8, 1 << (n & 255))
    for n in nonces:
        assert permit2.nonceBitmap(owner, n >> 8) >> (n & 255) & 1 == 1
    words = {n >> 8 for n in nonces}
    assert sum(bin(permit2.nonceBitmap(owner, w)).count("1") for w in words) == len(nonces)
