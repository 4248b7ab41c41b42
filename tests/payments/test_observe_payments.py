"""What a seller and a facilitator say: one log line per paid request and per settlement (payer,
amount, scheme, result, tx), in text or JSON; ``/metrics`` in the Prometheus text format for a
scraper and in JSON for everyone else."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families
from x402_env import PayEnv, header_of, payment, sign_authorization

from agentbazaar.loopback import serve_in_thread
from agentbazaar.observe import configure_logging
from agentbazaar.payments.example import create_example_app

pytestmark = pytest.mark.anvil

PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = configure_logging("json", stream=out)
    try:
        yield out
    finally:
        root = logging.getLogger("agentbazaar")
        root.removeHandler(handler)
        root.propagate = True
        root.setLevel(logging.NOTSET)


def events(out: io.StringIO, name: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == name]


def test_a_paid_request_and_its_settlement_are_logged_once_each(
    pay_env: PayEnv, facilitator_url: str, json_log: io.StringIO
) -> None:
    header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        served = httpx.get(f"{url}/quote", headers={"PAYMENT-SIGNATURE": header}, timeout=60)
        again = httpx.get(f"{url}/quote", headers={"PAYMENT-SIGNATURE": header}, timeout=60)
    assert served.status_code == 200 and again.status_code == 402

    requests = events(json_log, "x402.paid_request")
    assert [r["result"] for r in requests] == ["served", "refused"]
    first, second = requests
    assert first["payer"] == pay_env.payer.address.lower()
    assert first["amount"] == "1000" and first["status"] == 200
    assert str(first["tx"]).startswith("0x") and first["path"] == "/quote"
    assert second["status"] == 402 and second["reason"] and second["tx"] == ""
    assert all(str(r["ts"]).endswith("+00:00") and r["level"] == "info" for r in requests)

    settled = [s for s in events(json_log, "x402.settle") if s["tx"] == first["tx"]]
    assert len(settled) == 1  # the replayed header settled nothing
    assert settled[0]["result"] == "settled" and settled[0]["scheme"] == "exact"
    assert str(settled[0]["payer"]).lower() == pay_env.payer.address.lower()
    assert settled[0]["amount"] == "1000" and settled[0]["pay_to"] == pay_env.seller


def test_a_failed_settlement_says_why(
    pay_env: PayEnv, facilitator_url: str, json_log: io.StringIO
) -> None:
    poor = Account.create()  # no tokens: the facilitator refuses before sending anything
    header = header_of(payment(pay_env, sign_authorization(pay_env, poor, value=1000)))
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        refused = httpx.get(f"{url}/quote", headers={"PAYMENT-SIGNATURE": header}, timeout=60)
    assert refused.status_code == 402
    (line,) = events(json_log, "x402.paid_request")
    assert line["result"] == "refused" and line["payer"] == poor.address.lower()
    assert "insufficient_balance" in str(line["reason"])


def test_metrics_speak_prometheus_to_a_scraper_and_json_to_others(
    pay_env: PayEnv, facilitator_url: str
) -> None:
    header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        assert httpx.get(f"{url}/quote", headers={"PAYMENT-SIGNATURE": header}).status_code == 200

    as_json = httpx.get(f"{facilitator_url}/metrics").json()
    scraped = httpx.get(f"{facilitator_url}/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    settled = families["bazaar_facilitator_settled"]
    assert settled.type == "counter"
    assert settled.samples[0].name == "bazaar_facilitator_settled_total"
    assert settled.samples[0].value >= as_json["settled"] >= 1
    pending = families["bazaar_facilitator_pending"]
    assert pending.type == "gauge" and pending.samples[0].name == "bazaar_facilitator_pending"
    assert set(as_json) <= {name.removeprefix("bazaar_facilitator_") for name in families}

    forced = httpx.get(f"{facilitator_url}/metrics", params={"format": "prometheus"})
    assert forced.headers["content-type"].startswith("text/plain")
    json_anyway = httpx.get(
        f"{facilitator_url}/metrics", params={"format": "json"}, headers={"Accept": "text/plain"}
    )
    assert "settled" in json_anyway.json()
