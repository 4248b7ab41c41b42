"""The agent runtime: a wallet, an ERC-8004 identity, priced skills and an HTTP service.

An ``Agent`` serves, on ``127.0.0.1`` (uvicorn in a thread, free port by default):

- ``GET /.well-known/agent-card.json``: its A2A card, signed by its wallet;
- ``GET /healthz``;
- ``POST /a2a``: JSON-RPC 2.0 ``message/send`` and ``tasks/get``; a priced skill is bought
  there with x402 inside A2A (``agents.a2a``: a task in ``input-required`` with the payment
  requirements, the payment in the next message, the answer and the settlement in the completed
  task); the assistant takes a plain-text task there;
- ``POST /skills/<id>/quote`` (free) and ``POST /skills/<id>?quote=<id>`` (paid with x402
  through the payments paywall, priced by the quote: ``payments.server.QuotedPrice``);
- ``GET /evidence/<receipt id>``: the texts, output and signed receipt of a sale, for validators.

On ``start`` it registers itself on the identity registry (or, when it already has an agent id,
updates its agent URI) with a signed ERC-8004 registration file in a ``data:`` URI that names
its A2A endpoint and its priced skills, and binds its wallet as the agent wallet. Settlement of
its sales goes through an in-process facilitator (the payments layer's ``exact`` handler) that
pays gas from the agent's own account.

Bad input to any route is a 4xx with a JSON error body, never a 500.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hexbytes import HexBytes

from agentbazaar.agents._tx import GasBook
from agentbazaar.agents.a2a import (
    EXTENSIONS_HEADER,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    A2ASeller,
    activated_extensions,
    extension_declaration,
    is_follow_up,
    rpc_error,
    unknown_method,
)
from agentbazaar.agents.errors import RpcRefusal
from agentbazaar.agents.generation import install_openai_routes
from agentbazaar.agents.hiring import Buyer
from agentbazaar.agents.protocol import (
    event,
    in_thread,
    json_body,
)
from agentbazaar.agents.receipts import (
    ContractReceipt,
    GenerationReceipt,
    SignedReceipt,
    matrix_from_bytes,
)
from agentbazaar.agents.skills import (
    Payment,
    QuoteBook,
    Skill,
    evidence,
    generation_evidence,
)
from agentbazaar.agents.store import ReceiptStore
from agentbazaar.chain import Chain, to_address
from agentbazaar.errors import AgentError, BazaarError, InputError, ServiceError
from agentbazaar.identity.cards import (
    AgentCard,
    Capabilities,
    Interface,
    Price,
    RegistrationFile,
    RegistrationRef,
    Service,
    card_bytes,
    sign_card,
    to_data_uri,
)
from agentbazaar.identity.cards import Skill as CardSkill
from agentbazaar.identity.contracts import Registries
from agentbazaar.loopback import ThreadedServer
from agentbazaar.payments.server import PaymentTerms, QuotedPrice, install_paywall, paid_by
from agentbazaar.tokens import Token
from agentbazaar.wallet import Wallet
from agentbazaar.web import install_error_handler

log = logging.getLogger("agentbazaar.agents")
CARD_PATH = "/.well-known/agent-card.json"


@dataclass
class Network:
    """What every agent on one deployment shares: the chain, the registries, the payment token."""

    chain: Chain
    registries: Registries
    token: Token
    gas: GasBook = field(default_factory=GasBook)

    @property
    def identity_address(self) -> str:
        return str(self.registries.identity.address)


class Agent:
    """One agent: ``start()`` serves it and registers it; ``stop()`` stops the server."""

    def __init__(
        self,
        name: str,
        wallet: Wallet,
        network: Network,
        *,
        description: str = "",
        skills: list[Skill] | None = None,
        data_dir: Path | None = None,
        validator: str | None = None,
        agent_id: int | None = None,
        trusted_validators: list[str] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.wallet = wallet
        self.network = network
        self.skills: dict[str, Skill] = {s.id: s for s in skills or []}
        self.validator = validator
        self.trusted_validators = list(trusted_validators or [])
        self.agent_id = agent_id
        self._buyer: Any = None
        self.data_dir = data_dir
        self.receipts = ReceiptStore(data_dir / "receipts.sqlite" if data_dir else None)
        self.quotes = QuoteBook()
        self.url: str | None = None
        self.registration_tx: str | None = None
        self._server: ThreadedServer | None = None
        self._tx_lock = threading.Lock()
        self._facilitator_client: Any = None
        self._a2a: A2ASeller | None = None
        self._a2a_lock = threading.Lock()

    # ---- facts --------------------------------------------------------------------------------
    @property
    def chain(self) -> Chain:
        return self.network.chain

    @property
    def token(self) -> Token:
        return self.network.token

    @property
    def address(self) -> ChecksumAddress:
        return self.wallet.address

    @property
    def signer(self) -> LocalAccount:
        """The agent's key for what is not a spend: receipts, cards, registry transactions
        (gas only), and settling its own sales."""
        return self.wallet.account_for_deploy()

    def require_agent_id(self) -> int:
        if self.agent_id is None:
            raise AgentError(f"agent {self.name!r} is not registered yet: start it first")
        return self.agent_id

    # ---- documents ----------------------------------------------------------------------------
    def _card_skills(self) -> list[CardSkill]:
        return [
            CardSkill(
                id=s.id,
                name=s.name,
                description=s.description,
                tags=list(s.tags),
                prices=[self._price(s, amount, unit) for amount, unit in _price_list(s)],
                **({"offer": s.offer()} if hasattr(s, "offer") else {}),
            )
            for s in self.skills.values()
        ]

    def _price(self, skill: Skill, amount: int, unit: str) -> Price:
        assert self.token.address is not None
        metered = getattr(skill, "metered", False)
        endpoint = f"{self.url}/v1/chat/completions" if metered else f"{self.url}/skills/{skill.id}"
        return Price.model_validate(
            {
                "network": self.chain.network,
                "asset": self.token.address,
                "symbol": self.token.symbol,
                "amount": str(amount),
                "unit": unit,
                "endpoint": endpoint,
                **({"pricing": "metered"} if metered else {}),
            }
        )

    def registration(self) -> RegistrationFile:
        refs = []
        if self.agent_id is not None:
            refs = [
                RegistrationRef(
                    agentId=self.agent_id,
                    agentRegistry=f"eip155:{self.chain.chain_id}:{self.network.identity_address}",
                )
            ]
        return RegistrationFile(
            name=self.name,
            description=self.description,
            wallet=self.address,
            skills=self._card_skills(),
            services=[Service(name="A2A", endpoint=f"{self.url}{CARD_PATH}", version="0.3.0")],
            registrations=refs,
            supportedTrust=["reputation", "crypto-economic"],
        )

    def card(self) -> dict[str, Any]:
        card = AgentCard(
            name=self.name,
            description=self.description,
            wallet=self.address,
            skills=self._card_skills(),
            supportedInterfaces=[Interface(url=f"{self.url}/a2a")],
            capabilities=Capabilities(extensions=self._extensions()),
        )
        return sign_card(card, self.signer, self.chain.chain_id)

    # ---- on-chain identity --------------------------------------------------------------------
    def register(self) -> int:
        """Register (or update the URI of) this agent and bind its wallet; returns the id."""
        ident = self.network.registries.identity
        with self._tx_lock:
            if self.agent_id is None:
                self.agent_id = ident.register(self.signer, "")
            uri = to_data_uri(
                card_bytes(sign_card(self.registration(), self.signer, self.chain.chain_id))
            )
            receipt = ident.set_agent_uri(self.signer, self.agent_id, uri)
            self.registration_tx = HexBytes(receipt["transactionHash"]).to_0x_hex()
            if ident.get_agent_wallet(self.agent_id) != self.address:
                ident.bind_wallet(self.signer, self.agent_id, self.signer)
        return self.agent_id

    def request_validation(self, signed: SignedReceipt) -> None:
        """Ask the named validator on-chain to check a sale (request hash = receipt id)."""
        if self.validator is None:
            return
        registry = self.network.registries.validation.contract
        fn = registry.functions.validationRequest(
            to_address(self.validator),
            self.require_agent_id(),
            f"{self.url}/evidence/{signed.id}",
            HexBytes(signed.id),
        )
        self.network.gas.transact(self.chain, self.signer, fn)

    # ---- HTTP service -------------------------------------------------------------------------
    def app(self) -> FastAPI:
        app = FastAPI(title=self.name, docs_url=None, redoc_url=None, openapi_url=None)
        self._routes(app)
        for skill in self.skills.values():
            if getattr(skill, "metered", False):  # priced by usage: its own OpenAI route
                install_openai_routes(app, self, skill)  # type: ignore[arg-type]
        quoted = [
            QuotedPrice(f"POST /skills/{skill_id}", self._price_for(skill_id))
            for skill_id, skill in self.skills.items()
            if not getattr(skill, "metered", False)
        ]
        if quoted:  # one paywall (the payments guard) for every quoted skill
            terms = PaymentTerms(self.chain.network, self.token, self.pay_to())
            install_paywall(app, quoted, terms=terms, facilitator=self._facilitator())
        return app

    def pay_to(self) -> str:
        """Where buyers pay: the agent's wallet (the on-chain ``agentWallet`` buyers check)."""
        return self.address

    def _facilitator(self) -> Any:
        """The agent's one in-process facilitator (its reservations cover every route and the
        A2A endpoint alike)."""
        from agentbazaar.payments.facilitator import exact_facilitator

        assert self.token.address is not None
        if self._facilitator_client is None:
            self._facilitator_client = exact_facilitator(
                self.chain, self.signer, assets=[self.token.address], workers=4
            )
        return self._facilitator_client

    def _price_for(self, skill_id: str) -> Callable[[str | None], int | None]:
        def price(quote_id: str | None) -> int | None:
            quote = self.quotes.get(quote_id, skill_id)
            return quote.price if quote else None

        return price

    def _routes(self, app: FastAPI) -> None:
        install_error_handler(app)

        @app.get("/healthz")
        def healthz() -> dict[str, Any]:
            return {"ok": True, "name": self.name, "agentId": self.agent_id}

        @app.get(CARD_PATH)
        def agent_card() -> dict[str, Any]:
            return self.card()

        @app.post("/skills/{skill_id}/quote")
        async def quote(skill_id: str, request: Request) -> JSONResponse:
            skill = self._skill(skill_id)
            payload = await json_body(request)
            price, units, in_hash = skill.quote(payload)
            issued = self.quotes.issue(skill_id, price, units, in_hash)
            return JSONResponse(
                {**issued.to_json(), "asset": self.token.address, "payTo": self.address}
            )

        for skill_id, skill in self.skills.items():
            if not getattr(skill, "metered", False):
                self._paid_route(app, skill_id)

        @app.get("/evidence/{receipt_id}")
        def evidence_of(receipt_id: str) -> JSONResponse:
            found = [s for s in self.receipts.query(receipt_id=receipt_id) if s.role == "issued"]
            if not found:
                return JSONResponse({"error": "unknown_receipt"}, status_code=404)
            s = found[0]
            if isinstance(s.signed.receipt, GenerationReceipt):
                return JSONResponse(generation_evidence(s.signed, s.texts, s.output))
            if isinstance(s.signed.receipt, ContractReceipt):
                return JSONResponse(
                    {"receipt": s.signed.to_json(), "request": s.texts,
                     "delivery": json.loads(s.output)}
                )  # fmt: skip
            return JSONResponse(evidence(s.signed, s.texts, matrix_from_bytes(s.output)))

        @app.post("/a2a")
        async def a2a(request: Request) -> JSONResponse:
            activated = activated_extensions(request.headers.get(EXTENSIONS_HEADER))
            headers = {EXTENSIONS_HEADER: ", ".join(activated)} if activated else None
            return JSONResponse(await self._jsonrpc(request), headers=headers)

    def _paid_route(self, app: FastAPI, skill_id: str) -> None:
        async def paid(request: Request) -> JSONResponse:
            skill = self._skill(skill_id)
            payload = await json_body(request)
            quote = self.quotes.get(request.query_params.get("quote"), skill_id)
            if quote is None:
                raise InputError("unknown or expired quote")
            _price, _units, in_hash = skill.quote(payload)
            if in_hash != quote.input_hash:
                raise InputError("the input differs from the quoted input: ask for a new quote")
            nonce, payer, amount = paid_by(request)
            result = await in_thread(
                lambda: skill.perform(self, payload, Payment(nonce, payer, amount))
            )
            self.quotes.use(quote.id)
            event(self.name, "sale", skill=skill_id, payer=payer, price=amount, nonce=nonce)
            return JSONResponse(result)

        app.post(f"/skills/{skill_id}")(paid)

    def _skill(self, skill_id: str) -> Skill:
        skill = self.skills.get(skill_id)
        if skill is None:
            raise InputError(
                f"unknown skill {skill_id!r}; this agent offers: {', '.join(self.skills) or 'none'}"
            )
        return skill

    @property
    def a2a(self) -> A2ASeller:
        """The x402 A2A seller of this agent's priced skills (``agents.a2a``)."""
        with self._a2a_lock:
            if self._a2a is None:
                self._a2a = A2ASeller(self)
            return self._a2a

    def _extensions(self) -> list[dict[str, Any]]:
        sellable = [s for s in self.skills.values() if not getattr(s, "metered", False)]
        return [extension_declaration()] if sellable else []

    async def _jsonrpc(self, request: Request) -> dict[str, Any]:
        try:
            body = await json_body(request)
        except InputError as exc:
            return rpc_error(None, PARSE_ERROR, exc.message)
        rid = body.get("id") if isinstance(body, dict) else None
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
            return rpc_error(rid, INVALID_REQUEST, "not a JSON-RPC 2.0 request")
        method, params = body.get("method"), body.get("params")
        try:
            if method == "tasks/get":
                result = self.a2a.get(params)
            elif method != "message/send":
                return rpc_error(rid, METHOD_NOT_FOUND, unknown_method(method))
            elif is_follow_up(params):
                result = await self.a2a.follow_up(params)
            else:
                result = await in_thread(lambda: self.handle_message(params))
        except RpcRefusal as exc:
            return rpc_error(rid, exc.code, exc.message)
        except BazaarError as exc:
            return rpc_error(rid, INVALID_PARAMS, exc.message)
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def handle_message(self, params: Any) -> dict[str, Any]:
        """A2A ``message/send`` opening a task: a priced skill's task in ``input-required``
        with its x402 payment requirements (``agents.a2a``)."""
        return self.a2a.open_task(params)

    # ---- buying ---------------------------------------------------------------------------------
    def hire(self, skill: str, payload: dict[str, Any], max_price: int) -> Any:
        """Buy ``skill`` from another agent for at most ``max_price`` base units: discover,
        choose by price and proven trust, pay with x402, verify the receipt, give paid feedback
        (see ``agents.hiring``). Returns a ``Hire``."""
        if self._buyer is None:
            self._buyer = Buyer(self, validators=self.trusted_validators)
        return self._buyer.hire(skill, payload, max_price)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self, *, port: int | None = None, register: bool = True) -> str:
        """Serve on 127.0.0.1 (free port unless given), then register on-chain."""
        if self._server is not None:
            raise AgentError(f"agent {self.name!r} is already running at {self.url}")
        server = ThreadedServer(self.app(), port=port, name=f"agent-{self.name}")
        try:
            self.url = server.start()
        except ServiceError as exc:
            raise AgentError(f"agent {self.name!r} could not listen on port {server.port}") from exc
        self._server = server
        if register:
            try:
                self.register()
            except BaseException:
                self.stop()
                raise
        event(self.name, "started", url=self.url, agentId=self.agent_id, wallet=self.address)
        return self.url

    def stop(self) -> None:
        if self._buyer is not None:
            self._buyer.close()
            self._buyer = None
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _price_list(skill: Skill) -> list[tuple[int, str]]:
    card_prices = getattr(skill, "card_prices", None)
    return card_prices() if card_prices is not None else [(skill.unit_price, skill.unit)]
