"""`bazaar serve-example` and `bazaar pay`, the real console script, against a real anvil."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.compiler import default_cache_dir
from agentbazaar.config import load_config

pytestmark = pytest.mark.anvil
BAZAAR = str(Path(sys.executable).with_name("bazaar"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    home = tmp_path_factory.mktemp("paycli") / "home"
    home.mkdir(parents=True)
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {free_port()}\n')
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (home / "artifacts").symlink_to(cache, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE="pay-pass", BAZAAR_SCRYPT_N="1024")
    node = AnvilNode(load_config(home, env={}))
    try:
        proc = subprocess.run(
            [BAZAAR, "init", "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        yield home, env
    finally:
        node.stop()


def bazaar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BAZAAR, *args], env=env, capture_output=True, text=True, timeout=120)


def start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a long-running `bazaar` service on a free port; wait for its /healthz."""
    port = free_port()
    proc = subprocess.Popen(
        [BAZAAR, *args, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise AssertionError(
                f"{args[0]} did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def bob_address(env: dict[str, str]) -> str:
    wallets = json.loads(bazaar(env, "wallet", "list", "--json").stdout)
    return str(next(w["address"] for w in wallets if w["name"] == "bob"))


def test_serve_example_and_pay(home: tuple[Path, dict[str, str]]) -> None:
    _, env = home
    server, url = start(env, "serve-example", "--pay-to", bob_address(env))
    try:
        assert httpx.get(f"{url}/quote").status_code == 402

        paid = bazaar(env, "pay", f"{url}/quote", "--wallet", "alice", "--max", "0.01", "--json")
        assert paid.returncode == 0, paid.stderr
        out = json.loads(paid.stdout)
        assert out["status"] == 200 and "quote_id" in json.loads(out["body"])
        assert out["payment"]["amount"] == "1000" and out["payment"]["success"]
        assert out["payment"]["transaction"].startswith("0x")

        echo = bazaar(env, "pay", f"{url}/echo", "-w", "alice", "-X", "POST", "-d", '{"a":1}', "-v")
        assert echo.returncode == 0, echo.stderr
        assert json.loads(echo.stdout) == {"echo": '{"a":1}'}
        assert "paid 0.002 USDC" in echo.stderr

        refused = bazaar(env, "pay", f"{url}/echo", "-w", "alice", "--max", "0.001", "-X", "POST")
        assert refused.returncode == 1
        assert "limit" in refused.stderr and "Traceback" not in refused.stderr

        ledger = json.loads(bazaar(env, "wallet", "ledger", "alice", "--json").stdout)
        settled = [r for r in ledger if r["kind"] == "x402" and r["status"] == "settled"]
        assert sorted(r["amount"] for r in settled) == ["1000", "2000"]
        assert all(r["tx_hash"].startswith("0x") and r["chain_id"] == 31337 for r in settled)
        assert {r["decimals"] for r in settled} == {6}
    finally:
        stop(server)


@pytest.mark.parametrize("batch", [False, True])
def test_standalone_facilitator(home: tuple[Path, dict[str, str]], batch: bool) -> None:
    _, env = home
    fac, fac_url = start(env, "facilitator", *(["--batch"] if batch else []))
    try:
        supported = httpx.get(f"{fac_url}/supported").json()
        assert supported["kinds"][0]["network"] == "eip155:31337"
        server, url = start(
            env, "serve-example", "--pay-to", bob_address(env), "--facilitator", fac_url
        )
        try:
            paid = bazaar(env, "pay", f"{url}/quote", "-w", "alice", "--json")
            assert paid.returncode == 0, paid.stderr
            assert json.loads(paid.stdout)["payment"]["success"] is True
            assert httpx.get(f"{fac_url}/metrics").json()["settled"] == 1
        finally:
            stop(server)
    finally:
        stop(fac)


def test_a_refused_payment_says_it_failed_and_releases_its_row(
    home: tuple[Path, dict[str, str]],
) -> None:
    """A wallet without USDC: the payment is refused (insufficient balance). `bazaar pay` says
    it failed with the reason and what to do (never "paid"), exits 1, and the signed
    authorization is cancelled on chain (a local chain: worth its gas), so the ledger row is
    released instead of staying signed."""
    _, env = home
    assert bazaar(env, "wallet", "new", "carol").returncode == 0
    assert bazaar(env, "faucet", "carol", "1", "ETH").returncode == 0  # gas for the cancel
    server, url = start(env, "serve-example", "--pay-to", bob_address(env))
    try:
        text = bazaar(env, "pay", f"{url}/quote", "-w", "carol", "-v", "--idempotency-key", "c1")
        out = bazaar(env, "pay", f"{url}/quote", "-w", "carol", "--json")
    finally:
        stop(server)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert "paid" not in text.stderr.replace("payment failed", "")
    line = text.stderr.strip()
    assert line.startswith("error: payment failed (invalid_exact_evm_insufficient_balance)")
    assert "fund the wallet" in line and "canceled on chain" in line
    assert out.returncode == 1
    answer = json.loads(out.stdout)
    assert answer["paid"] is False and answer["payment"]["success"] is False
    assert answer["error"] == "invalid_exact_evm_insufficient_balance"
    assert answer["ledger"]["outcome"] == "canceled" and answer["ledger"]["after"] == "failed"
    rows = json.loads(bazaar(env, "wallet", "ledger", "carol", "--json").stdout)
    assert [r["status"] for r in rows if r["kind"] == "x402"] == ["failed", "failed"]


def test_serve_example_refuses_to_start_without_its_facilitator(
    home: tuple[Path, dict[str, str]],
) -> None:
    _, env = home
    dead = f"http://127.0.0.1:{free_port()}"
    down = bazaar(env, "serve-example", "--pay-to", bob_address(env), "--facilitator", dead)
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert down.stderr.strip().startswith(f"error: the facilitator at {dead} cannot be reached")
    assert "example paid service" not in down.stderr  # no ready banner
    # no flag: the configured facilitator ([facilitator] url / BAZAAR_FACILITATOR_URL) is the one
    configured = bazaar(
        {**env, "BAZAAR_FACILITATOR_URL": dead}, "serve-example", "--pay-to", bob_address(env)
    )
    assert configured.returncode == 1
    assert configured.stderr.strip().startswith(f"error: the facilitator at {dead} cannot be")
    key = "k" * 32
    fac, fac_url = start({**env, "BAZAAR_FACILITATOR_API_KEYS": key}, "facilitator")
    try:
        no_key = bazaar(
            env, "serve-example", "--pay-to", bob_address(env), "--facilitator", fac_url
        )
    finally:
        stop(fac)
    assert no_key.returncode == 1 and "requests without an API key" in no_key.stderr
    assert "example paid service" not in no_key.stderr


def test_a_port_in_use_fails_before_the_ready_banner(home: tuple[Path, dict[str, str]]) -> None:
    _, env = home
    server, url = start(env, "serve-example", "--pay-to", bob_address(env))
    port = url.rsplit(":", 1)[1]
    try:
        taken = bazaar(env, "serve-example", "--pay-to", bob_address(env), "--port", port)
        fac = bazaar(env, "facilitator", "--port", port)
    finally:
        stop(server)
    for proc in (taken, fac):
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")
        assert "on http://" not in proc.stderr  # the banner was never printed
