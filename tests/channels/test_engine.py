"""The seller's channel engine on the embedded chain: deposits, vouchers, every rejection path
(nothing changes on a rejection), handler failure, concurrency on one channel, durability across
restarts, and the claim loop (threshold and withdrawal-triggered claims)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from channel_helpers import crash_image
from eth_account import Account

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import (
    ChannelContracts,
    ChannelEngine,
    ChannelInputError,
    ChannelStore,
    ChannelTerms,
    VoucherRejected,
    wire,
)
from agentbazaar.channels.settlement import ClaimLoop, ClaimPolicy
from agentbazaar.testing import ChannelPayer, LocalWorld

PRICE = 1_000
DEPOSIT = 50_000


def make_engine(d: LocalWorld, path: Path) -> tuple[ChannelEngine, ChannelContracts]:
    authorizer = dev_account(2)
    contracts = ChannelContracts(d.chain, authorizer)
    terms = ChannelTerms(
        chain_id=d.chain.chain_id,
        receiver=dev_account(4).address,
        receiver_authorizer=authorizer.address,
        token=d.usdc.address,
    )
    return ChannelEngine(ChannelStore(path), terms, chain=contracts), contracts


async def pay(
    engine: ChannelEngine, payer: ChannelPayer, payload: dict[str, Any], price: int = PRICE
) -> None:
    ticket = await engine.begin(payload, price)
    extra = await engine.commit(ticket)
    payer.charged = int(extra["channelState"]["chargedCumulativeAmount"])


async def open_channel(
    d: LocalWorld, engine: ChannelEngine, *, account_index: int = 1
) -> ChannelPayer:
    account = dev_account(account_index)
    d.mint(account.address, 10**9)
    payer = ChannelPayer(account, engine.terms)
    await pay(engine, payer, payer.deposit(PRICE, DEPOSIT, valid_before=d.chain.timestamp() + 3600))
    return payer


@pytest.fixture
def seller(embedded: LocalWorld, tmp_path: Path) -> Any:
    engine, contracts = make_engine(embedded, tmp_path / "seller.db")
    yield embedded, engine, contracts
    engine.store.close()


def test_deposit_then_vouchers_and_state_survives_restart(seller: Any, tmp_path: Path) -> None:
    d, engine, contracts = seller

    async def go() -> ChannelPayer:
        payer = await open_channel(d, engine)
        for _ in range(9):
            await pay(engine, payer, payer.next_voucher(PRICE))
        return payer

    payer = asyncio.run(go())
    rec = engine.record(payer.cid)
    assert rec is not None
    assert (rec.charged, rec.signed_max, rec.balance) == (10 * PRICE, 10 * PRICE, DEPOSIT)
    assert contracts.state(payer.cid).balance == DEPOSIT
    engine.store.close()
    again = ChannelEngine(ChannelStore(tmp_path / "seller.db"), engine.terms)
    assert again.record(payer.cid) == rec
    again.store.close()


def test_rejections_change_nothing(seller: Any) -> None:
    d, engine, _ = seller

    async def go() -> None:
        payer = await open_channel(d, engine)
        before = engine.record(payer.cid)
        stranger = Account.create()
        cases: list[tuple[dict[str, Any], str]] = [
            (payer.voucher(2 * PRICE, key=stranger), wire.ERR_INVALID_VOUCHER_SIGNATURE),
            (payer.voucher(PRICE), wire.ERR_CUMULATIVE_AMOUNT_MISMATCH),  # replay
            (payer.voucher(3 * PRICE), wire.ERR_CUMULATIVE_AMOUNT_MISMATCH),  # skips ahead
        ]
        wrong_id = payer.next_voucher(PRICE)
        wrong_id["voucher"]["channelId"] = "0x" + "11" * 32
        cases.append((wrong_id, wire.ERR_CHANNEL_ID_MISMATCH))
        for field, value, reason in (
            ("receiver", stranger.address, wire.ERR_RECEIVER_MISMATCH),
            ("token", stranger.address, wire.ERR_TOKEN_MISMATCH),
            ("withdrawDelay", 86_400, wire.ERR_WITHDRAW_DELAY_MISMATCH),
        ):
            bad = payer.next_voucher(PRICE)
            bad["channelConfig"][field] = value
            cases.append((bad, reason))
        for payload, reason in cases:
            with pytest.raises(VoucherRejected) as info:
                await engine.begin(payload, PRICE)
            assert info.value.reason == reason
        # above the channel balance: a price that the deposit cannot cover
        with pytest.raises(VoucherRejected) as info:
            await engine.begin(payer.voucher(PRICE + DEPOSIT), DEPOSIT)
        assert info.value.reason == wire.ERR_CUMULATIVE_EXCEEDS_BALANCE
        garbage: list[Any] = [
            None,
            {"type": "voucher"},
            {"type": "refund"},
            {**payer.next_voucher(PRICE), "channelConfig": {"payer": "0x12"}},
            {**payer.next_voucher(PRICE), "voucher": {"channelId": "0xzz"}},
        ]
        neg = payer.next_voucher(PRICE)
        neg["voucher"]["maxClaimableAmount"] = "-5"
        huge = payer.next_voucher(PRICE)
        huge["voucher"]["maxClaimableAmount"] = str(2**128)
        badsig = payer.next_voucher(PRICE)
        badsig["voucher"]["signature"] = "0xnothex"
        for payload in [*garbage, neg, huge, badsig]:
            with pytest.raises(ChannelInputError):
                await engine.begin(payload, PRICE)
        assert engine.record(payer.cid) == before
        await pay(engine, payer, payer.next_voucher(PRICE))  # the channel still works
        assert payer.charged == 2 * PRICE

    asyncio.run(go())


def test_corrective_state_lets_a_buyer_resynchronise(seller: Any) -> None:
    d, engine, _ = seller

    async def go() -> None:
        payer = await open_channel(d, engine)
        await pay(engine, payer, payer.next_voucher(PRICE))
        payer.charged = 0  # the buyer lost its local state
        with pytest.raises(VoucherRejected):
            await engine.begin(payer.next_voucher(PRICE), PRICE)
        extra = engine.corrective_extra(payer.cid)
        assert extra is not None
        assert extra["channelState"]["chargedCumulativeAmount"] == str(2 * PRICE)
        proof = extra["voucherState"]
        digest_ok = payer.voucher(int(proof["signedMaxClaimable"]))["voucher"]["signature"]
        assert proof["signature"] == digest_ok  # the seller proves it with the buyer's own voucher
        payer.charged = int(extra["channelState"]["chargedCumulativeAmount"])
        await pay(engine, payer, payer.next_voucher(PRICE))
        assert payer.charged == 3 * PRICE

    asyncio.run(go())


def test_handler_failure_charges_nothing_and_dynamic_price(seller: Any) -> None:
    d, engine, _ = seller

    async def go() -> None:
        payer = await open_channel(d, engine)
        voucher = payer.next_voucher(PRICE)

        async def broken() -> None:
            raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError):
            await engine.pay(voucher, PRICE, broken)
        assert engine.record(payer.cid).charged == PRICE  # type: ignore[union-attr]
        ticket = await engine.begin(voucher, PRICE)  # the same voucher is good for a retry
        extra = await engine.commit(ticket, charge=400)  # the actual cost was lower
        assert extra["chargedAmount"] == "400"
        payer.charged = int(extra["channelState"]["chargedCumulativeAmount"])
        assert payer.charged == PRICE + 400
        await pay(engine, payer, payer.next_voucher(PRICE))
        assert payer.charged == 2 * PRICE + 400

    asyncio.run(go())


def test_concurrent_requests_on_one_channel_are_serialised(seller: Any) -> None:
    d, engine, _ = seller
    n = 20

    async def go() -> list[int]:
        payer = await open_channel(d, engine)
        base = payer.charged
        accepted: list[int] = []

        async def request(k: int) -> None:
            payload = payer.voucher(base + k * PRICE)
            while True:
                try:
                    ticket = await engine.begin(payload, PRICE)
                except VoucherRejected:
                    await asyncio.sleep(0)  # not its turn yet: the seller has not charged k-1
                    continue
                await asyncio.sleep(random.random() / 1000)  # the handler
                await engine.commit(ticket)
                accepted.append(k)
                return

        order = list(range(1, n + 1))
        random.shuffle(order)
        await asyncio.gather(*(request(k) for k in order))
        return accepted

    accepted = asyncio.run(go())
    assert accepted == list(range(1, n + 1))
    [rec] = engine.records()
    assert rec.charged == (n + 1) * PRICE


def test_claim_loop_threshold_and_withdrawal(seller: Any) -> None:
    d, engine, contracts = seller
    loop = ClaimLoop(engine, contracts, ClaimPolicy(threshold=5 * PRICE, period_s=3600))

    async def go() -> None:
        a = await open_channel(d, engine, account_index=1)
        b = await open_channel(d, engine, account_index=3)
        for _ in range(5):
            await pay(engine, a, a.next_voucher(PRICE))
        report = await loop.tick()
        assert report.claimed == [a.cid]  # b is below the threshold and not in a hurry
        assert contracts.state(a.cid).total_claimed == 6 * PRICE
        assert d.balance(engine.terms.receiver) == 6 * PRICE
        # b's payer starts a timed withdrawal: the seller claims at once
        cfg = b.config.as_tuple()
        d.chain.transact(b.account, contracts.escrow.functions.initiateWithdraw(cfg, 10_000))
        report = await loop.tick()
        assert report.urgent == {b.cid} and report.claimed == [b.cid]
        assert contracts.state(b.cid).total_claimed == PRICE
        rec = engine.record(b.cid)
        assert rec is not None and rec.withdraw_requested_at > 0
        assert d.balance(engine.terms.receiver) == 7 * PRICE
        # the payer finalizes after the delay: the next pass mirrors the smaller balance, and a
        # voucher the channel can no longer cover is refused
        tester = d.chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        tester.time_travel(d.chain.timestamp() + 901)
        d.chain.transact(b.account, contracts.escrow.functions.finalizeWithdraw(cfg))
        await loop.tick()
        rec = engine.record(b.cid)
        assert rec is not None and rec.balance == DEPOSIT - 10_000
        await pay(engine, b, b.next_voucher(PRICE))  # still covered
        ceiling = DEPOSIT - 5_000  # above the new balance, below the old one
        with pytest.raises(VoucherRejected) as info:
            await engine.begin(b.voucher(ceiling), ceiling - b.charged)
        assert info.value.reason == wire.ERR_CUMULATIVE_EXCEEDS_BALANCE

    asyncio.run(go())


@pytest.mark.parametrize("fsync", [True, False])
def test_store_commits_are_visible_after_reopen(tmp_path: Path, fsync: bool) -> None:
    from eth_account import Account as Acct

    from agentbazaar.channels import ChannelConfig, ChannelRecord
    from agentbazaar.channels import _crypto as cx

    a = Acct.create().address
    cfg = ChannelConfig(a, a, a, a, a, 900, bytes(32))
    rec = ChannelRecord(cx.channel_id(bytes(32), cfg), cfg, charged=7, balance=2**127)
    store = ChannelStore(tmp_path / "s.db", fsync=fsync)

    async def go() -> None:
        await asyncio.gather(*(store.commit(rec.evolve(charged=k)) for k in range(1, 50)))
        await store.commit(rec.evolve(charged=2**128 - 1))  # uint128 max survives as text

    asyncio.run(go())
    store.close()
    again = ChannelStore(tmp_path / "s.db")
    assert again.get(rec.channel_id) == rec.evolve(charged=2**128 - 1)
    again.close()


WALLET_1271 = """
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


def test_smart_wallet_payer_is_verified_through_erc1271(seller: Any) -> None:
    import os

    import vyper
    from eth_account import Account as Acct

    from agentbazaar.channels import ChannelConfig
    from agentbazaar.channels import _crypto as cx

    d, engine, contracts = seller
    owner = Acct.create()
    out = vyper.compile_code(WALLET_1271, output_formats=["abi", "bytecode"])
    wallet, _ = d.chain.deploy(
        dev_account(0), out["abi"], bytes.fromhex(out["bytecode"][2:]), owner.address
    )
    d.mint(wallet.address, 10**9)
    t = engine.terms
    cfg = ChannelConfig(
        wallet.address,
        cx.ZERO_ADDRESS,
        t.receiver,
        t.receiver_authorizer,
        t.token,
        900,
        os.urandom(32),
    )
    cid = cx.channel_id(engine.domain, cfg)

    def voucher(ceiling: int, key: bytes) -> dict[str, Any]:
        sig = cx.sign(key, cx.voucher_digest(engine.domain, cid, ceiling))
        return {
            "type": "voucher",
            "channelConfig": cfg.to_wire(),
            "voucher": {
                "channelId": "0x" + cid.hex(),
                "maxClaimableAmount": str(ceiling),
                "signature": "0x" + sig.hex(),
            },
        }

    salt = os.urandom(32)
    valid_before = d.chain.timestamp() + 3600
    digest = cx.receive_authorization_digest(
        cx.token_domain(d.chain.chain_id, t.token, "USD Coin", "2"),
        wallet.address,
        wire.ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        DEPOSIT,
        0,
        valid_before,
        cx.deposit_nonce(cid, salt),
    )
    first = voucher(PRICE, bytes(owner.key))
    first["type"] = "deposit"
    first["deposit"] = {
        "amount": str(DEPOSIT),
        "authorization": {
            "erc3009Authorization": {
                "validAfter": "0",
                "validBefore": str(valid_before),
                "salt": "0x" + salt.hex(),
                "signature": "0x" + cx.sign(bytes(owner.key), digest).hex(),
            }
        },
    }

    async def go() -> None:
        await engine.commit(await engine.begin(first, PRICE))
        for k in (2, 3):
            await engine.commit(await engine.begin(voucher(k * PRICE, bytes(owner.key)), PRICE))
        with pytest.raises(VoucherRejected) as info:
            await engine.begin(voucher(4 * PRICE, bytes(Acct.create().key)), PRICE)
        assert info.value.reason == wire.ERR_INVALID_VOUCHER_SIGNATURE

    asyncio.run(go())
    rec = engine.record(cid)
    assert rec is not None and (rec.charged, rec.balance) == (3 * PRICE, DEPOSIT)
    contracts.claim([rec])  # the contract agrees: ERC-1271 on chain
    assert contracts.state(cid).total_claimed == 3 * PRICE


def test_a_charge_pending_after_a_crash_is_claimed_only_once_the_buyer_settles_it(
    seller: Any, tmp_path: Path
) -> None:
    """kill -9 after the 4th request's charge reached the disk, before its response left: on
    restart that charge is pending. A claim takes only the three acknowledged ones; the buyer,
    who never saw the 4th response, pays from 3 charges and that pending charge pays for it
    (charged stays 4, not 5); then it is claimed like any other."""
    d, engine, contracts = seller

    async def before_crash() -> ChannelPayer:
        payer = await open_channel(d, engine)
        for _ in range(2):
            await pay(engine, payer, payer.next_voucher(PRICE))
        ticket = await engine.begin(payer.next_voucher(PRICE), PRICE)
        assert ticket.durable is not None
        await ticket.durable  # on disk; the process dies before the response
        return payer

    payer = asyncio.run(before_crash())
    image = crash_image(engine.store, tmp_path / "crash")
    restarted = ChannelEngine(ChannelStore(image), engine.terms, chain=contracts)
    try:
        rec = restarted.record(payer.cid)
        assert rec is not None and (rec.charged, rec.pending) == (4 * PRICE, PRICE)
        claims = ClaimLoop(restarted, contracts, ClaimPolicy(settle=False))
        asyncio.run(claims.tick(force=True))
        assert contracts.state(payer.cid).total_claimed == 3 * PRICE
        assert payer.charged == 3 * PRICE
        asyncio.run(pay(restarted, payer, payer.next_voucher(PRICE)))  # the 4th, retried
        rec = restarted.record(payer.cid)
        assert rec is not None and (rec.charged, rec.pending) == (4 * PRICE, 0)
        assert payer.charged == 4 * PRICE
        asyncio.run(claims.tick(force=True))
        assert contracts.state(payer.cid).total_claimed == 4 * PRICE
    finally:
        restarted.store.close()


def test_a_pending_charge_is_claimed_when_the_payer_starts_to_withdraw(
    seller: Any, tmp_path: Path
) -> None:
    """The buyer leaves instead of coming back: its withdrawal makes the pending charge (a
    voucher it signed) claimable before the delay ends."""
    d, engine, contracts = seller

    async def before_crash() -> ChannelPayer:
        payer = await open_channel(d, engine)
        ticket = await engine.begin(payer.next_voucher(PRICE), PRICE)
        assert ticket.durable is not None
        await ticket.durable
        return payer

    payer = asyncio.run(before_crash())
    image = crash_image(engine.store, tmp_path / "crash")
    restarted = ChannelEngine(ChannelStore(image), engine.terms, chain=contracts)
    try:
        claims = ClaimLoop(restarted, contracts, ClaimPolicy(settle=False))
        asyncio.run(claims.tick(force=True))
        assert contracts.state(payer.cid).total_claimed == PRICE
        d.chain.transact(
            payer.account,
            contracts.escrow.functions.initiateWithdraw(payer.config.as_tuple(), DEPOSIT - PRICE),
        )
        asyncio.run(claims.tick())
        assert contracts.state(payer.cid).total_claimed == 2 * PRICE
    finally:
        restarted.store.close()
