"""Contracts from a sentence: time to a verified deployment, and gas of each template's main calls.

Prints one JSON line per figure. Run: .venv/bin/python -P benchmarks/contracts.py

1. ``sentence_to_verified``: the library pipeline (fill, build, compile + static + properties at
   10 examples each, simulation on a fork, deployment and funding through ``Wallet.spend``,
   verification) for the issue's example sentences on a fresh embedded chain, per sentence,
   with its phases. The first sentence pays for the compiler's cold start; builds are cached.
2. Gas: the receipt's ``gasUsed`` on the embedded chain of each template's main call, beside a
   reference in the same run: for contracts that pay tokens out (vesting, escrow, stream,
   splitter, vault) a direct ERC-20 ``transfer`` of the same amount by its holder (what the
   payment costs with no contract around it); for the capped token, our snekmate-based
   Stablecoin's ``mint`` and ``transfer`` (the same erc20 module without the cap).
   ``ratio`` = ours / reference.
3. ``--model [1.5b|0.5b]``: ``sentence_to_verified_model``, the same pipeline for sentences the
   parsers cannot complete, the language model filling the rest, with the model warm (weights
   loaded and the fixed prompt's prefix cached by one warm-up question on another sentence);
   ``model_seconds`` is the model's share. Alone: ``--model`` skips 1 and 2.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from agentbazaar.authoring import TEMPLATES, ModelFiller, deploy, draft
from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.chain.sources import build, gather

SENTENCES = (
    "vest 1,000 USDC to bob over 12 months with a 3 month cliff",
    "split this agent's income 70/30 between alice and bob",
    "hold 50 USDC in escrow for carol until dave approves or 7 days pass",
)
MODEL_SENTENCES = (
    "carol should receive 300 USDC streamed across 30 days",
    "bob gets 1,000 USDC unlocking across twelve months, none before 3 months",
)
DAY = 86_400


def _emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": value, "unit": unit, **extra}))


def sentence_to_verified(model: str | None = None) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "authoring"))
    from authoring_helpers import make_world

    world = make_world(Path(tempfile.mkdtemp(prefix="bench-contracts-")))
    filler = None
    if model is not None:
        filler = ModelFiller(size=model)
        filler.ask("pay 5 USDC a day to alice for a week", "stream")  # warm: weights, prefix
    for sentence in MODEL_SENTENCES if filler else SENTENCES:
        started = time.perf_counter()
        d = draft(sentence, chain=world.chain, wallet=world.wallet, ctx=world.ctx(),
                  store=world.store, namer=world.namer(), filler=filler,
                  examples=10)  # fmt: skip
        drafted = time.perf_counter()
        done = deploy(d, chain=world.chain, wallet=world.wallet, store=world.store,
                      tokens=world.tokens)  # fmt: skip
        total = time.perf_counter() - started
        extra = (
            {"model": d.model[0]["model"], "model_seconds": d.model[0]["seconds"]}
            if d.model
            else {}
        )
        _emit("sentence_to_verified" + ("_model" if filler else ""), round(total, 2), "s",
              sentence=sentence, **extra,
              template=d.filled.template.name, verified=done.to_dict()["verified"],
              phases={**{k: round(v, 2) for k, v in d.timings.items()},
                      "deploy_fund_verify": round(time.perf_counter() - drafted, 2)})  # fmt: skip


class GasBench:
    def __init__(self) -> None:
        self.chain = Chain.embedded()
        self.dev = dev_account(0)
        self.holder, self.bob, self.carol = dev_account(1), dev_account(2), dev_account(3)
        for a in (self.dev, self.holder, self.bob, self.carol):
            self.chain.fund_native(a.address, 10**21)
        art = compile_contract("Stablecoin")
        self.usdc, _ = self.chain.deploy(self.dev, art.abi, art.bytecode, "USD Coin", "USDC",
                                         "USD Coin", "2")  # fmt: skip
        for a in (self.holder, self.bob, self.carol):  # warm balances: the common case
            self.mint(a.address, 10**12)

    def mint(self, to: str, units: int) -> int:
        return self.gas(self.dev, self.usdc.functions.mint(to, units))

    def gas(self, account: Any, fn: Any) -> int:
        return int(self.chain.transact(account, fn)["gasUsed"])

    def transfer(self, units: int) -> int:
        return self.gas(self.holder, self.usdc.functions.transfer(self.bob.address, units))

    def template(self, name: str, *args: Any) -> Any:
        b = build(gather(TEMPLATES[name].contract))
        contract, _ = self.chain.deploy(self.holder, b.abi, b.bytecode, *args)
        return contract

    def fund(self, contract: Any, units: int) -> None:
        self.gas(self.holder, self.usdc.functions.transfer(contract.address, units))

    def warp(self, seconds: int) -> None:
        tester: Any = getattr(self.chain.w3.provider, "ethereum_tester")  # noqa: B009
        tester.time_travel(self.chain.timestamp() + seconds)


def _pair(name: str, ours: int, ref: int, ref_name: str) -> None:
    _emit(name, ours, "gas", reference=ref_name, reference_value=ref, ratio=round(ours / ref, 3))


def gas() -> None:
    g = GasBench()
    usdc, now, amount = g.usdc.address, g.chain.timestamp(), 1_000 * 10**6
    direct = g.transfer(amount // 4)
    v = g.template("vesting", usdc, g.bob.address, now, 90 * DAY, 360 * DAY)
    g.fund(v, amount)
    g.warp(180 * DAY)
    _pair("vesting.release", g.gas(g.bob, v.functions.release()), direct, "erc20.transfer")
    now = g.chain.timestamp()
    e = g.template("escrow", usdc, g.holder.address, g.bob.address, g.carol.address, 50 * 10**6,
                   now + 7 * DAY)  # fmt: skip
    g.fund(e, 50 * 10**6)
    _pair("escrow.release", g.gas(g.carol, e.functions.release()), direct, "erc20.transfer")
    s = g.template(
        "stream", usdc, g.holder.address, g.bob.address, 300 * 10**6, now, now + 30 * DAY
    )
    g.fund(s, 300 * 10**6)
    g.warp(10 * DAY)
    _pair("stream.withdraw", g.gas(g.bob, s.functions.withdraw()), direct, "erc20.transfer")
    _pair("stream.cancel", g.gas(g.holder, s.functions.cancel()), direct, "erc20.transfer")
    now = g.chain.timestamp()
    vault = g.template("vault", g.holder.address, g.bob.address, now + 30 * DAY, usdc,
                       20 * 10**6, DAY, now, [g.carol.address])  # fmt: skip
    g.fund(vault, 100 * 10**6)
    pay = g.gas(g.bob, vault.functions.pay(usdc, g.carol.address, 5 * 10**6))
    _pair("vault.pay (session key)", pay, direct, "erc20.transfer")
    sp = g.template("splitter", usdc, [g.bob.address, g.carol.address], [70, 30], [], [],
                    "0x" + "00" * 20)  # fmt: skip
    g.fund(sp, 100 * 10**6)
    _pair("splitter.release (first, distributes)", g.gas(g.bob, sp.functions.release(g.bob.address)),
          direct, "erc20.transfer")  # fmt: skip
    _pair("splitter.release", g.gas(g.carol, sp.functions.release(g.carol.address)), direct,
          "erc20.transfer")  # fmt: skip
    token = g.template("token", "Gold", "GLD", 18, 10**24, g.holder.address, 10**21)
    g.gas(g.holder, token.functions.mint(g.carol.address, 10**6))  # carol holds some: warm
    ref_mint = g.mint(g.carol.address, 10**6)
    _pair("token.mint (capped)", g.gas(g.holder, token.functions.mint(g.carol.address, 10**6)),
          ref_mint, "stablecoin.mint (snekmate erc20)")  # fmt: skip
    ours = g.gas(g.holder, token.functions.transfer(g.carol.address, 10**6))
    _pair("token.transfer", ours, g.transfer(10**6), "stablecoin.transfer (snekmate erc20)")


if __name__ == "__main__":
    import sys

    if "--model" in sys.argv:
        at = sys.argv.index("--model")
        sentence_to_verified(sys.argv[at + 1] if len(sys.argv) > at + 1 else "1.5b")
    else:
        gas()
        sentence_to_verified()
