"""Spending policy through ``Wallet.spend``: each limit, the rolling window, approval, idempotency,
and concurrent spends (threads and processes) that together exceed the budget."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wallet_helpers import USDC_ADDRESS, Clock

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import (
    AmountError,
    ApprovalRequired,
    ConfigError,
    LedgerError,
    PolicyViolation,
)
from agentbazaar.tokens import Token
from agentbazaar.wallet import (
    Ledger,
    PolicyStore,
    Spend,
    SpendingPolicy,
    SpendRequest,
    Wallet,
    reconcile,
)
from agentbazaar.wallet.policy import default_policy

BOB = dev_account(2).address
CAROL = dev_account(3).address
DOMAIN = {"name": "Test", "version": "1", "chainId": 31337, "verifyingContract": USDC_ADDRESS}
TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Pay": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
}


def usdc_policy(**limits: int | None) -> SpendingPolicy:
    return SpendingPolicy().with_limits(USDC_ADDRESS, "USDC", 6, **limits)


def pay(
    wallet: Wallet, token: Token, amount: int, to: str = BOB, key: str | None = None, **kw: Any
) -> Spend:
    with wallet.spend(
        kind="x402", token=token, amount=amount, counterparty=to, idempotency_key=key, **kw
    ) as spend:
        if not spend.replayed:
            spend.sign_typed_data(DOMAIN, TYPES, {"to": to, "value": amount})
        return spend


def counted(ledger: Ledger, wallet: str = "alice") -> int:
    return ledger.spent_in_window(wallet, USDC_ADDRESS.lower(), 86_400)


def test_max_per_payment(make_wallet: Callable[..., Wallet], usdc_token: Token) -> None:
    wallet = make_wallet(usdc_policy(max_per_payment=5_000_000))
    pay(wallet, usdc_token, 5_000_000)
    with pytest.raises(PolicyViolation) as err:
        pay(wallet, usdc_token, 5_000_001)
    assert err.value.fields["rule"] == "max_per_payment"
    assert "5.000001 USDC" in str(err.value) and "5 USDC" in str(err.value)
    assert [r.amount for r in wallet.ledger.records()] == [5_000_000]


def test_counterparty_lists(make_wallet: Callable[..., Wallet], usdc_token: Token) -> None:
    wallet = make_wallet(SpendingPolicy().with_counterparties(allow=(BOB,), deny=(CAROL,)))
    pay(wallet, usdc_token, 1)
    with pytest.raises(PolicyViolation) as err:
        pay(wallet, usdc_token, 1, to=CAROL)
    assert err.value.fields["rule"] == "deny"
    with pytest.raises(PolicyViolation) as err:
        pay(wallet, usdc_token, 1, to=dev_account(4).address)
    assert err.value.fields["rule"] == "allow"
    assert wallet.ledger.count() == 1


def test_unlisted_tokens_can_be_refused(
    make_wallet: Callable[..., Wallet], usdc_token: Token
) -> None:
    policy = SpendingPolicy(unlisted_tokens="deny").with_limits(USDC_ADDRESS, "USDC", 6)
    wallet = make_wallet(policy)
    pay(wallet, usdc_token, 10)
    with pytest.raises(PolicyViolation):
        pay(wallet, Token("DAI", 18, "0x" + "cd" * 20), 10)
    with pytest.raises(PolicyViolation):
        pay(wallet, None, 10)  # type: ignore[arg-type]


def test_rolling_window(
    make_wallet: Callable[..., Wallet], usdc_token: Token, clock: Clock
) -> None:
    wallet = make_wallet(usdc_policy(daily=50))
    pay(wallet, usdc_token, 30)
    clock.now += 3_600
    pay(wallet, usdc_token, 20)
    with pytest.raises(PolicyViolation) as err:
        pay(wallet, usdc_token, 1)
    assert err.value.fields == {"rule": "daily", "amount": 1, "limit": 50, "spent": 50}
    clock.now += 86_400 - 3_600  # the first spend is now exactly 24 h old: out of the window
    pay(wallet, usdc_token, 30)
    with pytest.raises(PolicyViolation):
        pay(wallet, usdc_token, 1)
    clock.now += 3_600
    pay(wallet, usdc_token, 20)
    assert counted(wallet.ledger) == 50


def test_failed_spends_are_released(make_wallet: Callable[..., Wallet], usdc_token: Token) -> None:
    wallet = make_wallet(usdc_policy(daily=50))
    with pytest.raises(RuntimeError):
        with wallet.spend(kind="x402", token=usdc_token, amount=40, counterparty=BOB):
            assert counted(wallet.ledger) == 40  # reserved before the block runs
            raise RuntimeError("the server went away")
    assert counted(wallet.ledger) == 0
    with wallet.spend(kind="x402", token=usdc_token, amount=40, counterparty=BOB):
        pass  # nothing signed: released on exit
    assert counted(wallet.ledger) == 0
    pay(wallet, usdc_token, 50)
    assert [r.status for r in wallet.ledger.records()] == ["failed", "failed", "signed"]


def test_approval_flag_and_callback(make_wallet: Callable[..., Wallet], usdc_token: Token) -> None:
    wallet = make_wallet(usdc_policy(approve_above=2_000_000))
    pay(wallet, usdc_token, 2_000_000)  # at the threshold: no approval needed
    with pytest.raises(ApprovalRequired):
        pay(wallet, usdc_token, 2_000_001)
    seen: list[SpendRequest] = []

    def no(req: SpendRequest) -> bool:
        seen.append(req)
        return False

    with pytest.raises(ApprovalRequired):
        pay(wallet, usdc_token, 3_000_000, approve=no)
    assert seen[0].amount == 3_000_000 and seen[0].counterparty == BOB
    assert wallet.ledger.count() == 1
    pay(wallet, usdc_token, 3_000_000, approve=True)
    pay(wallet, usdc_token, 3_000_000, approve=lambda req: req.amount <= 3_000_000)
    wallet.approver = lambda req: True  # a wallet-wide approver
    pay(wallet, usdc_token, 4_000_000)
    assert counted(wallet.ledger) == 12_000_000


def test_idempotent_retry(make_wallet: Callable[..., Wallet], usdc_token: Token) -> None:
    wallet = make_wallet(usdc_policy(daily=100))
    first = pay(wallet, usdc_token, 60, key="order-1")
    again = pay(wallet, usdc_token, 60, key="order-1")
    assert not first.replayed and again.replayed
    assert again.payload == first.payload and again.payload is not None
    assert again.payload["signature"].startswith("0x")
    assert counted(wallet.ledger) == 60
    with pytest.raises(LedgerError):  # the key names one spend
        pay(wallet, usdc_token, 61, key="order-1")
    with pytest.raises(LedgerError):
        with wallet.spend(
            kind="x402", token=usdc_token, amount=60, counterparty=BOB, idempotency_key="order-1"
        ) as spend:
            spend.sign_typed_data(DOMAIN, TYPES, {"to": BOB, "value": 60})  # never twice
    assert wallet.ledger.count() == 1 and counted(wallet.ledger) == 60


def test_retry_after_failure_reuses_the_key(
    make_wallet: Callable[..., Wallet], usdc_token: Token
) -> None:
    wallet = make_wallet(usdc_policy(daily=100))
    with pytest.raises(RuntimeError):
        with wallet.spend(
            kind="x402", token=usdc_token, amount=70, counterparty=BOB, idempotency_key="k"
        ):
            raise RuntimeError("boom")
    spend = pay(wallet, usdc_token, 70, key="k")
    assert not spend.replayed and spend.record.attempts == 2
    assert counted(wallet.ledger) == 70 and wallet.ledger.count() == 1


def test_bad_amounts_are_refused(make_wallet: Callable[..., Wallet], usdc_token: Token) -> None:
    wallet = make_wallet()
    for bad in (1.5, 0, -3, True, "5"):
        with pytest.raises(AmountError):
            pay(wallet, usdc_token, bad)  # type: ignore[arg-type]
    assert wallet.ledger.count() == 0


def test_policy_file_round_trip(tmp_path: Path) -> None:
    store = PolicyStore(tmp_path / "policies")
    assert store.load("alice") == SpendingPolicy()
    policy = (
        usdc_policy(max_per_payment=5, daily=2**70, approve_above=2)
        .with_limits("native", "ETH", 18, daily=10**18)
        .with_counterparties(allow=(BOB,), deny=(CAROL,))
    )
    store.save("alice", policy)
    assert store.load("alice") == policy
    text = store.path("alice").read_text()
    assert "daily = 1000000000000000000" in text and '"1180591620717411303424"' in text
    cleared = policy.with_limits(USDC_ADDRESS, "USDC", 6, daily=None)
    assert cleared.limits_for(USDC_ADDRESS).daily is None  # type: ignore[union-attr]
    store.path("alice").write_text("[tokens.USDC]\naddress = 'x'\ndecimals = 6\ndaily = 1.5\n")
    with pytest.raises(ConfigError):
        store.load("alice")


# ---- concurrency ---------------------------------------------------------------------------
def test_concurrent_threads_never_exceed_the_budget(
    make_wallet: Callable[..., Wallet], usdc_token: Token
) -> None:
    wallet = make_wallet(usdc_policy(daily=50))
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker(i: int) -> None:
        start.wait()
        try:
            pay(wallet, usdc_token, 7, key=f"t{i}")
            result = "paid"
        except PolicyViolation:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("paid") == 7 and outcomes.count("refused") == 13
    assert counted(wallet.ledger) == 49
    assert sum(r.amount for r in wallet.ledger.records() if r.status == "signed") == 49


def _process_worker(ledger_path: str, amounts: list[int], tag: str, out: Any) -> None:
    ledger = Ledger(Path(ledger_path))
    wallet = Wallet("alice", dev_account(1), usdc_policy(daily=100), ledger)
    token = Token("USDC", 6, USDC_ADDRESS)
    paid, refused = [], []
    for i, amount in enumerate(amounts):
        try:
            pay(wallet, token, amount, key=f"{tag}-{i}")
            paid.append(amount)
        except PolicyViolation:
            refused.append(amount)
    out.put((paid, refused))


def test_concurrent_processes_never_exceed_the_budget(ledger: Ledger) -> None:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    plans = [[9, 4, 13, 6, 11], [7, 7, 7, 7, 7], [12, 3, 8, 5, 10], [6, 6, 6, 6, 6]]
    procs = [
        ctx.Process(target=_process_worker, args=(str(ledger.path), plan, f"p{n}", out))
        for n, plan in enumerate(plans)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    paid = [a for r in results for a in r[0]]
    refused = [a for r in results for a in r[1]]
    assert len(paid) + len(refused) == 20
    total = sum(paid)
    assert total <= 100
    assert all(total + r > 100 for r in refused)  # each refusal: it did not fit
    assert counted(ledger) == total
    assert sorted(r.amount for r in ledger.records() if r.status == "signed") == sorted(paid)


# ---- property: the ledger agrees with a model of the policy, step by step ------------------
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=40),  # amount
            st.integers(min_value=0, max_value=30_000),  # seconds since the previous spend
            st.booleans(),  # the payment fails before signing
        ),
        min_size=1,
        max_size=25,
    )
)
def test_budget_matches_a_model(steps: list[tuple[int, int, bool]]) -> None:
    daily, max_pay, window = 100, 30, 86_400
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        ledger = Ledger(Path(tmp) / "ledger.sqlite", clock=clock, synchronous="NORMAL")
        wallet = Wallet(
            "alice", dev_account(1), usdc_policy(daily=daily, max_per_payment=max_pay), ledger
        )
        token = Token("USDC", 6, USDC_ADDRESS)
        model: list[tuple[float, int]] = []  # (time, amount) of what counts
        for amount, wait, fails in steps:
            clock.now += wait
            live = sum(a for t, a in model if t > clock.now - window)
            fits = amount <= max_pay and live + amount <= daily
            try:
                if fails:
                    with wallet.spend(kind="swap", token=token, amount=amount, counterparty=BOB):
                        raise RuntimeError("the swap failed")
                pay(wallet, token, amount)
                accepted = True
            except PolicyViolation:
                accepted = False
            except RuntimeError:
                accepted = True
            assert accepted == fits
            if fits and not fails:
                model.append((clock.now, amount))
            expected = sum(a for t, a in model if t > clock.now - window)
            assert ledger.spent_in_window("alice", USDC_ADDRESS.lower(), window) == expected


def _reserve_and_die(ledger_path: str, key: str) -> None:
    wallet = Wallet("alice", dev_account(1), usdc_policy(daily=100), Ledger(Path(ledger_path)))
    with wallet.spend(
        kind="x402", token=USDC_ADDRESS, amount=30, counterparty=BOB, idempotency_key=key
    ):
        os._exit(3)  # killed between the reservation and the signature


def test_abandoned_reservation_is_released(ledger: Ledger) -> None:
    ctx = multiprocessing.get_context("fork")
    for key in ("dies-1", "dies-2"):
        proc = ctx.Process(target=_reserve_and_die, args=(str(ledger.path), key))
        proc.start()
        proc.join(timeout=30)
        assert proc.exitcode == 3
    assert [r.status for r in ledger.records()] == ["reserved", "reserved"]
    assert counted(ledger) == 60
    wallet = Wallet("alice", dev_account(1), usdc_policy(daily=100), ledger)
    usdc = Token("USDC", 6, USDC_ADDRESS)
    retried = pay(wallet, usdc, 30, key="dies-2")  # a retry takes the dead reservation over
    assert not retried.replayed and retried.record.attempts == 2 and counted(ledger) == 60
    findings = reconcile(ledger, Chain.embedded())  # releases the other one
    assert [(f.idempotency_key, f.outcome, f.after) for f in findings] == [
        ("dies-1", "abandoned", "failed"),
        ("dies-2", "pending", "signed"),  # signed: never released without evidence
    ]
    assert counted(ledger) == 30
    assert ledger.release_abandoned() == []  # a signed spend is left alone


def test_look_alike_token_is_unlisted_under_the_default_policy(
    make_wallet: Callable[..., Wallet], usdc_token: Token, tmp_path: Path
) -> None:
    """A token that calls itself USDC at another address gets none of USDC's limits: the default
    policy refuses it (unlisted), and limits for both survive the policy file, apart."""
    policy = default_policy([("USDC", USDC_ADDRESS.lower(), 6), ("ETH", "native", 18)])
    assert policy.unlisted_tokens == "deny"
    limits = policy.limits_for(USDC_ADDRESS)
    assert limits is not None and limits.max_per_payment == 100_000_000
    wallet = make_wallet(policy)
    fake = Token("USDC", 6, "0x" + "cd" * 20)
    with pytest.raises(PolicyViolation) as err:
        pay(wallet, fake, 1)
    assert err.value.fields["rule"] == "unlisted_token"
    assert not [r for r in wallet.ledger.records() if r.status != "failed"]
    pay(wallet, usdc_token, 1_000_000)  # the real one, within its limits
    both = policy.with_limits(str(fake.address), "USDC", 6, max_per_payment=5)
    store = PolicyStore(tmp_path / "policies")
    store.save("alice", both)
    again = store.load("alice")
    assert again == both
    fake_limits, real_limits = again.limits_for(str(fake.address)), again.limits_for(USDC_ADDRESS)
    assert fake_limits is not None and fake_limits.max_per_payment == 5
    assert real_limits is not None and real_limits.max_per_payment == 100_000_000
