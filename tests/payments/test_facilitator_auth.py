"""API keys on the facilitator: the SDK's client with our bearer auth settles, anyone else gets a
401 and moves nothing on chain; a paywall passes its key; without keys nothing changes."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from test_cli_pay import BAZAAR, bazaar, bob_address, start, stop
from x402 import x402Client
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.clients.httpx import x402HttpxClient
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.schemas import PaymentPayload, PaymentRequirements
from x402_env import PayEnv, payment, requirements, sign_authorization

from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.compiler import default_cache_dir
from agentbazaar.config import load_config
from agentbazaar.errors import ConfigError
from agentbazaar.payments.auth import (
    ApiKeys,
    BearerAuth,
    bearer_token,
    check_key,
    facilitator_client,
    key_sent_in_clear,
    open_bind_warning,
)
from agentbazaar.payments.example import create_example_app
from agentbazaar.payments.facilitator import Facilitator, create_app
from agentbazaar.payments.server import RoutePrice, install_paywall
from agentbazaar.testing import serve_in_thread

KEY_A = secrets.token_urlsafe(32)
KEY_B = secrets.token_urlsafe(24)
WRONG = secrets.token_urlsafe(32)


# ---- pure: parsing and checking keys ------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        ("abc", None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_refusal_reasons_and_two_keys() -> None:
    keys = ApiKeys([KEY_A, KEY_B, KEY_A])
    assert len(keys) == 2
    assert keys.refusal(f"Bearer {KEY_A}") is None
    assert keys.refusal(f"Bearer {KEY_B}") is None
    assert keys.refusal(None) == "missing"
    assert keys.refusal(f"Basic {KEY_A}") == "malformed"
    assert keys.refusal(f"Bearer {WRONG}") == "wrong_key"
    assert keys.refusal(f"Bearer {KEY_A[:-1]}") == "wrong_key"
    assert keys.refusal(f"Bearer {KEY_A.swapcase()}") == "wrong_key"
    assert ApiKeys().refusal(None) is None and not ApiKeys()
    assert KEY_A not in repr(keys) and KEY_A not in repr(BearerAuth(KEY_A))


@pytest.mark.parametrize(
    "bad", ["", "short", "a" * 513, "with space in the key!", "k1,k2-0123456789"]
)
def test_bad_keys_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        ApiKeys([bad])
    assert bad == "" or bad not in str(err.value)
    with pytest.raises(ConfigError):
        BearerAuth(bad)


def test_keys_from_cli_env_and_file(tmp_path: Path) -> None:
    third = secrets.token_urlsafe(20)
    key_file = tmp_path / "keys"
    key_file.write_text(f"# facilitator keys\n\n{third}\n")
    keys = ApiKeys.from_sources([KEY_A], env_value=f" {KEY_B}, ,", file=key_file)
    assert len(keys) == 3
    assert all(keys.refusal(f"Bearer {k}") is None for k in (KEY_A, KEY_B, third))
    assert not ApiKeys.from_sources([], env_value="")
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no key"):
        ApiKeys.from_sources(file=empty)
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeys.from_sources(file=tmp_path / "missing")
    assert check_key(KEY_A) == KEY_A


def test_bind_warning_and_clear_text_urls() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.1.2.3"):
        assert open_bind_warning(host, ApiKeys()) is None
    for host in ("0.0.0.0", "192.168.1.10", "facilitator.example"):
        warning = open_bind_warning(host, ApiKeys())
        assert warning is not None and "\n" not in warning and host in warning
        assert open_bind_warning(host, ApiKeys([KEY_A])) is None
    assert key_sent_in_clear("http://10.0.0.5:4020")
    assert not key_sent_in_clear("https://10.0.0.5:4020")
    assert not key_sent_in_clear("http://127.0.0.1:4020")


@pytest.mark.anvil
def test_a_key_needs_a_facilitator_url(pay_env: PayEnv, facilitator: Facilitator) -> None:
    with pytest.raises(ConfigError, match="URL"):
        install_paywall(
            FastAPI(),
            [RoutePrice("GET /x", "0.001")],
            terms=pay_env.terms(),
            facilitator=facilitator,
            facilitator_key=KEY_A,
        )


# ---- over HTTP, on anvil -------------------------------------------------------------------------
def body(env: PayEnv, payload: dict[str, object], amount: int = 1000) -> dict[str, object]:
    return {
        "x402Version": 2,
        "paymentPayload": payment(env, payload, amount),
        "paymentRequirements": requirements(env, amount),
    }


def used(env: PayEnv, payload: dict[str, object]) -> bool:
    auth = payload["authorization"]
    assert isinstance(auth, dict)
    return bool(
        env.usdc.functions.authorizationState(auth["from"], bytes.fromhex(auth["nonce"][2:])).call()
    )


@pytest.fixture(scope="module")
def auth_url(facilitator: Facilitator) -> Iterator[str]:
    with serve_in_thread(create_app(facilitator, api_keys=ApiKeys([KEY_A, KEY_B]))) as url:
        yield url


@pytest.mark.anvil
@pytest.mark.parametrize("key", [KEY_A, KEY_B])
def test_sdk_client_with_either_key_verifies_and_settles(
    pay_env: PayEnv, auth_url: str, key: str
) -> None:
    signed = sign_authorization(pay_env, pay_env.payer, value=1000)
    payload = PaymentPayload.model_validate(payment(pay_env, signed))
    req = PaymentRequirements.model_validate(requirements(pay_env))
    before = pay_env.balance(pay_env.seller)

    async def go() -> tuple[bool, bool, str]:
        client = facilitator_client(auth_url, api_key=key)
        try:
            kinds = client.get_supported().kinds
            assert [(k.scheme, k.network) for k in kinds] == [("exact", pay_env.chain.network)]
            verified = await client.verify(payload, req)
            settled = await client.settle(payload, req)
        finally:
            await client.aclose()
        return verified.is_valid, settled.success, settled.transaction

    valid, ok, tx = asyncio.run(go())
    assert valid and ok and tx.startswith("0x")
    assert pay_env.balance(pay_env.seller) == before + 1000
    assert used(pay_env, signed)


REFUSED_HEADERS: list[tuple[str, dict[str, str]]] = [
    ("missing", {}),
    ("wrong_key", {"Authorization": f"Bearer {WRONG}"}),
    ("wrong_key", {"Authorization": f"Bearer {KEY_A.swapcase()}"}),
    ("malformed", {"Authorization": f"Basic {KEY_A}"}),
    ("malformed", {"Authorization": "Bearer"}),
    ("malformed", {"Authorization": f"Bearer {KEY_A} {KEY_B}"}),
    ("missing", {"X-Api-Key": KEY_A}),
]


@pytest.mark.anvil
@pytest.mark.parametrize(("reason", "headers"), REFUSED_HEADERS)
def test_refused_requests_verify_and_settle_nothing(
    pay_env: PayEnv, auth_url: str, reason: str, headers: dict[str, str]
) -> None:
    signed = sign_authorization(pay_env, pay_env.payer, value=700)
    request = body(pay_env, signed, 700)
    payer_before, seller_before = (
        pay_env.balance(pay_env.payer.address),
        pay_env.balance(pay_env.seller),
    )
    for path in ("/verify", "/settle", "/metrics"):
        if path == "/metrics":
            r = httpx.get(f"{auth_url}{path}", headers=headers, timeout=30)
        else:
            r = httpx.post(f"{auth_url}{path}", json=request, headers=headers, timeout=30)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"] == "unauthorized"
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert ("invalid_token" in challenge) == (reason != "missing")
        assert KEY_A not in r.text and WRONG not in r.text
    assert pay_env.balance(pay_env.payer.address) == payer_before
    assert pay_env.balance(pay_env.seller) == seller_before
    assert not used(pay_env, signed)
    # the refused authorization is still good: the holder of a key settles it once
    ok = httpx.post(
        f"{auth_url}/settle", json=request, headers={"Authorization": f"Bearer {KEY_B}"}
    )
    assert ok.status_code == 200 and ok.json()["success"] is True, ok.text
    assert pay_env.balance(pay_env.seller) == seller_before + 700


@pytest.mark.anvil
def test_oversized_body_without_key_is_401_not_read(auth_url: str) -> None:
    r = httpx.post(f"{auth_url}/settle", content=b"x" * 200_000, timeout=30)
    assert r.status_code == 401


@pytest.mark.anvil
def test_sdk_client_without_a_key_cannot_settle(pay_env: PayEnv, auth_url: str) -> None:
    signed = sign_authorization(pay_env, pay_env.payer, value=300)
    payload = PaymentPayload.model_validate(payment(pay_env, signed, 300))
    req = PaymentRequirements.model_validate(requirements(pay_env, 300))

    async def go() -> None:
        client = HTTPFacilitatorClient(FacilitatorConfig(url=auth_url))
        try:
            with pytest.raises(ValueError, match="401"):
                await client.settle(payload, req)
            with pytest.raises(ValueError, match="401"):
                await client.verify(payload, req)
        finally:
            await client.aclose()

    before = pay_env.balance(pay_env.payer.address)
    asyncio.run(go())
    assert pay_env.balance(pay_env.payer.address) == before
    assert not used(pay_env, signed)


@pytest.mark.anvil
def test_open_routes_and_guarded_metrics(auth_url: str) -> None:
    assert httpx.get(f"{auth_url}/supported").status_code == 200
    wrong = {"Authorization": f"Bearer {WRONG}"}
    assert httpx.get(f"{auth_url}/supported", headers=wrong).status_code == 200
    health = httpx.get(f"{auth_url}/healthz").json()
    assert health["ok"] is True and health["auth"] is True
    assert httpx.get(f"{auth_url}/metrics").status_code == 401
    metrics = httpx.get(f"{auth_url}/metrics", headers={"Authorization": f"Bearer {KEY_A}"})
    assert metrics.status_code == 200
    assert {"settled", "pending", "failed", "unauthorized"} <= set(metrics.json())
    assert metrics.json()["unauthorized"] >= 1


def sdk_buyer(env: PayEnv) -> x402Client:
    client = register_exact_evm_client(x402Client(), env.payer)
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": env.chain.network,
                    "asset": str(env.token.address),
                    "max_amount_per_payment": "10000",
                }
            ]
        }
    )
    return client


def buy_quote(env: PayEnv, url: str) -> tuple[int, dict[str, object]]:
    async def go() -> tuple[int, dict[str, object]]:
        async with x402HttpxClient(sdk_buyer(env)) as http:
            r = await http.get(f"{url}/quote")
            return r.status_code, dict(r.json())

    return asyncio.run(go())


@pytest.mark.anvil
def test_paywall_with_the_key_sells_through_the_guarded_facilitator(
    pay_env: PayEnv, auth_url: str
) -> None:
    app = create_example_app(pay_env.terms(), auth_url, facilitator_key=KEY_B)
    payer_before, seller_before = (
        pay_env.balance(pay_env.payer.address),
        pay_env.balance(pay_env.seller),
    )
    with serve_in_thread(app) as url:
        status, reply = buy_quote(pay_env, url)
    assert status == 200, reply
    assert "quote_id" in reply
    assert pay_env.balance(pay_env.payer.address) == payer_before - 1000
    assert pay_env.balance(pay_env.seller) == seller_before + 1000


@pytest.mark.anvil
@pytest.mark.parametrize("key", [None, WRONG])
def test_paywall_without_the_right_key_serves_and_settles_nothing(
    pay_env: PayEnv, auth_url: str, key: str | None
) -> None:
    app = create_example_app(pay_env.terms(), auth_url, facilitator_key=key)
    payer_before = pay_env.balance(pay_env.payer.address)
    with serve_in_thread(app) as url:
        status, reply = buy_quote(pay_env, url)
    assert status == 402, reply
    assert "quote_id" not in reply
    assert reply["error"] == "facilitator_unauthorized"
    assert pay_env.balance(pay_env.payer.address) == payer_before


@pytest.mark.anvil
def test_without_keys_nothing_changes(pay_env: PayEnv, facilitator_url: str) -> None:
    assert httpx.get(f"{facilitator_url}/healthz").json()["auth"] is False
    assert httpx.get(f"{facilitator_url}/metrics").status_code == 200
    before = pay_env.balance(pay_env.seller)
    for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"Authorization": "junk"}):
        signed = sign_authorization(pay_env, pay_env.payer, value=11)
        r = httpx.post(
            f"{facilitator_url}/settle", json=body(pay_env, signed, 11), headers=headers, timeout=30
        )
        assert r.status_code == 200 and r.json()["success"] is True, r.text
    assert pay_env.balance(pay_env.seller) == before + 33
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        status, reply = buy_quote(pay_env, url)
    assert status == 200 and "quote_id" in reply
    assert pay_env.balance(pay_env.seller) == before + 33 + 1000


# ---- the real console scripts ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh BAZAAR_HOME after `bazaar init` on its own anvil; the environment to run in."""
    home = tmp_path_factory.mktemp("fac-auth-cli") / "home"
    home.mkdir(parents=True)
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {free_port()}\n')
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (home / "artifacts").symlink_to(cache, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE="auth-pass", BAZAAR_SCRYPT_N="1024")
    node = AnvilNode(load_config(home, env={}))
    try:
        init = bazaar(env, "init", "--json")
        assert init.returncode == 0, init.stderr
        yield env
    finally:
        node.stop()


@pytest.mark.anvil
def test_cli_facilitator_with_keys_and_a_seller_with_its_key(
    cli_home: dict[str, str],
) -> None:
    env = cli_home
    fac, fac_url = start({**env, "BAZAAR_FACILITATOR_API_KEYS": f"{KEY_A},{KEY_B}"}, "facilitator")
    try:
        assert httpx.post(f"{fac_url}/settle", json={}).status_code == 401
        assert httpx.get(f"{fac_url}/supported").status_code == 200
        seller = ("serve-example", "--pay-to", bob_address(env), "--facilitator", fac_url)
        server, url = start(env, *seller, "--facilitator-key", KEY_B)
        try:
            paid = bazaar(env, "pay", f"{url}/quote", "-w", "alice", "--json")
            assert paid.returncode == 0, paid.stderr
            assert json.loads(paid.stdout)["payment"]["success"] is True
        finally:
            stop(server)
        # a seller whose key the facilitator refuses does not start (it could not settle)
        refused = bazaar(
            {**env, "BAZAAR_FACILITATOR_API_KEY": WRONG}, *seller, "--port", str(free_port())
        )
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "refuses the --facilitator-key given" in refused.stderr
        metrics = httpx.get(f"{fac_url}/metrics", headers={"Authorization": f"Bearer {KEY_A}"})
        assert metrics.json()["settled"] == 1
        assert metrics.json()["unauthorized"] >= 2
    finally:
        stop(fac)


def run_facilitator(env: dict[str, str], *args: str) -> str:
    """Run `bazaar facilitator ARGS` until it exits (within 60 s); its stderr."""
    proc = subprocess.Popen(
        [BAZAAR, "facilitator", "--port", str(free_port()), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


@pytest.mark.anvil
def test_cli_refuses_a_bad_key_in_one_line(cli_home: dict[str, str]) -> None:
    env = cli_home
    err = run_facilitator(env, "--api-key", "tooShortKey1")
    assert err.strip().count("\n") == 0 and "16 to 512 characters" in err
    assert "tooShortKey1" not in err and "Traceback" not in err


@pytest.mark.anvil
def test_cli_warns_once_when_bound_off_loopback_without_keys(
    cli_home: dict[str, str],
) -> None:
    """192.0.2.1 (TEST-NET-1) is on no interface here: the bind fails after the warning, in one
    line, and before the ready banner."""
    env = cli_home
    err = run_facilitator(env, "--host", "192.0.2.1")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no API key" in warnings[0], err
    assert "error: cannot listen on 192.0.2.1" in err and "facilitator (" not in err
    err = run_facilitator(env, "--host", "192.0.2.1", "--api-key", KEY_A)
    assert not any(line.startswith("warning:") for line in err.splitlines()), err
    assert KEY_A not in err and "error: cannot listen on 192.0.2.1" in err
