"""`bazaar hire SKILL INPUT --max PRICE`: buy a skill from a served agent, as agents buy.

Discovery (ERC-8004 registrations, cards checked against the on-chain agent wallet), a quote
from each provider, the cheapest trusted one within the maximum, payment through the one paying
client (payee = the provider's on-chain wallet, at most the quoted price, the wallet's spending
policy), then the provider's signed receipt verified. Everything is ``agents.hiring.Buyer``.

``bazaar hire contract SENTENCE``: the contract author's skill (``agents.contracts``); the
request names the payer as deployer and carries the addresses of the wallets the sentence
names, from the payer's data directory (the sealed address book).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from agentbazaar.cli._common import emit_json, open_wallet, run_context, waiting, wallet_name
from agentbazaar.errors import ConfigError, IdentityError, InputError


def _payload(text: str) -> dict[str, Any] | None:
    """INPUT: a JSON object (the skill's input as is), else plain text (None: the skill reads
    it; checked non-empty here)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise InputError(f"INPUT looks like JSON but is not: {exc}") from exc
        if not isinstance(value, dict):
            raise InputError("INPUT is a JSON object or plain text")
        return value
    if not stripped:
        raise InputError("INPUT is empty: give the text to process")
    return None


def _contract_request(ctx: typer.Context, sentence: str, deployer: str) -> dict[str, Any]:
    """The contract request for ``sentence``: deployed by the payer, with the addresses of the
    data directory's wallets that the sentence names (``agents.contracts.ContractRequest``)."""
    from agentbazaar.agents.contracts import ContractRequest
    from agentbazaar.wallet import KeyStore

    rc = run_context(ctx)
    listed = KeyStore(rc.config.keystore_dir).listing(rc.passphrase())
    book = [(w.name, str(w.address)) for w in listed if w.address is not None]
    return ContractRequest.for_sentence(sentence, deployer, book).to_json()


def hire(
    ctx: typer.Context,
    skill: str = typer.Argument(
        ..., metavar="SKILL", help="the skill to buy, e.g. embed or contract"
    ),
    text: str = typer.Argument(
        ..., metavar="INPUT", help="plain text (a sentence for contract), or the input as JSON"
    ),
    max_price: str = typer.Option(..., "--max", help="most to pay, e.g. 0.01 or '0.01 USDC'"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="wallet that pays (default: BAZAAR_WALLET, default_wallet)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Hire an agent: discover providers of SKILL, take the cheapest trusted quote within
    --max, pay it (x402, your wallet's policy), verify its signed receipt, print what you got.

    Examples: bazaar hire embed "a quiet harbour at dawn" --max 0.01 --wallet alice;
    bazaar hire contract "vest 1,000 USDC to bob over 12 months with a 3 month cliff" --max 0.5
    (the payer deploys; the wallets the sentence names come from this data directory)
    """
    from agentbazaar.agents.hiring import Buyer
    from agentbazaar.agents.protocol import CONTRACT_SKILL
    from agentbazaar.agents.runtime import Agent, Network
    from agentbazaar.agents.spec import receipts_path
    from agentbazaar.chain import Chain
    from agentbazaar.identity.contracts import IDENTITY_KEY, Registries
    from agentbazaar.suite import Suite

    rc = run_context(ctx)
    cfg = rc.config
    payload = _payload(text)
    if cfg.chain.backend == "embedded":
        raise ConfigError("agents are served on a local or rpc chain: `bazaar chain up` first")
    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    if not suite.has(IDENTITY_KEY):
        raise IdentityError("the ERC-8004 registries are not deployed: run `bazaar deploy`")
    token = suite.tokens.get("USDC")
    try:
        limit = token.parse(max_price)
    except InputError as exc:
        raise InputError(f"--max: {exc}") from exc
    if limit <= 0:
        raise InputError(f"--max must be positive, got {max_price!r}")
    name = wallet_name(ctx, wallet)
    network = Network(chain, Registries.from_suite(suite), token)
    me = Agent(name, open_wallet(ctx, wallet), network, data_dir=receipts_path(cfg, name).parent)
    if payload is None:  # plain text: a sentence for a contract, else one text to embed
        contract = skill == CONTRACT_SKILL
        payload = _contract_request(ctx, text, me.address) if contract else {"texts": [text]}
    buyer = Buyer(me)
    try:
        with waiting(f"hiring {skill}..."):
            hired = buyer.hire(skill, payload, limit, review=False)
    finally:
        buyer.close()
        me.receipts.close()
    _report(hired, skill, token, me.address, json_out=json_out)


def _report(hired: Any, skill: str, token: Any, payer: str, *, json_out: bool) -> None:
    offer = hired.provider
    contract = isinstance(hired.output, dict)  # a contract's delivery, else the embeddings
    if json_out:
        out = {
            **hired.to_json(),
            "skill": skill,
            "payer": payer,
            "providerWallet": offer.wallet,
            "providerUrl": offer.base_url,
            "amount": token.format(hired.price),
            "asset": token.address,
            "receiptVerified": True,
        }
        if contract:
            out["delivery"] = hired.output
        else:
            out["outputShape"] = [int(d) for d in hired.output.shape]
        emit_json(out)
        return
    seller = f"{offer.name} (agent #{offer.agent_id}, wallet {offer.wallet})"
    if contract:
        d = hired.output
        what = (f"a {d['template']} contract, checks and simulation "
                f"{'passed' if d['passed'] else 'FAILED'}, source {d['source_id']}")  # fmt: skip
    else:
        rows = len(hired.output)
        what = f"{skill} ({rows} result{'s' * (rows != 1)})"
    typer.echo(
        f"bought {what} from {seller} for {token.format(hired.price)}\n"
        f"settlement tx {hired.tx_hash}\nreceipt {hired.receipt.id} verified "
        f"(signed by the provider's on-chain wallet)"
    )


def register(app: typer.Typer) -> None:
    app.command("hire")(hire)
