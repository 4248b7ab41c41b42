"""x402 inside A2A: an agent on loopback (embedded chain) sells a priced skill through its
JSON-RPC ``message/send`` - input-required with the requirements, the payment in the next
message, the answer and the settlement in the completed task - and refuses every payment that is
not for the task (another task, a replay, other amount or payee, unknown scheme, garbage) with
nothing settled (balances read on chain) and nothing recorded as paid.

The last test drives ``bazaar ask`` (the console script) against an agent on anvil."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentRequired

from agentbazaar.agents import a2a
from agentbazaar.agents.asking import ask
from agentbazaar.agents.errors import AgentRefused
from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet, usdc_balance
from agentbazaar.agents.receipts import recover_signer
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.errors import PolicyViolation
from agentbazaar.payments import PaymentRefused
from agentbazaar.payments.payers import WalletPayer, sign_with_sdk
from agentbazaar.payments.reasons import ERR_AUTHORIZATION_IN_USE, ERR_TERMS_MISMATCH
from agentbazaar.testing import UppercaseSkill, make_home
from agentbazaar.wallet import KeyStore, Ledger, Wallet

PRICE = 1_500  # 0.0015 USDC a task


@dataclass
class Market:
    net: Network
    minter: LocalAccount
    home: Path
    seller: Agent

    def payer(self, usdc: int = 100_000) -> LocalAccount:
        account: LocalAccount = Account.create()
        fund(self.net, self.minter, account.address, usdc)
        return account

    def wallet(self, name: str, usdc: int = 100_000) -> Wallet:
        wallet = new_wallet(name, self.home / "wallets", self.net.token)
        fund(self.net, self.minter, wallet.address, usdc)
        return wallet

    def balance(self, address: str) -> int:
        return usdc_balance(self.net, address)

    def issued(self) -> int:
        return len(self.seller.receipts.query(role="issued"))


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    home = tmp_path_factory.mktemp("a2a")
    chain = Chain.embedded()
    net, minter = deploy_agent_network(chain, load_config(home / "home", env={}))
    wallet = new_wallet("upper", home / "wallets", net.token)
    fund(net, minter, wallet.address, 0)
    seller = Agent("upper", wallet, net, skills=[UppercaseSkill(PRICE)], data_dir=home / "upper")
    seller.start()
    try:
        yield Market(net, minter, home, seller)
    finally:
        seller.stop()


def rpc(agent: Agent, method: str, params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = httpx.post(f"{agent.url}/a2a", json=body, timeout=60)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def open_task(agent: Agent, text: str = "hello") -> dict[str, Any]:
    message = {"kind": "message", "role": "user", "messageId": "m1",
               "parts": [{"kind": "text", "text": text}]}  # fmt: skip
    task: dict[str, Any] = rpc(agent, "message/send", {"message": message})["result"]
    return task


def metadata(task: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = task["status"]["message"]["metadata"]
    return meta


def signed_for(account: LocalAccount, task: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The SDK's payment for ``task``'s requirement (with ``changes`` to what is signed)."""
    required = PaymentRequired.model_validate(metadata(task)[a2a.REQUIRED])
    chosen = required.accepts[0].model_copy(update=changes)
    payload = sign_with_sdk(account, required.model_copy(update={"accepts": [chosen]}), chosen)
    return payload.model_dump(by_alias=True, mode="json", exclude_none=True)


def send_payment(agent: Agent, task_id: str, payload: Any) -> dict[str, Any]:
    message = {
        "kind": "message",
        "role": "user",
        "messageId": "m2",
        "taskId": task_id,
        "parts": [{"kind": "text", "text": "payment"}],
        "metadata": {a2a.STATUS: a2a.PAYMENT_SUBMITTED, a2a.PAYLOAD: payload},
    }
    return rpc(agent, "message/send", {"message": message})


def for_task(payload: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """``payload`` re-addressed to ``task`` (same signed authorization)."""
    moved = copy.deepcopy(payload)
    moved["resource"] = metadata(task)[a2a.REQUIRED]["resource"]
    return moved


# ---- the happy path ---------------------------------------------------------------------------
def test_card_declares_the_x402_extension(market: Market) -> None:
    card = httpx.get(f"{market.seller.url}/.well-known/agent-card.json").json()
    (ext,) = card["capabilities"]["extensions"]
    assert ext["uri"] == a2a.EXTENSION_URI and ext["required"] is True


def test_the_extension_is_echoed_when_activated(market: Market) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "x"}}
    url = f"{market.seller.url}/a2a"
    on = httpx.post(url, json=body, headers={a2a.EXTENSIONS_HEADER: a2a.EXTENSION_URI})
    assert on.headers[a2a.EXTENSIONS_HEADER] == a2a.EXTENSION_URI
    assert a2a.EXTENSIONS_HEADER not in httpx.post(url, json=body).headers


def test_the_task_book_is_bounded() -> None:
    book = a2a.TaskBook(limit=2)
    required = PaymentRequired(accepts=[])
    for name in ("a", "b", "c"):
        book.add(a2a.PaidTask(name, "ctx", UppercaseSkill(1), {}, 1, required, 0.0))
    assert len(book) == 2 and book.get("c").id == "c"
    with pytest.raises(a2a.RpcRefusal, match="no task 'a'") as refused:
        book.get("a")
    assert refused.value.code == a2a.TASK_NOT_FOUND


def test_an_expired_task_takes_no_payment(market: Market) -> None:
    account = market.payer()
    task = open_task(market.seller)
    market.seller.a2a.tasks.get(task["id"]).expires = 0.0
    assert _refused(market, account, task, signed_for(account, task)) == a2a.ERR_TASK_EXPIRED


def test_a_task_asks_for_payment_in_its_metadata(market: Market) -> None:
    task = open_task(market.seller)
    assert task["status"]["state"] == "input-required"
    meta = metadata(task)
    assert meta[a2a.STATUS] == a2a.PAYMENT_REQUIRED
    (req,) = meta[a2a.REQUIRED]["accepts"]
    assert req["scheme"] == "exact" and req["amount"] == str(PRICE)
    assert req["payTo"] == market.seller.address and req["asset"] == market.net.token.address
    assert meta[a2a.REQUIRED]["resource"]["url"].endswith(f"#task={task['id']}")
    assert rpc(market.seller, "tasks/get", {"id": task["id"]})["result"] == task


def test_an_a2a_client_pays_an_agent_without_http_402(market: Market) -> None:
    wallet = market.wallet("asker")
    seen: list[tuple[str, int]] = []
    http = httpx.Client(
        timeout=60, event_hooks={"response": [lambda r: seen.append((r.url.path, r.status_code))]}
    )
    before = (market.balance(wallet.address), market.balance(market.seller.address))
    token = market.net.token
    with http:
        answer = ask(
            str(market.seller.url), "make me loud", payer=WalletPayer(wallet, tokens={str(token.address): token}),
            network=market.net.chain.network, token=token, chain_id=market.net.chain.chain_id,
            max_price=2_000, http=http,
        )  # fmt: skip
    assert answer.state == "completed" and answer.result["upper"] == "MAKE ME LOUD"
    assert answer.paid is not None and answer.paid.amount == PRICE and answer.paid.transaction
    assert market.balance(wallet.address) == before[0] - PRICE
    assert market.balance(market.seller.address) == before[1] + PRICE
    assert 402 not in {status for _, status in seen}
    assert {path for path, _ in seen} == {"/.well-known/agent-card.json", "/a2a"}
    (row,) = wallet.ledger.records(wallet.name)
    assert row.status == "settled" and row.tx_hash == answer.paid.transaction
    assert answer.receipt is not None
    assert recover_signer(answer.receipt) == market.seller.address
    assert answer.receipt.receipt.payment_ref == answer.paid.nonce
    (done,) = [
        r for r in market.seller.receipts.query(role="issued") if r.signed.id == answer.receipt.id
    ]
    assert done.signed.receipt.price == PRICE
    got = rpc(market.seller, "tasks/get", {"id": answer.task_id})["result"]
    assert got["status"]["state"] == "completed"
    assert metadata(got)[a2a.STATUS] == a2a.PAYMENT_COMPLETED
    assert metadata(got)[a2a.RECEIPTS][0]["transaction"] == answer.paid.transaction


def test_above_the_maximum_nothing_is_signed(market: Market) -> None:
    wallet = market.wallet("thrifty")
    token = market.net.token
    with pytest.raises(PolicyViolation, match="above the maximum"):
        ask(
            str(market.seller.url), "hi", payer=WalletPayer(wallet, tokens={str(token.address): token}),
            network=market.net.chain.network, token=token, chain_id=market.net.chain.chain_id,
            max_price=PRICE - 1,
        )  # fmt: skip
    assert wallet.ledger.records(wallet.name) == []
    assert market.balance(wallet.address) == 100_000


def test_a_repeated_payment_gets_the_same_answer_and_pays_once(market: Market) -> None:
    account = market.payer()
    task = open_task(market.seller, "twice")
    payload = signed_for(account, task)
    issued = market.issued()
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda _: send_payment(market.seller, task["id"], payload), range(4))
        )
    docs = [a["result"] for a in answers]
    assert all(d == docs[0] for d in docs) and docs[0]["status"]["state"] == "completed"
    assert market.balance(account.address) == 100_000 - PRICE
    assert market.issued() == issued + 1


def test_one_authorization_serves_one_task_under_concurrency(market: Market) -> None:
    account = market.payer()
    first, second = open_task(market.seller, "one"), open_task(market.seller, "two")
    payload = signed_for(account, first)
    pairs = [(first, payload), (second, for_task(payload, second))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda p: send_payment(market.seller, p[0]["id"], p[1]), pairs))
    states = sorted(a["result"]["status"]["state"] for a in answers)
    assert states == ["completed", "failed"]
    (failed,) = [a["result"] for a in answers if a["result"]["status"]["state"] == "failed"]
    assert metadata(failed)[a2a.ERROR] in {ERR_AUTHORIZATION_IN_USE, c.ERR_NONCE_ALREADY_USED}
    assert market.balance(account.address) == 100_000 - PRICE


# ---- bad input: a typed refusal, nothing settled, nothing recorded as paid ---------------------
def _refused(market: Market, account: LocalAccount, task: dict[str, Any], payload: Any) -> str:
    before = (market.balance(account.address), market.balance(market.seller.address))
    issued = market.issued()
    doc = send_payment(market.seller, task["id"], payload)["result"]
    assert doc["status"]["state"] == "failed"
    meta = metadata(doc)
    assert meta[a2a.STATUS] == a2a.PAYMENT_FAILED
    assert meta[a2a.RECEIPTS][0]["success"] is False and meta[a2a.RECEIPTS][0]["transaction"] == ""
    assert (market.balance(account.address), market.balance(market.seller.address)) == before
    assert market.issued() == issued
    assert "artifacts" not in doc
    reason: str = meta[a2a.ERROR]
    assert doc["status"]["message"]["parts"][0]["text"].startswith(f"payment failed ({reason})")
    return reason


def test_a_payment_for_another_task_is_refused_and_stays_usable(market: Market) -> None:
    account = market.payer()
    mine, other = open_task(market.seller, "mine"), open_task(market.seller, "other")
    payload = signed_for(account, mine)
    assert _refused(market, account, other, payload) == a2a.ERR_OTHER_TASK
    done = send_payment(market.seller, mine["id"], payload)["result"]  # nothing consumed it
    assert done["status"]["state"] == "completed"
    assert market.balance(account.address) == 100_000 - PRICE


def test_a_replayed_authorization_is_refused(market: Market) -> None:
    account = market.payer()
    paid = open_task(market.seller, "first")
    payload = signed_for(account, paid)
    assert (
        send_payment(market.seller, paid["id"], payload)["result"]["status"]["state"] == "completed"
    )
    again = open_task(market.seller, "second")
    assert _refused(market, account, again, for_task(payload, again)) == c.ERR_NONCE_ALREADY_USED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": str(PRICE - 1)}, ERR_TERMS_MISMATCH),
        ({"pay_to": "0x" + "11" * 20}, ERR_TERMS_MISMATCH),
        ({"scheme": "upto"}, c.ERR_UNSUPPORTED_SCHEME),
    ],
)
def test_other_terms_are_refused(market: Market, change: dict[str, Any], reason: str) -> None:
    account = market.payer()
    task = open_task(market.seller)
    payload = signed_for(account, task)
    accepted = {"amount": "amount", "pay_to": "payTo", "scheme": "scheme"}
    for key, value in change.items():
        payload["accepted"][accepted[key]] = value
    assert _refused(market, account, task, payload) == reason


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("value", str(PRICE - 1), c.ERR_AUTHORIZATION_VALUE_MISMATCH),
        ("to", "0x" + "22" * 20, c.ERR_RECIPIENT_MISMATCH),
    ],
)
def test_an_authorization_for_other_terms_is_refused(
    market: Market, field: str, value: str, reason: str
) -> None:
    account = market.payer()
    task = open_task(market.seller)
    payload = signed_for(account, task)
    payload["payload"]["authorization"][field] = value
    assert _refused(market, account, task, payload) == reason


@pytest.mark.parametrize("garbage", ["garbage", 42, None, {"x402Version": 2}, {"payload": []}])
def test_a_garbage_payload_is_refused(market: Market, garbage: Any) -> None:
    account = market.payer()
    task = open_task(market.seller)
    assert _refused(market, account, task, garbage) == a2a.ERR_INVALID_PAYLOAD


def test_a_failed_skill_charges_nothing_and_gives_the_authorization_back(market: Market) -> None:
    account = market.payer()
    failing = open_task(market.seller, "fail")
    payload = signed_for(account, failing)
    assert _refused(market, account, failing, payload) == a2a.ERR_SKILL_FAILED
    retry = open_task(market.seller, "fine")
    done = send_payment(market.seller, retry["id"], for_task(payload, retry))["result"]
    assert done["status"]["state"] == "completed"
    assert market.balance(account.address) == 100_000 - PRICE


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"nope", a2a.PARSE_ERROR, "not JSON"),
        (b'{"jsonrpc":"2.0","id":1,"method":"tasks/cancel"}', a2a.METHOD_NOT_FOUND, "message/send, tasks/get"),
        (b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"nope"}}', a2a.TASK_NOT_FOUND, "no task 'nope'"),
        (b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"taskId":"nope","parts":[]}}}', a2a.TASK_NOT_FOUND, "no task 'nope'"),
        (b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"parts":[{"kind":"data","data":{"skill":"nope"}}]}}}', a2a.INVALID_PARAMS, "unknown skill 'nope'"),
        (b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"parts":[{"kind":"data","data":{"skill":"upper"}}]}}}', a2a.INVALID_PARAMS, "needs its input"),
        (b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{}}', a2a.INVALID_PARAMS, "list of parts"),
    ],
)  # fmt: skip
def test_malformed_requests_get_one_jsonrpc_error_each(
    market: Market, body: bytes, code: int, words: str
) -> None:
    r = httpx.post(f"{market.seller.url}/a2a", content=body)
    assert r.status_code == 200
    error = r.json()["error"]
    assert error["code"] == code and words in error["message"]


def test_a_closed_task_takes_no_payment(market: Market) -> None:
    account = market.payer()
    task = open_task(market.seller)
    _refused(market, account, task, "garbage")
    answer = send_payment(market.seller, task["id"], signed_for(account, task))
    assert answer["error"]["code"] == a2a.UNSUPPORTED_OPERATION
    assert "is failed and takes no payment" in answer["error"]["message"]
    assert market.balance(account.address) == 100_000


def test_a_declined_payment_closes_the_task(market: Market) -> None:
    task = open_task(market.seller)
    message = {"kind": "message", "role": "user", "messageId": "m3", "taskId": task["id"],
               "parts": [], "metadata": {a2a.STATUS: a2a.PAYMENT_REJECTED}}  # fmt: skip
    doc = rpc(market.seller, "message/send", {"message": message})["result"]
    assert doc["status"]["state"] == "failed"
    assert metadata(doc)[a2a.STATUS] == a2a.PAYMENT_REJECTED


def test_an_unpayable_skill_request_is_refused_by_the_client(market: Market) -> None:
    wallet = market.wallet("lost")
    token = market.net.token
    with pytest.raises(AgentRefused, match="unknown skill 'nope'"):
        ask(
            str(market.seller.url), "hi", skill="nope", payer=WalletPayer(wallet),
            network=market.net.chain.network, token=token, chain_id=market.net.chain.chain_id,
            max_price=PRICE,
        )  # fmt: skip
    with pytest.raises(PaymentRefused, match="exact, USDC on eip155:1"):
        ask(
            str(market.seller.url), "hi", payer=WalletPayer(wallet), network="eip155:1",
            token=token, chain_id=1, max_price=PRICE,
        )  # fmt: skip
    assert wallet.ledger.records(wallet.name) == []


# ---- bazaar ask, the console script, against an agent on anvil --------------------------------
@pytest.mark.anvil
def test_bazaar_ask_pays_an_agent_and_prints_the_answer(tmp_path: Path) -> None:
    cli = make_home(tmp_path / "home")
    node = cli.anvil
    seller: Agent | None = None
    try:
        node.start()
        cfg = load_config(cli.home, env={})
        net, minter = deploy_agent_network(Chain.from_config(cfg), cfg)  # USDC + registries
        buyer = KeyStore(cfg.keystore_dir, scrypt_cost=2**10).create("buyer", "test-passphrase")
        fund(net, minter, buyer, 10_000)
        wallet = new_wallet("seller", tmp_path / "wallets", net.token)
        fund(net, minter, wallet.address, 0)
        seller = Agent(
            "upper", wallet, net, skills=[UppercaseSkill(PRICE)], data_dir=tmp_path / "s"
        )
        url = seller.start()
        out = cli.json("ask", url, "shout this", "--max", "0.002", "-w", "buyer")
        assert out["answer"]["upper"] == "SHOUT THIS" and out["state"] == "completed"
        assert out["paid"]["amount"] == str(PRICE) and out["paid"]["transaction"]
        assert out["receiptId"] and out["paid"]["payTo"] == seller.address
        text = cli.ok("ask", url, "and this", "--skill", "upper", "-w", "buyer")
        assert '"upper": "AND THIS"' in text and "paid 0.0015 USDC to upper" in text
        assert usdc_balance(net, buyer) == 10_000 - 2 * PRICE
        assert usdc_balance(net, seller.address) == 2 * PRICE
        proc = cli.run("ask", url, "too dear", "--max", "0.001", "-w", "buyer")
        assert proc.returncode == 1 and proc.stdout == ""
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("error: the agent asks 0.0015 USDC, above the maximum 0.001 USDC")
        ledger = Ledger(cfg.ledger_path).records("buyer")
        assert [r.status for r in ledger] == ["settled", "settled"]  # nothing signed for it
        assert usdc_balance(net, buyer) == 10_000 - 2 * PRICE
    finally:
        if seller is not None:
            seller.stop()
        node.stop()


# ---- property: whatever is sent, each authorization pays at most one task, funds conserved -----
class PaymentsToTasks(RuleBasedStateMachine):
    """Open tasks, sign payments, send any payment (as signed, or re-addressed) to any task,
    garbage too. Invariants, read on chain: the seller gained PRICE per completed task, each
    payer lost PRICE per task its authorization completed, an authorization completes at most
    one task, every completed task has one issued receipt; and a fresh payment sent as signed to
    its own open task completes it."""

    market: Market
    tasks = Bundle("tasks")
    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self.start = self.market.balance(self.market.seller.address)
        self.issued = self.market.issued()
        self.open: set[str] = set()
        self.completed: dict[str, str] = {}  # task id -> signature that paid it
        self.payers: dict[str, tuple[str, int]] = {}  # signature -> (payer, balance at signing)

    @rule(target=tasks)
    def open_a_task(self) -> dict[str, Any]:
        task = open_task(self.market.seller, "prop")
        self.open.add(task["id"])
        return task

    @rule(target=payments, task=tasks)
    def sign(self, task: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        account = self.market.payer(10_000)
        payload = signed_for(account, task)
        self.payers[payload["payload"]["signature"].lower()] = (account.address, 10_000)
        return task, payload

    @rule(paid=payments, task=tasks, readdress=st.booleans())
    def send(self, paid: tuple[dict[str, Any], dict[str, Any]], task: dict[str, Any],
             readdress: bool) -> None:  # fmt: skip
        signed_task, payload = paid
        sig = payload["payload"]["signature"].lower()
        fresh = sig not in self.completed.values()
        own = signed_task["id"] == task["id"] and not readdress
        was_open = task["id"] in self.open
        sent = for_task(payload, task) if readdress else payload
        answer = send_payment(self.market.seller, task["id"], sent)
        doc = answer.get("result")
        if doc is None:  # a closed task: a JSON-RPC error, nothing else
            assert not was_open and answer["error"]["code"] == a2a.UNSUPPORTED_OPERATION
            return
        self.open.discard(task["id"])
        if doc["status"]["state"] == "completed":
            assert self.completed.get(task["id"], sig) == sig
            self.completed[task["id"]] = sig
        elif own and fresh and was_open:
            raise AssertionError(f"a fresh payment for its own open task failed: {doc}")

    @rule(task=tasks)
    def garbage(self, task: dict[str, Any]) -> None:
        answer = send_payment(self.market.seller, task["id"], {"payload": "garbage"})
        if task["id"] in self.open:
            assert metadata(answer["result"])[a2a.ERROR] == a2a.ERR_INVALID_PAYLOAD
        self.open.discard(task["id"])

    @invariant()
    def conserved_and_at_most_once(self) -> None:
        sigs = list(self.completed.values())
        assert len(sigs) == len(set(sigs))
        seller = self.market.balance(self.market.seller.address)
        assert seller == self.start + PRICE * len(sigs)
        assert self.market.issued() == self.issued + len(sigs)
        for sig, (payer, funded) in self.payers.items():
            assert self.market.balance(payer) == funded - PRICE * sigs.count(sig)


def test_payments_to_tasks_hold_as_invariants(market: Market) -> None:
    PaymentsToTasks.market = market
    run_state_machine_as_test(
        PaymentsToTasks,
        settings=settings(
            max_examples=3,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
