"""Escrow in the spending policy: a channel deposit counts as escrowed (against ``max_escrow``),
never against the rolling budget; each voucher charge counts against the budget and leaves the
escrow; a refund returns escrow. Checked against a plain model over random sequences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wallet_helpers import USDC_ADDRESS, Clock

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.errors import (
    AmountError,
    ApprovalRequired,
    InputError,
    LedgerError,
    PolicyViolation,
)
from agentbazaar.tokens import Token
from agentbazaar.wallet import Ledger, PolicyStore, SpendingPolicy, Wallet

BOB = dev_account(2).address
WINDOW = 86_400
TOKEN = USDC_ADDRESS.lower()
DOMAIN = {"name": "Test", "version": "1", "chainId": 31337, "verifyingContract": USDC_ADDRESS}
TYPES = {"Pay": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}]}


def policy(**limits: int | None) -> SpendingPolicy:
    return SpendingPolicy().with_limits(USDC_ADDRESS, "USDC", 6, **limits)


def spend(wallet: Wallet, token: Token, kind: str, amount: int, *, abort: bool = False) -> None:
    with wallet.spend(kind=kind, token=token, amount=amount, counterparty=BOB) as sp:
        if abort:
            raise RuntimeError("the request failed before signing")
        sp.sign_typed_data(DOMAIN, TYPES, {"to": BOB, "value": amount})


def refund(wallet: Wallet, token: Token, amount: int, key: str) -> None:
    wallet.record_refund(token=token, amount=amount, counterparty=BOB, idempotency_key=key)


class Model:
    """What the invariant says, in plain Python."""

    def __init__(
        self, daily: int | None, max_pay: int | None, approve: int | None, cap: int | None
    ):
        self.daily, self.max_pay, self.approve, self.cap = daily, max_pay, approve, cap
        self.now = 1_000_000.0
        self.charges: list[tuple[float, int]] = []  # (created, amount) of budget spends
        self.escrowed = 0

    def used(self) -> int:
        return sum(a for t, a in self.charges if t > self.now - WINDOW)

    def payment(self, amount: int) -> str | None:
        if self.max_pay is not None and amount > self.max_pay:
            return "max_per_payment"
        if self.approve is not None and amount > self.approve:
            return "approve_above"
        if self.daily is not None and self.used() + amount > self.daily:
            return "daily"
        return None

    def apply(self, op: str, amount: int) -> str | None:
        """The refused rule, or None when accepted (then the model is updated)."""
        if op in ("transfer", "voucher", "aborted"):
            rule = self.payment(amount)
            if rule is None and op != "aborted":
                self.charges.append((self.now, amount))
                if op == "voucher":
                    self.escrowed -= amount
            return rule
        if op == "deposit":
            if self.cap is not None and self.escrowed + amount > self.cap:
                return "max_escrow"
            self.escrowed += amount
            return None
        if op == "refund":
            if amount > self.escrowed:
                return "refund"
            self.escrowed -= amount
            return None
        raise AssertionError(op)


limit = st.one_of(st.none(), st.integers(min_value=0, max_value=60))
ops = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "voucher", "deposit", "refund", "aborted", "tick"]),
        st.integers(min_value=1, max_value=40),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(daily=limit, max_pay=limit, approve=limit, cap=limit, steps=ops)
def test_escrow_and_budget_match_the_model(
    daily: int | None,
    max_pay: int | None,
    approve: int | None,
    cap: int | None,
    steps: list[tuple[str, int]],
) -> None:
    token = Token(symbol="USDC", decimals=6, address=USDC_ADDRESS)
    model = Model(daily, max_pay, approve, cap)
    pol = policy(max_per_payment=max_pay, daily=daily, approve_above=approve, max_escrow=cap)
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock(model.now)
        ledger = Ledger(Path(tmp) / "ledger.sqlite", clock=clock, synchronous="NORMAL")
        wallet = Wallet("alice", dev_account(1), pol, ledger)
        for i, (op, amount) in enumerate(steps):
            if op == "tick":
                model.now += amount * 5_000  # up to ~2.3 days: spends leave the window
                clock.now = model.now
                continue
            expected = model.apply(op, amount)
            got: str | None = None
            try:
                if op == "refund":
                    refund(wallet, token, amount, key=f"refund-{i}")
                else:
                    kind = {"transfer": "x402", "aborted": "voucher"}.get(op, op)
                    spend(wallet, token, kind, amount, abort=op == "aborted")
            except (PolicyViolation, ApprovalRequired) as exc:
                got = str(exc.fields["rule"])
            except LedgerError:
                got = "refund"
            except RuntimeError:
                assert op == "aborted"
            assert got == expected, (op, amount, i)
            assert ledger.spent_in_window("alice", TOKEN, WINDOW) == model.used()
            assert wallet.escrowed()[TOKEN] == model.escrowed
        ledger.close()


def test_a_deposit_of_the_whole_budget_leaves_the_budget_for_charges(
    make_wallet: Callable[..., Wallet], usdc_token: Token
) -> None:
    """The issue's example: 10 USDC a day, 10 USDC deposited, then 10 USDC of charges."""
    wallet = make_wallet(policy(daily=10_000_000, max_per_payment=1_000_000, approve_above=0))
    spend(wallet, usdc_token, "deposit", 10_000_000)  # over max_per_payment and approve_above
    assert wallet.ledger.spent_in_window("alice", TOKEN, WINDOW) == 0
    assert wallet.escrowed()[TOKEN] == 10_000_000
    with pytest.raises(ApprovalRequired):  # a charge is a payment: the threshold applies
        spend(wallet, usdc_token, "voucher", 1_000_000)
    wallet = make_wallet(policy(daily=10_000_000, max_per_payment=1_000_000))
    for _ in range(10):
        spend(wallet, usdc_token, "voucher", 1_000_000)
    with pytest.raises(PolicyViolation) as err:
        spend(wallet, usdc_token, "voucher", 1)
    assert err.value.fields["rule"] == "daily"
    assert wallet.escrowed()[TOKEN] == 0
    kinds = [(r.kind, r.status) for r in wallet.ledger.records("alice")]
    assert kinds[0] == ("deposit", "signed") and kinds.count(("voucher", "signed")) == 10


def test_a_refund_frees_the_escrow_cap_exactly_once(
    make_wallet: Callable[..., Wallet], usdc_token: Token
) -> None:
    wallet = make_wallet(policy(max_escrow=5_000))
    spend(wallet, usdc_token, "deposit", 5_000)
    with pytest.raises(PolicyViolation) as err:
        spend(wallet, usdc_token, "deposit", 1)
    assert err.value.fields["rule"] == "max_escrow" and err.value.fields["escrowed"] == 5_000
    refund(wallet, usdc_token, 3_000, key="refund:0xabc")
    refund(wallet, usdc_token, 3_000, key="refund:0xabc")  # the same refund again: once
    assert wallet.escrowed()[TOKEN] == 2_000
    [row] = [r for r in wallet.ledger.records("alice") if r.kind == "refund"]
    assert (row.amount, row.status) == (3_000, "settled")
    with pytest.raises(LedgerError):  # the key names a different refund
        refund(wallet, usdc_token, 2_000, key="refund:0xabc")
    with pytest.raises(LedgerError):  # more than is escrowed
        refund(wallet, usdc_token, 2_001, key="refund:0xdef")
    spend(wallet, usdc_token, "deposit", 3_000)
    assert wallet.escrowed()[TOKEN] == 5_000


def test_deposits_still_meet_the_counterparty_lists_and_token_rules(
    make_wallet: Callable[..., Wallet], usdc_token: Token
) -> None:
    denied = policy(max_escrow=10).with_counterparties(deny=(BOB,))
    with pytest.raises(PolicyViolation) as err:
        spend(make_wallet(denied), usdc_token, "deposit", 1)
    assert err.value.fields["rule"] == "deny"
    strict = SpendingPolicy(unlisted_tokens="deny")
    with pytest.raises(PolicyViolation) as err:
        spend(make_wallet(strict), usdc_token, "deposit", 1)
    assert err.value.fields["rule"] == "unlisted_token"


def test_bad_refunds_are_refused_and_nothing_is_written(
    make_wallet: Callable[..., Wallet], usdc_token: Token
) -> None:
    wallet = make_wallet()
    spend(wallet, usdc_token, "deposit", 100)
    for amount, error in ((0, AmountError), (-1, AmountError), (1.5, AmountError)):
        with pytest.raises(error):
            refund(wallet, usdc_token, amount, key="k")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        refund(wallet, usdc_token, 1, key="")
    with pytest.raises(InputError):  # a refund is not a spend kind
        spend(wallet, usdc_token, "refund", 1)
    assert [r.kind for r in wallet.ledger.records()] == ["deposit"]


def test_max_escrow_round_trips_through_the_policy_file(tmp_path: Path) -> None:
    store = PolicyStore(tmp_path)
    store.save("alice", policy(max_escrow=2**70, daily=5))
    loaded = store.load("alice").limits_for(USDC_ADDRESS)
    assert loaded is not None and (loaded.max_escrow, loaded.daily) == (2**70, 5)
    (tmp_path / "bob.toml").write_text(  # a policy written before max_escrow existed
        f'[tokens.USDC]\naddress = "{USDC_ADDRESS}"\ndecimals = 6\ndaily = 7\n'
    )
    old = store.load("bob").limits_for(USDC_ADDRESS)
    assert old is not None and (old.max_escrow, old.daily) == (None, 7)


def test_cli_ledger_shows_escrowed_per_wallet_and_token(tmp_path: Path, usdc_token: Token) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "bazaar.toml").write_text(  # the known tokens, with no chain running
        f'[tokens.USDC]\naddress = "{USDC_ADDRESS}"\ndecimals = 6\n'
    )
    env = {**os.environ, "BAZAAR_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("BAZAAR_RPC_URL", None)
    book = Ledger(load_config(home, env=env).ledger_path)
    alice = Wallet("alice", dev_account(1), policy(), book)
    bob = Wallet("bob", dev_account(2), policy(), book)
    carol = Wallet("carol", dev_account(3), SpendingPolicy(), book)
    spend(alice, usdc_token, "deposit", 2_500_000)
    spend(alice, usdc_token, "voucher", 1_000)
    refund(alice, usdc_token, 499_000, key="refund:0x01")
    spend(bob, usdc_token, "x402", 7)  # no escrow: not listed
    other = "0x" + "ee" * 20
    for token in (USDC_ADDRESS, other):  # entries naming only the token's address
        with carol.spend(kind="deposit", token=token, amount=5, counterparty=BOB) as sp:
            sp.sign_typed_data(DOMAIN, TYPES, {"to": BOB, "value": 5})
    tx = "0x" + "1234abcd" + "00" * 24 + "9f8e7d6c"
    paid = book.records("bob")[0]
    book.mark_settled(paid.id, tx_hash=tx)

    def bazaar(*args: str, columns: str = "200") -> subprocess.CompletedProcess[str]:
        cmd = [str(Path(sys.executable).parent / "bazaar"), "wallet", "ledger", *args]
        return subprocess.run(
            cmd, env={**env, "COLUMNS": columns}, capture_output=True, text=True, timeout=60
        )

    out = bazaar("--escrow", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "escrowed": [
            {
                "wallet": "alice",
                "token": TOKEN,
                "symbol": "USDC",
                "decimals": 6,
                "units": "2000000",
                "amount": "2",
            },
            {  # the ledger entry had no symbol: the known token's
                "wallet": "carol",
                "token": TOKEN,
                "symbol": "USDC",
                "decimals": 6,
                "units": "5",
                "amount": "0.000005",
            },
            {  # a token known nowhere
                "wallet": "carol",
                "token": other,
                "symbol": None,
                "decimals": None,
                "units": "5",
                "amount": "5",
            },
        ]
    }
    rows = json.loads(bazaar("--json").stdout)  # the entries, as before
    assert [r["kind"] for r in rows] == [
        "deposit",
        "voucher",
        "refund",
        "x402",
        "deposit",
        "deposit",
    ]
    assert rows[3]["tx_hash"] == tx  # whole in --json
    table = bazaar()
    assert table.returncode == 0 and "escrowed" in table.stdout
    assert any(
        "alice" in line and "USDC" in line and " 2 " in line for line in table.stdout.splitlines()
    )
    for columns in ("200", "80"):  # on a narrow terminal too: shortened, never cut
        table = bazaar(columns=columns)
        assert table.returncode == 0, table.stderr
        assert "0x1234abcd…9f8e7d6c" in table.stdout and tx not in table.stdout
        assert all(len(line) <= int(columns) for line in table.stdout.splitlines())


def test_cli_policy_sets_and_shows_max_escrow(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BAZAAR_HOME": str(tmp_path / "home"),
        "BAZAAR_CHAIN": "embedded",
        "BAZAAR_PASSPHRASE": "escrow-pass",
        "BAZAAR_SCRYPT_N": "1024",
        "COLUMNS": "200",
    }
    bazaar = str(Path(sys.executable).parent / "bazaar")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [bazaar, "wallet", *args], env=env, capture_output=True, text=True, timeout=60
        )

    assert run("new", "alice", "--json").returncode == 0
    out = run("policy", "alice", "--max-escrow", "1.5 ETH", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tokens"]["ETH"]["max_escrow"] == 15 * 10**17
    limits = PolicyStore(tmp_path / "home" / "policies").load("alice").limits_for("native")
    assert limits is not None and limits.max_escrow == 15 * 10**17
    shown = run("policy", "alice")
    assert "max escrow" in shown.stdout and "1.5 ETH" in shown.stdout
    bad = run("policy", "alice", "--max-escrow", "-1 ETH")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
