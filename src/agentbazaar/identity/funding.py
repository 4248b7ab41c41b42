"""Where a payer's money came from, traced on chain: the cluster key of weighted reputation.

``FundingTracer.funder(address, tokens)`` is the sender of the earliest transfer of any of
``tokens`` into ``address`` (from its ERC-20 ``Transfer`` logs); a mint (sender 0x0) means the
address funded itself. ``root`` follows funders back up to ``max_depth`` hops and stops at:

- an address with no funder (minted to, or funded only in native currency);
- a public source (``public_sources``: a faucet, an exchange: many unrelated people);
- a contract (a pool, an escrow, a router: its outflows are not one person's), which is not
  followed through;
- an address in ``stop`` (the agent's own addresses: a payer funded by the agent is the agent's).

So payers funded from one wallet, directly or through a chain of fresh addresses, share a root.
Limits, said plainly: money routed through a contract (e.g. swapped on a DEX) is not traced
further, nor is native-currency funding; a chain that refuses log queries yields no funder.
Results are cached per address for the tracer's life.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from eth_utils.crypto import keccak

from agentbazaar.chain import Chain, to_address
from agentbazaar.errors import ChainError

TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
_ZERO = "0x" + "00" * 20


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower()[2:]


class FundingTracer:
    def __init__(
        self, chain: Chain, *, public_sources: Iterable[str] = (), max_depth: int = 4
    ) -> None:
        self.chain = chain
        self.public = {a.lower() for a in public_sources}
        self.max_depth = max_depth
        self._funders: dict[tuple[str, frozenset[str]], str | None] = {}
        self._code: dict[str, bool] = {}

    def funder(self, address: str, tokens: Collection[str]) -> str | None:
        """The sender of the first transfer of ``tokens`` into ``address`` (None: none, a mint,
        or the chain would not say)."""
        key = (address.lower(), frozenset(t.lower() for t in tokens))
        if key not in self._funders:
            self._funders[key] = self._first_sender(address, tokens)
        return self._funders[key]

    def _first_sender(self, address: str, tokens: Collection[str]) -> str | None:
        if not tokens:
            return None
        params: Any = {
            "fromBlock": 0,
            "toBlock": "latest",
            "address": [to_address(t) for t in tokens],
            "topics": [TRANSFER_TOPIC, None, _topic(address)],
        }
        try:
            logs = self.chain.w3.eth.get_logs(params)
        except (ChainError, ValueError, OSError):
            return None
        if not logs:
            return None
        first = min(logs, key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
        sender = "0x" + bytes(first["topics"][1])[-20:].hex()
        return None if sender == _ZERO else to_address(sender)

    def _is_contract(self, address: str) -> bool:
        key = address.lower()
        if key not in self._code:
            try:
                self._code[key] = bool(self.chain.code_at(address))
            except ChainError:
                self._code[key] = False
        return self._code[key]

    def root(self, address: str, tokens: Collection[str], stop: Collection[str] = ()) -> str:
        """The funding root of ``address`` (see the module docstring)."""
        stops = {a.lower() for a in stop}
        current: str = to_address(address)
        seen = {address.lower()}
        for _ in range(self.max_depth):
            if current.lower() in stops:
                break
            source = self.funder(current, tokens)
            if source is None or source.lower() in self.public or source.lower() in seen:
                break
            if self._is_contract(source):
                break
            current = source
            seen.add(current.lower())
        return current

    def roots(
        self, payers: Iterable[str], tokens: Collection[str], stop: Collection[str] = ()
    ) -> dict[str, str]:
        return {p: self.root(p, tokens, stop) for p in payers}
