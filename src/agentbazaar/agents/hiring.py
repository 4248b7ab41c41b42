"""Hiring: find providers of a skill, pick one by price and proven trust, pay, check, review.

1. Discover: the discovery index (ERC-8004 events in SQLite, cards verified against the on-chain
   agent wallet, feedback counted only when its payment is proven) lists trusted agents offering
   the skill.
2. Trust: a provider that the buyer's trusted validators have failed is avoided: its validation
   average on the ValidationRegistry (tag ``embedding``) must be at least ``MIN_VALIDATION``.
3. Choose: among the rest, the cheapest quote for this input, then the best proven reputation.
4. Pay with x402 (the buyer's wallet policy applies), then check the delivery against what was
   bought. Embeddings: the receipt's signature by the provider's on-chain wallet, input and
   output hashes, price, payment nonce, model and weights, and, when the buyer names
   validators, the provider's on-chain validation request for it. A contract
   (``agents.contracts``): the same signature and terms (request, agent id, asset, price,
   nonce) and every hash of the delivered record, sources, build, report and parameters.
5. Give paid-only feedback on the ReputationRegistry (the feedback file carries the settlement
   tx hash as proof of payment; tag1 is the skill): 100 for a verified delivery, 0 with the
   receipt id as evidence for a bad one (and the buyer gets ``BadReceipt``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from web3.logs import DISCARD

from agentbazaar.agents.errors import BadReceipt, NoProvider, ProviderUnavailable
from agentbazaar.agents.protocol import CONTRACT_SKILL, VALIDATION_TAG, event
from agentbazaar.agents.receipts import (
    Expected,
    SignedReceipt,
    matrix_from_json,
    output_bytes,
    verify_receipt,
)
from agentbazaar.errors import BazaarError, InputError
from agentbazaar.identity.cards import canonical_json
from agentbazaar.identity.discovery import DiscoveryIndex, Follower, Query
from agentbazaar.identity.feedback import prepare_feedback
from agentbazaar.payments.client import AcceptedToken, PaidResponse, X402Auth, payment_of
from agentbazaar.payments.payers import WalletPayer

if TYPE_CHECKING:
    from agentbazaar.agents.runtime import Agent
    from agentbazaar.models.embedding import Matrix

MIN_VALIDATION = 90
HTTP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Offer:
    agent_id: int
    name: str
    wallet: str
    base_url: str
    unit_price: int
    rep_count: int
    rep_avg: float | None
    score: float
    validations: int
    validation_avg: int | None

    @property
    def avoided(self) -> bool:
        return self.validation_avg is not None and self.validation_avg < MIN_VALIDATION

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__, avoided=self.avoided)


@dataclass
class Hire:
    provider: Offer
    price: int
    units: int
    tx_hash: str | None
    nonce: str
    receipt: SignedReceipt
    output: Matrix | dict[str, Any]  # the embeddings; a contract's delivery (agents.contracts)
    feedback_index: int | None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    feedback_value: int | None = None
    skill: str = "embed"

    def to_json(self) -> dict[str, Any]:
        return {
            "skill": self.skill,
            "provider": self.provider.name,
            "providerAgentId": self.provider.agent_id,
            "price": str(self.price),
            "units": self.units,
            "txHash": self.tx_hash,
            "nonce": self.nonce,
            "receiptId": self.receipt.id,
            "feedbackIndex": self.feedback_index,
            "feedbackValue": self.feedback_value,
            "skipped": self.skipped,
        }


class Buyer:
    """The buying side of an agent (``Agent.hire`` style), with its own discovery index."""

    def __init__(self, agent: Agent, *, validators: list[str] | None = None) -> None:
        self.agent = agent
        self.validators = list(validators or [])
        net = agent.network
        self.index = DiscoveryIndex(
            ":memory:",
            chain_id=net.chain.chain_id,
            identity_registry=net.identity_address,
            reputation_registry=str(net.registries.reputation.address),
        )
        self.follower = Follower(self.index, net.chain)
        self._index_lock = threading.Lock()  # one sync at a time; queries see a whole state
        self.http = httpx.Client(timeout=HTTP_TIMEOUT)
        self.blocked: dict[int, str] = {}  # providers that delivered a bad receipt to us
        # called after a verified purchase, before its feedback (e.g. to let a validator answer)
        self.after_purchase: Callable[[Hire], None] | None = None

    def close(self) -> None:
        self.http.close()
        self.index.close()

    # ---- discovery ----------------------------------------------------------------------------
    def offers(self, skill: str) -> list[Offer]:
        with self._index_lock:
            self.follower.sync()
            records = self.index.query(Query(skill=skill, limit=100))
        token = self.agent.token.address
        assert token is not None
        out: list[Offer] = []
        for rec in records:
            if rec.agent_id == self.agent.agent_id or not rec.wallet:
                continue
            price = _unit_price(rec.skills, skill, token)
            url = _base_url(rec.skills, skill)
            if price is None or url is None:
                continue
            count, avg = self._validation(rec.agent_id)
            out.append(
                Offer(
                    rec.agent_id, rec.name, rec.wallet, url, price, rec.rep_count, rec.rep_avg,
                    rec.score, count, avg,
                )
            )  # fmt: skip
        return out

    def _validation(self, agent_id: int) -> tuple[int, int | None]:
        if not self.validators:
            return 0, None
        summary = self.agent.network.registries.validation.summary(
            agent_id, self.validators, VALIDATION_TAG
        )
        return summary.count, (summary.average_response if summary.count else None)

    # ---- hiring -------------------------------------------------------------------------------
    def hire(
        self, skill: str, payload: dict[str, Any], max_price: int, *, review: bool = True
    ) -> Hire:
        """Buy ``skill`` on ``payload`` for at most ``max_price`` base units. With ``review``
        the paid feedback is given at once; otherwise call ``review(hire)`` later (e.g. after
        the validator answered, so the feedback carries its verdict)."""
        if isinstance(max_price, bool) or not isinstance(max_price, int) or max_price <= 0:
            raise InputError("max_price is a positive integer of base units")
        skipped: list[dict[str, Any]] = []
        quotes: list[tuple[int, float, Offer, dict[str, Any]]] = []
        refusals: list[InputError] = []
        for offer in self.offers(skill):
            if offer.avoided:
                skipped.append({"provider": offer.name, "reason": "failed validation"})
                continue
            if offer.agent_id in self.blocked:
                skipped.append({"provider": offer.name, "reason": self.blocked[offer.agent_id]})
                continue
            try:
                quote = self._quote(offer, skill, payload)
            except InputError as exc:
                refusals.append(exc)
                skipped.append({"provider": offer.name, "reason": str(exc)})
                continue
            except BazaarError as exc:
                skipped.append({"provider": offer.name, "reason": str(exc)})
                continue
            price = int(quote["price"])
            if price > max_price:
                skipped.append({"provider": offer.name, "reason": f"price {price} > {max_price}"})
                continue
            quotes.append((price, -offer.score, offer, quote))
        if not quotes and refusals:
            raise refusals[0]  # no provider took it and at least one refused the input itself
        if not quotes:
            raise NoProvider(
                f"no trusted provider of {skill!r} within {max_price} base units",
                skill=skill,
                skipped=skipped,
            )
        quotes.sort(key=lambda q: (q[0], q[1], q[2].agent_id))
        price, _score, offer, quote = quotes[0]
        hired = self._buy(offer, skill, payload, quote, max_price)
        hired.skipped = skipped
        event(self.agent.name, "purchase", **hired.to_json())
        if self.after_purchase is not None:
            self.after_purchase(hired)
        if review:
            self.review(hired)
        return hired

    def review(self, hired: Hire) -> int | None:
        """Paid-only feedback for a purchase (once): the trusted validator's score when it has
        answered for this receipt, else 100 for a delivery whose receipt checked out."""
        if hired.feedback_index is not None:
            return hired.feedback_index
        value, tag2 = 100, "delivered"
        if self.validators:
            status = self.agent.network.registries.validation.status(hired.receipt.id)
            if status.tag == VALIDATION_TAG and status.validator.lower() in {
                v.lower() for v in self.validators
            }:
                value, tag2 = status.response, "validated"
        hired.feedback_index = self._feedback(
            hired.provider, hired.skill, hired.tx_hash, value, tag2
        )
        hired.feedback_value = value
        return hired.feedback_index

    def _quote(self, offer: Offer, skill: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{offer.base_url}/skills/{skill}/quote"
        try:
            resp = self.http.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{offer.name} is offline ({exc})") from exc
        if resp.status_code >= 400:
            raise _refusal(offer, resp)
        quote = resp.json()
        if not isinstance(quote, dict) or not str(quote.get("price", "")).isdigit():
            raise ProviderUnavailable(f"{offer.name} answered a malformed quote")
        return quote

    def _buy(
        self,
        offer: Offer,
        skill: str,
        payload: dict[str, Any],
        quote: dict[str, Any],
        max_price: int,
    ) -> Hire:
        paid = self._pay(
            f"{offer.base_url}/skills/{skill}?quote={quote['quote']}",
            payload,
            offer,
            max_price=min(max_price, int(quote["price"])),
            memo={"skill": skill, "provider": offer.agent_id},
        )
        made = paid.payment
        if made is None or not paid.paid or made.nonce is None:
            raise _refusal(offer, paid.response, paid)
        try:
            got = self._check(offer, skill, payload, paid, max_price)
        except BadReceipt as exc:
            self.blocked[offer.agent_id] = f"delivered a bad receipt: {exc}"
            self._record_failure(offer, skill, payload, paid, exc)
            raise
        self.agent.receipts.add(
            got.signed,
            role="received",
            texts=got.texts,
            output=got.stored,
            tx_hash=made.transaction,
        )
        return Hire(
            offer,
            made.amount,
            int(quote.get("units", 0)),
            made.transaction,
            made.nonce,
            got.signed,
            got.output,
            None,
            skill=skill,
        )

    def _pay(
        self,
        url: str,
        payload: dict[str, Any],
        offer: Offer,
        *,
        max_price: int,
        memo: dict[str, Any],
    ) -> PaidResponse:
        """POST ``payload`` to the priced ``url`` through the one paying client: only to the
        provider's on-chain wallet, at most ``max_price``, through the wallet's policy."""
        token = self.agent.token
        asset = token.address
        assert asset is not None
        auth = X402Auth(
            WalletPayer(
                self.agent.wallet, tokens={asset: token}, memo=memo, chain=self.agent.chain
            ),
            [AcceptedToken(self.agent.chain.network, asset)],
            max_amount=max_price,
            pay_to=offer.wallet,
        )
        try:
            response = self.http.post(url, json=payload, auth=auth)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"cannot reach {offer.name} at {url}: {exc}") from exc
        return PaidResponse(response, payment_of(response))

    def _check(
        self,
        offer: Offer,
        skill: str,
        payload: dict[str, Any],
        paid: PaidResponse,
        max_price: int,
    ) -> _Delivery:
        """The delivery checked as what ``skill`` sells (``BadReceipt`` if it is not)."""
        made = paid.payment
        assert made is not None and made.nonce is not None
        got = _delivery(skill, payload, paid.response, made.receipt)
        if skill == CONTRACT_SKILL:
            from agentbazaar.agents.contracts import SaleTerms, check_contract_delivery

            assert isinstance(got.output, dict)
            terms = SaleTerms(payload, offer.agent_id, self.agent.token.address or "",
                              max_price, made.amount, made.nonce)  # fmt: skip
            check_contract_delivery(got.signed, got.output, provider=offer.wallet,
                                    chain_id=self.agent.chain.chain_id, terms=terms)  # fmt: skip
            return got
        from agentbazaar.models.embedding import MODEL_ID

        assert not isinstance(got.output, dict)
        verify_receipt(
            got.signed,
            Expected(
                provider=offer.wallet,
                provider_agent_id=offer.agent_id,
                chain_id=self.agent.chain.chain_id,
                texts=got.texts,
                output=got.output,
                asset=self.agent.token.address or "",
                max_price=max_price,
                price=made.amount,
                payment_ref=made.nonce,
                model_id=MODEL_ID,
            ),
        )
        if self.validators:
            status = self.agent.network.registries.validation.status(got.signed.id)
            if status.agent_id != offer.agent_id or status.validator.lower() not in {
                v.lower() for v in self.validators
            }:
                raise BadReceipt(
                    "the provider did not submit this sale to a trusted validator",
                    field="validation",
                )
        return got

    def _record_failure(
        self,
        offer: Offer,
        skill: str,
        payload: dict[str, Any],
        paid: PaidResponse,
        exc: BadReceipt,
    ) -> None:
        tx_hash = paid.payment.transaction if paid.payment else None
        try:
            got = _delivery(skill, payload, paid.response, _body(paid.response).get("receipt"))
            self.agent.receipts.add(
                got.signed, role="received", texts=got.texts, output=got.stored,
                tx_hash=tx_hash, status="rejected", note=str(exc),
            )  # fmt: skip
        except BazaarError:
            pass  # unparseable: the feedback below still records the failure against the payment
        self._feedback(offer, skill, tx_hash, 0, "bad-receipt")

    def _feedback(
        self, offer: Offer, skill: str, tx_hash: str | None, value: int, tag2: str
    ) -> int | None:
        if not tx_hash:
            return None
        net = self.agent.network
        prepared = prepare_feedback(
            chain_id=net.chain.chain_id,
            identity_registry=net.identity_address,
            agent_id=offer.agent_id,
            client=self.agent.address,
            agent_wallet=offer.wallet,
            value=value,
            value_decimals=0,
            payment_tx=tx_hash,
            tag1=skill,
            tag2=tag2,
            endpoint=offer.base_url,
        )
        fn = net.registries.reputation.contract.functions.giveFeedback(
            offer.agent_id, value, 0, skill, tag2, offer.base_url, prepared.uri, prepared.hash
        )
        receipt = net.gas.transact(net.chain, self.agent.signer, fn)
        events = net.registries.reputation.contract.events.NewFeedback().process_receipt(
            receipt, errors=DISCARD
        )
        return int(events[0]["args"]["feedbackIndex"]) if events else None


@dataclass(frozen=True)
class _Delivery:
    """What a paid call delivered, read as what was bought: the signed receipt, the output a
    ``Hire`` carries, and the input texts and output bytes the receipt store keeps."""

    signed: SignedReceipt
    output: Matrix | dict[str, Any]
    texts: list[str]
    stored: bytes


def _delivery(skill: str, payload: dict[str, Any], resp: httpx.Response, receipt: Any) -> _Delivery:
    """Read (not yet check) a delivery of ``skill``: a contract's is its JSON body without the
    receipt (``agents.contracts``), an embedding's the matrix of its ``embeddings``."""
    signed = SignedReceipt.from_json(receipt)
    body = _body(resp)
    if skill == CONTRACT_SKILL:
        from agentbazaar.agents.contracts import ContractRequest

        delivered = {k: v for k, v in body.items() if k != "receipt"}
        request = canonical_json(ContractRequest.parse(payload).to_json()).decode()
        try:
            stored = canonical_json(delivered)
        except BazaarError as exc:
            raise BadReceipt(
                f"the delivery is not canonical JSON: {exc}", field="delivery"
            ) from exc
        return _Delivery(signed, delivered, [request], stored)
    output = matrix_from_json(body.get("embeddings"))
    return _Delivery(signed, output, list(payload.get("texts", [])), output_bytes(output))


def _refusal(offer: Offer, resp: httpx.Response, paid: PaidResponse | None = None) -> BazaarError:
    """Why a quote or a paid call did not deliver: the input refused, the payment refused or
    not settled (its reason), or the provider answering outside the protocol."""
    body = _body(resp)
    message = body.get("message") or body.get("error") or resp.text[:200]
    status = resp.status_code
    made = paid.payment if paid is not None else None
    if status in (400, 413, 422):
        return InputError(f"{offer.name} refused the input: {message}", status=status)
    if made is not None:
        message = f"payment failed ({made.error or 'not settled'}): {made.message or message}"
    elif paid is not None:
        message = f"not a 402 Payment Required: {message}"
    return ProviderUnavailable(f"{offer.name} answered {status}: {message}", status=status)


def _body(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _unit_price(skills: list[dict[str, Any]], skill: str, token: str) -> int | None:
    for s in skills:
        if skill.lower() not in {str(s.get("id", "")).lower(), *map(str.lower, s.get("tags", []))}:
            continue
        for p in s.get("prices", []):
            if str(p.get("asset", "")).lower() == token.lower():
                return int(p["amount"])
    return None


def _base_url(skills: list[dict[str, Any]], skill: str) -> str | None:
    for s in skills:
        if str(s.get("id", "")).lower() != skill.lower():
            continue
        for p in s.get("prices", []):
            endpoint = p.get("endpoint")
            if isinstance(endpoint, str) and endpoint.startswith(("http://", "https://")):
                return endpoint.rsplit("/skills/", 1)[0]
    return None
