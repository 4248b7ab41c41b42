"""BatchSettlement + ERC3009DepositCollector on titanoboa: the SDK's ABI, EIP-712 ids, the
full channel life cycle, every revert path, and conservation of funds as a stateful property."""

from __future__ import annotations

import os
from typing import Any

import boa
import pytest
from channel_helpers import collector_data, reverts_with
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from x402.mechanisms.evm.batch_settlement import abi as sdk_abi
from x402.mechanisms.evm.batch_settlement import constants as sdk_constants
from x402.mechanisms.evm.batch_settlement import errors as sdk_errors

from agentbazaar.chain.compiler import compile_contract
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels import wire
from agentbazaar.testing import STABLECOIN_ARGS, boa_deployer, sign_voucher

DAY = 86_400


def _canon(item: dict[str, Any]) -> str:
    t = str(item["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_canon(c) for c in item["components"]) + ")" + t[5:]
    return t


def _signatures(abi: list[dict[str, Any]], kind: str) -> set[str]:
    return {
        f"{e['name']}({','.join(_canon(i) for i in e['inputs'])})" for e in abi if e["type"] == kind
    }


def test_abi_selectors_and_event_topics_match_the_sdk() -> None:
    ours = compile_contract("BatchSettlement").abi
    assert _signatures(sdk_abi.BATCH_SETTLEMENT_ABI, "function") <= _signatures(ours, "function")
    assert _signatures(sdk_abi.BATCH_SETTLEMENT_ABI, "event") <= _signatures(ours, "event")
    # the reference contract's other events, by topic
    reference_events = {
        "ChannelCreated(bytes32,(address,address,address,address,address,uint40,bytes32))",
        "ChannelClosed(bytes32,(address,address,address,address,address,uint40,bytes32))",
        "Deposited(bytes32,address,uint128,uint128)",
        "Claimed(bytes32,address,uint128,uint128)",
        "Refunded(bytes32,address,uint128)",
        "WithdrawInitiated(bytes32,uint128,uint40)",
        "WithdrawFinalized(bytes32,address,uint128)",
    }
    assert reference_events <= _signatures(ours, "event")
    collector = compile_contract("ERC3009DepositCollector").abi
    assert "collect(address,address,uint256,bytes32,bytes)" in _signatures(collector, "function")


def test_wire_constants_match_the_sdk() -> None:
    assert wire.BATCH_SETTLEMENT_ADDRESS == sdk_constants.BATCH_SETTLEMENT_ADDRESS
    assert wire.ERC3009_DEPOSIT_COLLECTOR_ADDRESS == sdk_constants.ERC3009_DEPOSIT_COLLECTOR_ADDRESS
    assert cx.CHANNEL_CONFIG_TYPEHASH == sdk_constants.CHANNEL_CONFIG_TYPEHASH
    for name in dir(wire):
        if name.startswith("ERR_"):
            assert getattr(wire, name) == getattr(sdk_errors, name), name


class Escrow:
    """A token, the escrow and its collector on titanoboa, with a payer and a receiver."""

    def __init__(self) -> None:
        self.usdc = boa_deployer("Stablecoin").deploy(*STABLECOIN_ARGS)
        self.escrow = boa_deployer("BatchSettlement").deploy()
        self.collector = boa_deployer("ERC3009DepositCollector").deploy(self.escrow.address)
        self.chain_id = int(self.escrow.eip712Domain()[3])
        self.domain = cx.domain_separator(self.chain_id, str(self.escrow.address))
        self.payer: LocalAccount = Account.create()
        self.receiver = to_checksum_address(str(boa.env.generate_address("receiver")))
        self.authorizer: LocalAccount = Account.create()
        self.relayer = boa.env.generate_address("relayer")
        self.usdc.mint(self.payer.address, 10**15)
        self.config = self.make_config()
        self.cid = cx.channel_id(self.domain, self.config)

    def make_config(self, delay: int = 900, salt: bytes | None = None) -> cx.ChannelConfig:
        return cx.ChannelConfig(
            payer=self.payer.address,
            payer_authorizer=self.payer.address,
            receiver=self.receiver,
            receiver_authorizer=self.authorizer.address,
            token=to_checksum_address(str(self.usdc.address)),
            withdraw_delay=delay,
            salt=salt or os.urandom(32),
        )

    def deposit(self, amount: int, config: cx.ChannelConfig | None = None) -> None:
        config = config or self.config
        data = collector_data(
            self.payer,
            token=str(self.usdc.address),
            chain_id=self.chain_id,
            collector=str(self.collector.address),
            channel_id=cx.channel_id(self.domain, config),
            amount=amount,
            valid_before=boa.env.timestamp + 3600,
        )
        with boa.env.prank(self.relayer):
            self.escrow.deposit(config.as_tuple(), amount, self.collector.address, data)

    def claim_row(self, ceiling: int, total: int, signer: LocalAccount | None = None) -> Any:
        sig = sign_voucher(signer or self.payer, self.domain, self.cid, ceiling)
        return ((self.config.as_tuple(), ceiling), sig, total)

    def claim(self, ceiling: int, total: int, signer: LocalAccount | None = None) -> None:
        with boa.env.prank(self.receiver):
            self.escrow.claim([self.claim_row(ceiling, total, signer)])

    def state(self) -> tuple[int, int]:
        balance, claimed = self.escrow.channels(self.cid)
        return int(balance), int(claimed)

    def pay(self, who: str) -> Any:
        return boa.env.prank(who)


@pytest.fixture
def e() -> Escrow:
    return Escrow()


def test_channel_id_and_digests_match_python(e: Escrow) -> None:
    assert bytes(e.escrow.getChannelId(e.config.as_tuple())) == e.cid
    assert bytes(e.escrow.getVoucherDigest(e.cid, 1234)) == cx.voucher_digest(e.domain, e.cid, 1234)
    assert bytes(e.escrow.getRefundDigest(e.cid, 3, 99)) == cx.refund_digest(e.domain, e.cid, 3, 99)
    rows = [e.claim_row(10, 5), e.claim_row(20, 20)]
    expected = cx.claim_batch_digest(e.domain, [(e.cid, 10, 5), (e.cid, 20, 20)])
    assert bytes(e.escrow.getClaimBatchDigest(rows)) == expected


def test_life_cycle_deposit_claim_settle_refund_withdraw(e: Escrow) -> None:
    e.deposit(1_000_000)
    assert e.state() == (1_000_000, 0)
    assert e.usdc.balanceOf(e.escrow.address) == 1_000_000
    e.claim(ceiling=300_000, total=250_000)
    assert e.state() == (1_000_000, 250_000)
    e.claim(ceiling=300_000, total=250_000)  # replay: a no-op
    assert e.state() == (1_000_000, 250_000)
    e.escrow.settle(e.receiver, e.usdc.address)
    assert e.usdc.balanceOf(e.receiver) == 250_000
    e.escrow.settle(e.receiver, e.usdc.address)  # nothing left: no-op
    assert e.usdc.balanceOf(e.receiver) == 250_000
    with boa.env.prank(e.authorizer.address):
        e.escrow.refund(e.config.as_tuple(), 100_000)
    assert e.state() == (900_000, 250_000)
    assert e.escrow.refundNonce(e.cid) == 1
    with boa.env.prank(e.payer.address):
        e.escrow.initiateWithdraw(e.config.as_tuple(), 650_000)
        boa.env.time_travel(seconds=900)
        e.escrow.finalizeWithdraw(e.config.as_tuple())
    assert e.state() == (250_000, 250_000)
    assert e.usdc.balanceOf(e.payer.address) == 10**15 - 1_000_000 + 100_000 + 650_000
    assert e.usdc.balanceOf(e.escrow.address) == 0


def test_claim_with_signature_by_any_relayer(e: Escrow) -> None:
    e.deposit(5_000)
    rows = [e.claim_row(3_000, 3_000)]
    digest = cx.claim_batch_digest(e.domain, [(e.cid, 3_000, 3_000)])
    e.escrow.claimWithSignature(rows, cx.sign(bytes(e.authorizer.key), digest))
    assert e.state() == (5_000, 3_000)
    forged = cx.sign(os.urandom(32), cx.claim_batch_digest(e.domain, [(e.cid, 4_000, 4_000)]))
    with reverts_with("InvalidSignature()"):
        e.escrow.claimWithSignature([e.claim_row(4_000, 4_000)], forged)


def test_refund_with_signature_and_nonce_replay(e: Escrow) -> None:
    e.deposit(5_000)
    sig = cx.sign(bytes(e.authorizer.key), cx.refund_digest(e.domain, e.cid, 0, 2_000))
    e.escrow.refundWithSignature(e.config.as_tuple(), 2_000, 0, sig)
    assert e.state() == (3_000, 0)
    with reverts_with("InvalidRefundNonce()"):
        e.escrow.refundWithSignature(e.config.as_tuple(), 2_000, 0, sig)
    bad = cx.sign(os.urandom(32), cx.refund_digest(e.domain, e.cid, 1, 2_000))
    with reverts_with("InvalidSignature()"):
        e.escrow.refundWithSignature(e.config.as_tuple(), 2_000, 1, bad)


def test_voucher_faults_revert(e: Escrow) -> None:
    e.deposit(10_000)
    with reverts_with("InvalidSignature()"):
        e.claim(ceiling=5_000, total=5_000, signer=Account.create())  # forged voucher
    with reverts_with("ClaimExceedsCeiling()"):
        e.claim(ceiling=5_000, total=5_001)
    with reverts_with("ClaimExceedsBalance()"):
        e.claim(ceiling=20_000, total=10_001)
    with reverts_with("NotAuthorizedToClaim()"):
        e.escrow.claim([e.claim_row(5_000, 5_000)])  # a stranger
    with reverts_with("EmptyBatch()"):
        e.escrow.claim([])
    e.claim(ceiling=6_000, total=6_000)
    e.claim(ceiling=5_000, total=5_000)  # an older voucher below claimed: ignored
    assert e.state() == (10_000, 6_000)
    # a voucher for another channel does not verify against this one
    other = e.make_config()
    sig = sign_voucher(e.payer, e.domain, cx.channel_id(e.domain, other), 7_000)
    with boa.env.prank(e.receiver), reverts_with("InvalidSignature()"):
        e.escrow.claim([((e.config.as_tuple(), 7_000), sig, 7_000)])


def test_deposit_faults_revert(e: Escrow) -> None:
    for delay in (899, 2_592_001):
        with reverts_with("WithdrawDelayOutOfRange()"):
            e.deposit(1_000, e.make_config(delay=delay))
    with reverts_with("ZeroDeposit()"):
        e.escrow.deposit(e.config.as_tuple(), 0, e.collector.address, b"")
    with reverts_with("InvalidCollector()"):
        e.escrow.deposit(e.config.as_tuple(), 1, "0x" + "00" * 20, b"")
    with reverts_with("OnlyX402BatchSettlement()"):
        e.collector.collect(e.payer.address, e.usdc.address, 1, e.cid, b"")
    e.deposit(1_000, e.make_config(delay=30 * DAY))  # both bounds are inclusive
    e.deposit(1_000, e.make_config(delay=900))


def test_withdrawal_rules(e: Escrow) -> None:
    e.deposit(10_000)
    cfg = e.config.as_tuple()
    with reverts_with("InvalidChannel()"):
        e.escrow.initiateWithdraw(cfg, 1)  # not the payer
    with boa.env.prank(e.payer.address):
        with reverts_with("WithdrawAmountExceedsAvailable()"):
            e.escrow.initiateWithdraw(cfg, 10_001)
        with reverts_with("WithdrawalNotPending()"):
            e.escrow.finalizeWithdraw(cfg)
        e.escrow.initiateWithdraw(cfg, 10_000)
        with reverts_with("WithdrawalAlreadyPending()"):
            e.escrow.initiateWithdraw(cfg, 1)
        boa.env.time_travel(seconds=899)
        with reverts_with("WithdrawDelayNotElapsed()"):
            e.escrow.finalizeWithdraw(cfg)
    e.claim(ceiling=4_000, total=4_000)  # the seller claims during the grace period
    with boa.env.prank(e.payer.address):
        boa.env.time_travel(seconds=1)
        e.escrow.finalizeWithdraw(cfg)
    assert e.state() == (4_000, 4_000)  # the withdrawal was capped to the unclaimed escrow


class Conservation(RuleBasedStateMachine):
    """deposits = claimed + refunded + withdrawn + escrow, and the escrow holds exactly what
    it owes (unclaimed escrow + claimed-but-unsettled), whatever the order of operations."""

    def __init__(self) -> None:
        super().__init__()
        self.e = Escrow()
        self.deposited = self.refunded = self.withdrawn = 0
        self.signed = 0  # highest voucher the payer signed

    @rule(amount=st.integers(1, 10**9))
    def deposit(self, amount: int) -> None:
        self.e.deposit(amount)
        self.deposited += amount

    @rule(step=st.integers(0, 10**9))
    def sign_voucher(self, step: int) -> None:
        self.signed += step

    @rule(total=st.integers(0, 2 * 10**9))
    def claim(self, total: int) -> None:
        balance, claimed = self.e.state()
        total = min(total, self.signed)
        if total > balance:
            with reverts_with("ClaimExceedsBalance()") if total > claimed else _noop():
                self.e.claim(self.signed, total)
            return
        self.e.claim(self.signed, total)
        assert self.e.state()[1] == max(claimed, total)

    @rule()
    def settle(self) -> None:
        self.e.escrow.settle(self.e.receiver, self.e.usdc.address)

    @rule(amount=st.integers(1, 10**9))
    def refund(self, amount: int) -> None:
        balance, claimed = self.e.state()
        with boa.env.prank(self.e.receiver):
            self.e.escrow.refund(self.e.config.as_tuple(), amount)
        self.refunded += min(amount, balance - claimed)

    @precondition(lambda self: self.e.state()[0] > self.e.state()[1])
    @rule(amount=st.integers(1, 10**9), wait=st.integers(0, 2_000))
    def withdraw(self, amount: int, wait: int) -> None:
        balance, claimed = self.e.state()
        amount = min(amount, balance - claimed)
        cfg = self.e.config.as_tuple()
        with boa.env.prank(self.e.payer.address):
            self.e.escrow.initiateWithdraw(cfg, amount)
            boa.env.time_travel(seconds=wait)
            if wait < 900:
                with reverts_with("WithdrawDelayNotElapsed()"):
                    self.e.escrow.finalizeWithdraw(cfg)
                boa.env.time_travel(seconds=900 - wait)
            before = self.e.state()
            self.e.escrow.finalizeWithdraw(cfg)
        self.withdrawn += before[0] - self.e.state()[0]

    @invariant()
    def funds_are_conserved(self) -> None:
        balance, claimed = self.e.state()
        escrow_left = balance - claimed
        assert self.deposited == claimed + self.refunded + self.withdrawn + escrow_left
        owed_to_receiver = claimed - int(
            self.e.escrow.receivers(self.e.receiver, self.e.usdc.address)[1]
        )
        assert self.e.usdc.balanceOf(self.e.escrow.address) == escrow_left + owed_to_receiver
        assert self.e.usdc.balanceOf(self.e.receiver) == claimed - owed_to_receiver


class _noop:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


TestConservation = Conservation.TestCase
TestConservation.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)


ERC1271_WALLET = """
# pragma version ~=0.4.3
owner: public(address)

@deploy
def __init__(owner_: address):
    self.owner = owner_

@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[1024]) -> bytes4:
    if len(signature) != 65:
        return 0xffffffff
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if ecrecover(digest, v, r, s) == self.owner:
        return 0x1626ba7e
    return 0xffffffff
"""


def test_smart_wallet_payer_via_erc1271(e: Escrow) -> None:
    """payerAuthorizer = 0: vouchers (and the ERC-3009 deposit) are checked against the payer
    contract's isValidSignature."""
    owner: LocalAccount = Account.create()
    wallet = boa.loads(ERC1271_WALLET, owner.address)
    e.usdc.mint(wallet.address, 10_000)
    e.payer = owner  # signs for the wallet
    cfg = cx.ChannelConfig(
        payer=to_checksum_address(str(wallet.address)),
        payer_authorizer=cx.ZERO_ADDRESS,
        receiver=e.receiver,
        receiver_authorizer=e.authorizer.address,
        token=to_checksum_address(str(e.usdc.address)),
        withdraw_delay=900,
        salt=os.urandom(32),
    )
    cid = cx.channel_id(e.domain, cfg)
    data = collector_data(
        owner,
        token=str(e.usdc.address),
        chain_id=e.chain_id,
        collector=str(e.collector.address),
        channel_id=cid,
        amount=10_000,
        valid_before=boa.env.timestamp + 3600,
        payer_address=str(wallet.address),
    )
    e.escrow.deposit(cfg.as_tuple(), 10_000, e.collector.address, data)
    assert e.escrow.channels(cid) == (10_000, 0)
    good = sign_voucher(owner, e.domain, cid, 4_000)
    with boa.env.prank(e.receiver):
        e.escrow.claim([((cfg.as_tuple(), 4_000), good, 4_000)])
        assert e.escrow.channels(cid) == (10_000, 4_000)
        forged = sign_voucher(Account.create(), e.domain, cid, 5_000)
        with reverts_with("InvalidSignature()"):
            e.escrow.claim([((cfg.as_tuple(), 5_000), forged, 5_000)])
