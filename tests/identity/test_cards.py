"""Agent cards: generation from config, RFC 8785 canonical JSON, signing, tampering, data: URIs."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from hypothesis import given, settings
from hypothesis import strategies as st

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import IdentityError
from agentbazaar.identity.cards import (
    AgentCard,
    AgentConfig,
    RegistrationFile,
    build_agent_card,
    build_registration,
    canonical_json,
    card_bytes,
    card_url,
    check_wallet,
    fetch_document,
    from_data_uri,
    load_agent_config,
    parse_card,
    resolve_card,
    sign_card,
    to_data_uri,
)
from agentbazaar.identity.errors import CardError, CardFetchError, SignatureError, WalletMismatch
from agentbazaar.testing import free_port, serve_in_thread
from agentbazaar.tokens import NATIVE, Token, TokenRegistry

USDC = Token("USDC", 6, "0x5FbDB2315678afecb367f032d93F642f64180aa3", "USD Coin", "2")
TOKENS = TokenRegistry([NATIVE, USDC])
CHAIN_ID = 31337

CONFIG_TOML = """
[agent]
name = "translator"
description = "Translates text"
url = "https://translator.example"

[[skills]]
id = "translate"
name = "Translate"
tags = ["nlp", "language"]
examples = ["translate 'hello' to French"]

[[skills.prices]]
token = "USDC"
amount = "0.05"

[[skills.prices]]
token = "USDC"
amount = "0.01"
scheme = "batch-settlement"
"""


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG_TOML)
    return load_agent_config(path)


def signed_registration(config: AgentConfig) -> dict[str, Any]:
    agent = dev_account(3)
    card = build_registration(config, agent.address, TOKENS, CHAIN_ID)
    return sign_card(card, agent, CHAIN_ID)


def test_config_prices_become_base_units(config: AgentConfig) -> None:
    card = build_registration(config, dev_account(3).address, TOKENS, CHAIN_ID)
    prices = card.skills[0].prices
    assert [(p.amount, p.scheme, p.asset, p.network) for p in prices] == [
        ("50000", "exact", USDC.address, "eip155:31337"),
        ("10000", "batch-settlement", USDC.address, "eip155:31337"),
    ]
    assert card.services[0].endpoint == "https://translator.example/.well-known/agent-card.json"
    assert card.type == "https://eips.ethereum.org/EIPS/eip-8004#registration-v1"


def test_registration_sign_round_trip(config: AgentConfig) -> None:
    data = signed_registration(config)
    card = parse_card(card_bytes(data))
    assert isinstance(card, RegistrationFile)
    assert card.wallet == dev_account(3).address
    assert card.skills[0].prices[0].units == 50_000
    assert data["signatures"][0]["protected"]


def test_a2a_card_sign_round_trip(config: AgentConfig) -> None:
    agent = dev_account(4)
    card = build_agent_card(config, agent.address, TOKENS, CHAIN_ID)
    parsed = parse_card(json.dumps(sign_card(card, agent, CHAIN_ID)))
    assert isinstance(parsed, AgentCard)
    assert parsed.supportedInterfaces[0].url == "https://translator.example"
    assert parsed.skills[0].tags == ["nlp", "language"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every leaf of a JSON document, by path (the signatures excluded)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if prefix == () and k == "signatures":
                continue
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))
    else:
        yield prefix


def _tamper(doc: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    node = out
    for step in path[:-1]:
        node = node[step]
    old = node[path[-1]]
    if isinstance(old, bool):
        new: Any = not old
    elif isinstance(old, int):
        new = old + 1
    elif isinstance(old, str) and old.startswith("0x") and len(old) == 42:
        new = dev_account(9).address if old != dev_account(9).address else dev_account(8).address
    elif isinstance(old, str) and old.isdigit():
        new = str(int(old) + 1)
    else:
        new = str(old) + "x"
    node[path[-1]] = new
    return out


def test_tampering_any_field_is_detected(config: AgentConfig) -> None:
    for doc in (
        signed_registration(config),
        sign_card(
            build_agent_card(config, dev_account(4).address, TOKENS, CHAIN_ID),
            dev_account(4),
            CHAIN_ID,
        ),
    ):
        paths = list(_paths(doc))
        assert len(paths) > 15
        for path in paths:
            with pytest.raises(IdentityError):
                parse_card(card_bytes(_tamper(doc, path)))


def test_added_or_removed_field_is_detected(config: AgentConfig) -> None:
    doc = signed_registration(config)
    added = dict(doc, extra="surprise")
    with pytest.raises(SignatureError):
        parse_card(card_bytes(added))
    removed = {k: v for k, v in doc.items() if k != "description"}
    with pytest.raises(SignatureError):
        parse_card(card_bytes(removed))


def test_missing_and_foreign_signatures(config: AgentConfig) -> None:
    doc = signed_registration(config)
    with pytest.raises(SignatureError, match="not signed"):
        parse_card(card_bytes({k: v for k, v in doc.items() if k != "signatures"}))
    other = build_registration(config, dev_account(5).address, TOKENS, CHAIN_ID)
    foreign = sign_card(other, dev_account(5), CHAIN_ID)
    swapped = dict(doc, signatures=foreign["signatures"])
    with pytest.raises(SignatureError):
        parse_card(card_bytes(swapped))
    for entry in (
        {"protected": "!!", "signature": "AA"},
        {"protected": "bm90IGpzb24", "signature": "AA"},  # base64url of "not json"
        {"protected": doc["signatures"][0]["protected"], "signature": "AAAA"},
        {"protected": doc["signatures"][0]["protected"]},
        "just a string",
    ):
        with pytest.raises(SignatureError):
            parse_card(card_bytes(dict(doc, signatures=[entry])))
    with pytest.raises(SignatureError, match="wallet"):
        sign_card(other, dev_account(3), CHAIN_ID)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'{"name": "x"}',
        b'{"name": "x", "wallet": "0x1234", "signatures": []}',
        b'{"name": "x", "wallet": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "score": 1.5}',
        b'{"name": "x", "wallet": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "n": NaN}',
    ],
)
def test_malformed_cards_are_card_errors(raw: bytes) -> None:
    with pytest.raises(CardError):
        parse_card(raw)


def test_bad_price_fields_are_rejected(config: AgentConfig) -> None:
    doc = signed_registration(config)
    for bad in ("0.05", "-1", "", "01"):
        broken = json.loads(json.dumps(doc))
        broken["skills"][0]["prices"][0]["amount"] = bad
        with pytest.raises(CardError, match="amount"):
            parse_card(card_bytes(broken))


def test_wallet_check(config: AgentConfig) -> None:
    card = parse_card(card_bytes(signed_registration(config)))
    check_wallet(card, dev_account(3).address.lower())
    with pytest.raises(WalletMismatch, match="differs"):
        check_wallet(card, dev_account(4).address)
    for missing in (None, "", "0x" + "0" * 40, "not an address"):
        with pytest.raises(WalletMismatch, match="no agentWallet"):
            check_wallet(card, missing)


def test_canonical_json_rfc8785_rules() -> None:
    # keys sorted by UTF-16 code units, no whitespace, non-ASCII kept literally
    assert canonical_json({"b": 1, "a": [True, None], "é": "ü"}) == (
        '{"a":[true,null],"b":1,"é":"ü"}'.encode()
    )
    # U+10000 (surrogates D800..) sorts before U+FFFD in UTF-16 but after it in code points
    assert canonical_json({"\ufffd": 1, "\U00010000": 2}).decode() == '{"\U00010000":2,"\ufffd":1}'
    assert canonical_json("\n\x01") == b'"\\n\\u0001"'
    with pytest.raises(CardError):
        canonical_json({"x": 0.5})
    with pytest.raises(CardError):
        canonical_json(2**60)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_data_uri_round_trip(data: bytes) -> None:
    assert from_data_uri(to_data_uri(data)) == data


def test_data_uri_errors() -> None:
    assert from_data_uri("data:application/json,%7B%7D") == b"{}"
    with pytest.raises(CardError):
        from_data_uri("data:text/html;base64,e30=")
    with pytest.raises(CardError):
        from_data_uri("data:application/json;base64,***")
    with pytest.raises(CardFetchError):
        from_data_uri(to_data_uri(b" " * 100), max_bytes=10)
    with pytest.raises(CardFetchError):
        fetch_document("ftp://example.com/card.json")
    with pytest.raises(CardFetchError):
        fetch_document("http://example.com/card.json")


def test_card_in_data_uri_resolves(config: AgentConfig) -> None:
    uri = to_data_uri(card_bytes(signed_registration(config)))
    assert base64.b64decode(uri.split(",", 1)[1])
    assert resolve_card(uri).name == "translator"


@pytest.fixture
def card_server(config: AgentConfig) -> Iterator[str]:
    """A real HTTP server on loopback serving a signed card, a huge card and a 404."""
    agent = dev_account(4)
    body = card_bytes(
        sign_card(build_agent_card(config, agent.address, TOKENS, 31337), agent, 31337)
    )
    app = FastAPI()

    @app.get("/.well-known/agent-card.json")
    def _card() -> Response:
        return Response(body, media_type="application/json")

    @app.get("/slow/.well-known/agent-card.json")
    async def _slow() -> Response:
        await asyncio.sleep(3)
        return Response(body, media_type="application/json")

    @app.get("/huge/.well-known/agent-card.json")
    def _huge() -> Response:
        return Response(b" " * 200_000, media_type="application/json")

    with serve_in_thread(app) as url:
        yield url


def test_fetch_card_over_http(card_server: str) -> None:
    card = resolve_card(card_url(card_server))
    assert isinstance(card, AgentCard) and card.wallet == dev_account(4).address
    with pytest.raises(CardFetchError, match="larger"):
        fetch_document(card_url(card_server + "/huge"))
    with pytest.raises(CardFetchError, match="Timeout"):
        fetch_document(card_url(card_server + "/slow"), timeout=0.3)
    with pytest.raises(CardFetchError, match="404"):
        fetch_document(card_server + "/missing")
    with pytest.raises(CardFetchError):
        fetch_document(card_url(f"http://127.0.0.1:{free_port()}"), timeout=1.0)


_json_leaf = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_canonical_json_paths_agree_and_are_stable(value: Any) -> None:
    from agentbazaar.identity.cards import _jcs

    try:
        out = canonical_json(value)
    except CardError:  # lone surrogates cannot be encoded
        return
    assert out == _jcs(value).encode("utf-8")  # the C fast path and the RFC 8785 walk agree
    assert canonical_json(json.loads(out)) == out  # parse + re-serialise is the identity
