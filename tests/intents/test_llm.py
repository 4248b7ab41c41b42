"""The optional LLM parser against a real HTTP server on loopback.

The server below is a fixture of the OpenAI chat-completions wire format (what llama.cpp's
server, vLLM and Ollama's /v1 speak): it answers POST /v1/chat/completions with canned
completions chosen by the user message, and records each request body so the test can check
what the parser sent (the JSON schema, temperature 0). It is not a model: the point is that the
LLM path speaks the protocol and that its answers pass the same validation as the built-in
parser's, including wrong or malicious ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agentbazaar.intents import IntentParseError, parse_intent
from agentbazaar.intents.llm import parse_with_llm, response_schema

BAZAAR = str(Path(sys.executable).with_name("bazaar"))
CANNED: dict[str, Any] = {
    "swap 100 USDC for WETH": {
        "intent": {
            "action": "swap",
            "amount": "100",
            "amount_side": "in",
            "token_in": "USDC",
            "token_out": "WETH",
        },
        "refusal": None,
    },
    "could you get me half a wrapped ether, paying in usdc, 0.3% slippage tops": {
        "intent": {
            "action": "swap",
            "amount": "0.5",
            "amount_side": "out",
            "token_in": "USDC",
            "token_out": "WETH",
            "max_slippage_bps": 30,
        },
        "refusal": None,
    },
    "make me rich": {"intent": None, "refusal": "no transaction was described"},
    # a model that ignores the constraints must still be caught by validation:
    "send money to bob": {
        "intent": {"action": "send", "amount": "-5", "token_in": "USDC", "to": "bob"},
        "refusal": None,
    },
    "pay bob": {"intent": {"action": "pay", "amount": "1", "token_in": "USDC", "to": "bob"}},
}


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body})
        if self.path != "/v1/chat/completions":
            self._reply(404, {"error": {"message": "not found"}})
            return
        user = body["messages"][-1]["content"]
        if user == "not json please":
            content = "Sure! Here is your swap."
        else:
            content = json.dumps(CANNED[user])
        self._reply(
            200,
            {
                "id": "chatcmpl-fixture",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
            },
        )

    def _reply(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.requests.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_llm_intent_equals_the_builtin_parsers(endpoint: str) -> None:
    sentence = "swap 100 USDC for WETH"
    assert parse_with_llm(sentence, url=endpoint, model="tiny") == parse_intent(sentence)
    sent = _Handler.requests[-1]["body"]
    assert sent["temperature"] == 0 and sent["model"] == "tiny"
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == response_schema()


def test_llm_understands_what_the_rules_do_not(endpoint: str) -> None:
    sentence = "could you get me half a wrapped ether, paying in usdc, 0.3% slippage tops"
    with pytest.raises(IntentParseError):
        parse_intent(sentence)
    intent = parse_with_llm(sentence, url=endpoint, model="tiny")
    assert intent.stable()["amount_side"] == "out" and intent.max_slippage_bps == 30


@pytest.mark.parametrize(
    ("sentence", "match"),
    [
        ("make me rich", "no transaction was described"),
        ("send money to bob", "positive"),
        ("pay bob", "agent"),
        ("not json please", "did not answer with an intent"),
    ],
)
def test_llm_answers_go_through_the_same_validation(
    endpoint: str, sentence: str, match: str
) -> None:
    with pytest.raises(IntentParseError, match=match):
        parse_with_llm(sentence, url=endpoint, model="tiny")


def test_unreachable_endpoint_is_a_clear_error(endpoint: str) -> None:
    with pytest.raises(IntentParseError, match="failed"):
        parse_with_llm("swap 1 USDC for WETH", url=endpoint + "/nope", model="tiny")


def test_cli_intent_with_llm_url(endpoint: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env["BAZAAR_HOME"] = str(tmp_path)
    base = [BAZAAR, "intent", "--llm-url", endpoint, "--model", "tiny", "--json"]
    proc = subprocess.run(
        [*base, "swap 100 USDC for WETH"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == parse_intent("swap 100 USDC for WETH").stable()
    refused = subprocess.run(
        [*base, "make me rich"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1 and "no transaction was described" in refused.stderr
