"""A sandbox to try a contract in before it exists: a private copy of the chain (or an empty
chain) where we deploy the build, move time, set balances and call as anyone.

Everything runs in titanoboa's py-evm on a fork (``agentbazaar.chain.fork``): the real chain is
never written. Calls are plain ABI calls (eth-abi), so what runs here is the exact bytecode
that would be deployed, with the exact constructor arguments.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak
from web3 import Web3

from agentbazaar.chain import Chain
from agentbazaar.chain.fork import fork_env
from agentbazaar.chain.sources import Build
from agentbazaar.errors import ContractError

ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": name,
        "stateMutability": mut,
        "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(ins)],
        "outputs": [{"name": "", "type": t} for t in outs],
    }
    for name, mut, ins, outs in (
        ("balanceOf", "view", ["address"], ["uint256"]),
        ("totalSupply", "view", [], ["uint256"]),
        ("transfer", "nonpayable", ["address", "uint256"], ["bool"]),
        ("approve", "nonpayable", ["address", "uint256"], ["bool"]),
        ("decimals", "view", [], ["uint8"]),
    )
]
_ERROR_SELECTOR = keccak(text="Error(string)")[:4]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    value: Any = None
    reason: str | None = None  # the revert reason when not ok


@dataclass(frozen=True)
class Handle:
    address: str
    abi: list[dict[str, Any]]


def _type(arg: dict[str, Any]) -> str:
    if arg["type"].startswith("tuple"):
        inner = ",".join(_type(c) for c in arg["components"])
        return f"({inner}){arg['type'][5:]}"
    return str(arg["type"])


def _function(abi: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for entry in abi:
        if entry.get("type") == "function" and entry.get("name") == name:
            return entry
    raise ContractError(f"the contract has no function {name!r}")


def revert_reason(output: bytes) -> str:
    if output[:4] == _ERROR_SELECTOR:
        try:
            return str(decode(["string"], output[4:])[0])
        except Exception:  # malformed revert data: report it raw
            pass
    return "reverted" if not output else f"reverted (0x{output.hex()})"


class Sandbox:
    """A fork of ``chain`` (or an empty chain) to deploy, call and warp in."""

    def __init__(self, chain: Chain | None = None) -> None:
        self.chain = chain
        self.env = fork_env(chain)
        self._balance_slots: dict[tuple[str, str], int] = {}

    # ---- time and state ----------------------------------------------------------------------
    @property
    def now(self) -> int:
        return int(self.env.timestamp)

    def warp(self, seconds: int) -> None:
        """Move time forward by ``seconds`` (and blocks by seconds / 12)."""
        if seconds > 0:
            self.env.time_travel(seconds=seconds)

    def warp_to(self, timestamp: int) -> None:
        self.warp(timestamp - self.now)

    @contextlib.contextmanager
    def anchor(self) -> Iterator[None]:
        """Everything done inside is undone on leaving (one property example each)."""
        with self.env.anchor():
            yield

    def fund_native(self, who: str, wei: int) -> None:
        self.env.set_balance(who, self.env.get_balance(who) + wei)

    # ---- deploy and call ---------------------------------------------------------------------
    def deploy(self, build: Build, args: Sequence[Any], *, sender: str) -> Handle:
        ctor = next((e for e in build.abi if e.get("type") == "constructor"), None)
        types = [_type(a) for a in ctor["inputs"]] if ctor else []
        initcode = build.bytecode + (encode(types, list(args)) if types else b"")
        address, computation = self.env.deploy(sender=sender, bytecode=initcode)
        if computation.is_error:
            raise ContractError(f"deployment reverted: {revert_reason(computation.output)}")
        return Handle(Web3.to_checksum_address(str(address)), build.abi)

    def call(self, target: Handle, fn: str, *args: Any, sender: str | None = None) -> Outcome:
        """Call ``fn`` (a transaction unless it is a view) as ``sender``; never raises for a
        revert: the outcome says what happened."""
        entry = _function(target.abi, fn)
        types = [_type(a) for a in entry["inputs"]]
        data = keccak(text=f"{fn}({','.join(types)})")[:4] + encode(types, list(args))
        computation = self.env.execute_code(
            to_address=target.address,
            sender=sender or self.env.eoa,
            data=data,
            is_modifying=entry.get("stateMutability") not in ("view", "pure"),
        )
        if computation.is_error:
            return Outcome(False, reason=revert_reason(bytes(computation.output)))
        outs = decode([_type(a) for a in entry["outputs"]], bytes(computation.output))
        return Outcome(True, outs[0] if len(outs) == 1 else tuple(outs) if outs else None)

    def view(self, target: Handle, fn: str, *args: Any) -> Any:
        out = self.call(target, fn, *args)
        if not out.ok:
            raise ContractError(f"{fn} reverted: {out.reason}")
        return out.value

    def must(self, target: Handle, fn: str, *args: Any, sender: str | None = None) -> Any:
        out = self.call(target, fn, *args, sender=sender)
        if not out.ok:
            raise AssertionError(f"{fn} reverted: {out.reason}")
        return out.value

    # ---- tokens ------------------------------------------------------------------------------
    def token(self, address: str) -> Handle:
        return Handle(Web3.to_checksum_address(address), ERC20_ABI)

    def balance(self, token: str, who: str) -> int:
        return int(self.view(self.token(token), "balanceOf", who))

    def deal(self, token: str, who: str, amount: int) -> None:
        """Set ``who``'s balance of ``token`` to ``amount`` by finding its balance slot
        (Vyper or Solidity mapping layout, slots 0-31), as forge's ``deal`` does."""
        handle = self.token(token)
        known = self._balance_slots.get((handle.address, who))
        if known is not None:
            self.env.set_storage(handle.address, known, amount)
            return
        for slot in range(32):
            for key in (_vyper_slot(slot, who), _solidity_slot(slot, who)):
                old = self.env.get_storage(handle.address, key)
                self.env.set_storage(handle.address, key, amount)
                if self.view(handle, "balanceOf", who) == amount and self._moves(key, handle, who):
                    self._balance_slots[(handle.address, who)] = key
                    return
                self.env.set_storage(handle.address, key, old)
        raise ContractError(f"cannot set balances of token {token}: unknown storage layout")

    def _moves(self, key: int, handle: Handle, who: str) -> bool:
        """The slot really is the balance: a second value shows through too."""
        probe = self.env.get_storage(handle.address, key) ^ 1
        self.env.set_storage(handle.address, key, probe)
        seen = self.view(handle, "balanceOf", who) == probe
        self.env.set_storage(handle.address, key, probe ^ 1)
        return bool(seen)

    def transfer(self, token: str, sender: str, to: str, amount: int) -> Outcome:
        return self.call(self.token(token), "transfer", to, amount, sender=sender)


def _vyper_slot(slot: int, who: str) -> int:
    return int.from_bytes(keccak(encode(["uint256", "address"], [slot, who])), "big")


def _solidity_slot(slot: int, who: str) -> int:
    return int.from_bytes(keccak(encode(["address", "uint256"], [who, slot])), "big")


def actor(label: str) -> str:
    """A deterministic address for a role in a property test ("stranger", "payee-2")."""
    return Web3.to_checksum_address(keccak(text=f"agentbazaar-actor:{label}")[12:])
