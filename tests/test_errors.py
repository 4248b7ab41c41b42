"""The error tree: every exception class agentbazaar defines lives in an ``errors`` module and
is a ``BazaarError`` carrying the HTTP status it answers with; the one FastAPI handler answers
each with that status and its ``to_dict()`` body (services: ``test_service_errors.py``)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from functools import cache

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.testclient import TestClient

import agentbazaar
from agentbazaar import errors
from agentbazaar.agents import errors as agent_errors
from agentbazaar.channels import errors as channel_errors
from agentbazaar.data import errors as data_errors
from agentbazaar.identity import errors as identity_errors
from agentbazaar.jobs import errors as job_errors
from agentbazaar.payments import errors as payment_errors
from agentbazaar.web import error_response, install_error_handler

# statuses an error may answer with: what the caller can fix (4xx), what is down (502/503)
ALLOWED = {400, 402, 403, 404, 409, 422, 502, 503}

# family -> the status its meaning asks for (subclasses inherit unless they say otherwise)
EXPECTED: list[tuple[type[errors.BazaarError], int]] = [
    (errors.BazaarError, 400),
    (errors.InputError, 400),
    (errors.AmountError, 400),
    (errors.NeedsClarification, 400),
    (errors.NotFound, 404),
    (errors.ConfigError, 503),
    (errors.ChainError, 503),
    (errors.ChainUnavailable, 503),
    (errors.WrongChain, 503),
    (errors.TransactionTimeout, 503),
    (errors.TransactionReverted, 409),
    (errors.ContractError, 422),
    (errors.NotVerified, 404),
    (errors.ServiceError, 503),
    (errors.UnknownWallet, 404),
    (errors.WalletExists, 409),
    (errors.PolicyViolation, 403),
    (errors.LedgerError, 409),
    (errors.PaymentError, 402),
    (errors.IntentError, 422),
    (errors.ModelUnavailable, 503),
    (payment_errors.Rejected, 402),
    (payment_errors.PaymentRefused, 402),
    (payment_errors.FacilitatorError, 503),
    (payment_errors.PaymentHeaderError, 400),
    (channel_errors.VoucherRejected, 402),
    (channel_errors.ChannelInputError, 400),
    (channel_errors.ChannelStoreError, 503),
    (job_errors.JobInputError, 400),
    (job_errors.NotAllowed, 409),
    (identity_errors.CardFetchError, 503),
    (identity_errors.PaymentAlreadyUsed, 409),
    (identity_errors.RegistryInputError, 400),
    (data_errors.UnknownDataset, 404),
    (agent_errors.NoProvider, 404),
    (agent_errors.AgentUnavailable, 503),
]


@cache
def defined_exceptions() -> tuple[type[BaseException], ...]:
    """Every exception class defined in a module of agentbazaar (imported to find them; a
    module whose optional third-party dependency is missing is left out)."""
    found: dict[str, type[BaseException]] = {}
    modules = [agentbazaar.__name__] + [
        m.name for m in pkgutil.walk_packages(agentbazaar.__path__, "agentbazaar.")
    ]
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an optional extra not installed (a framework face)
            if (exc.name or "").startswith("agentbazaar"):
                raise
            continue
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return tuple(found[k] for k in sorted(found))


def test_every_exception_class_lives_in_an_errors_module_of_the_tree() -> None:
    classes = defined_exceptions()
    assert errors.BazaarError in classes and payment_errors.Rejected in classes
    outside = [
        f"{c.__module__}.{c.__name__}"
        for c in classes
        if c.__module__.rpartition(".")[2] != "errors"
    ]
    assert outside == [], "move these to their package's errors module"
    not_ours = [c.__name__ for c in classes if not issubclass(c, errors.BazaarError)]
    assert not_ours == [], "every error is a BazaarError"


def test_every_error_class_has_an_http_status_it_may_answer_with() -> None:
    for cls in defined_exceptions():
        assert issubclass(cls, errors.BazaarError)
        status = cls.http_status
        assert isinstance(status, int) and status in ALLOWED, (cls.__name__, status)


def test_no_two_error_classes_share_a_name() -> None:
    """The JSON body names the class (``error``): one name, one class."""
    names = [c.__name__ for c in defined_exceptions()]
    assert sorted({n for n in names if names.count(n) > 1}) == []


@pytest.mark.parametrize(("cls", "status"), EXPECTED, ids=[c.__name__ for c, _ in EXPECTED])
def test_each_family_answers_with_the_status_of_its_meaning(
    cls: type[errors.BazaarError], status: int
) -> None:
    assert cls.http_status == status


def test_rejected_keeps_its_reason_and_payer() -> None:
    exc = payment_errors.Rejected("invalid_payload", "bad nonce", "0xabc")
    assert (exc.reason, exc.message, exc.payer, str(exc)) == (
        "invalid_payload",
        "bad nonce",
        "0xabc",
        "bad nonce",
    )
    assert payment_errors.Rejected("expired").message == "expired"
    assert exc.to_dict()["error"] == "Rejected" and exc.to_dict()["reason"] == "invalid_payload"


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/raise/{kind}")
    def raise_(kind: str) -> dict[str, str]:
        if kind == "chain":
            raise errors.ChainUnavailable("cannot reach the chain", url="http://127.0.0.1:1")
        if kind == "input":
            raise errors.AmountError("amount must be positive", amount="-1")
        if kind == "missing":
            raise errors.NotFound("no agent 7", agent_id=7)
        return {"ok": kind}

    return app


@pytest.mark.parametrize(
    ("kind", "status", "name"),
    [
        ("chain", 503, "ChainUnavailable"),
        ("input", 400, "AmountError"),
        ("missing", 404, "NotFound"),
    ],
)
def test_the_handler_answers_the_error_status_with_its_json(
    kind: str, status: int, name: str
) -> None:
    app = _app()
    install_error_handler(app)
    r = TestClient(app).get(f"/raise/{kind}")
    assert r.status_code == status
    body = r.json()
    assert body["error"] == name and body["message"]


def test_error_response_is_the_status_and_the_to_dict_body() -> None:
    exc = errors.NotFound("no agent 7", agent_id=7, chain=None)
    response = error_response(exc)
    assert response.status_code == 404
    assert json.loads(bytes(response.body)) == {
        "error": "NotFound",
        "message": "no agent 7",
        "agent_id": 7,
        "chain": None,
    }


def test_a_page_may_answer_instead_of_json() -> None:
    app = _app()

    def page(request: Request, exc: errors.BazaarError) -> Response | None:
        if request.headers.get("accept") == "text/html":
            return PlainTextResponse(f"page {exc.http_status}", status_code=exc.http_status)
        return None

    install_error_handler(app, page=page)
    client = TestClient(app)
    shown = client.get("/raise/missing", headers={"accept": "text/html"})
    assert (shown.status_code, shown.text) == (404, "page 404")
    assert client.get("/raise/chain").json()["error"] == "ChainUnavailable"
    assert client.get("/raise/fine").json() == {"ok": "fine"}


def test_to_dict_keeps_lists_and_dicts_as_json_data() -> None:
    from agentbazaar.agents.errors import NoProvider

    skipped = [{"provider": "minilm-honest", "reason": "price 20 > 1"}]
    body = NoProvider("no provider", skill="embed", skipped=skipped, at=("a", 1)).to_dict()
    assert body["skipped"] == skipped and body["at"] == ["a", 1]
    assert errors.InputError("x", where={1: object}).to_dict()["where"] == {"1": str(object)}
