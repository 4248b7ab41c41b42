"""A private copy of a chain's current state to experiment on: titanoboa's fork mode over our
``Chain``, on the embedded chain and on any JSON-RPC node alike.

``fork_env(chain)`` returns a titanoboa ``Env`` whose state is read lazily from ``chain`` at
its latest block (accounts, code, storage) and written only locally: deploy, call, warp time,
set balances; the chain itself never sees any of it. Two details make this work in-process:

- titanoboa's fork reads state with ``eth_getBalance``/``eth_getCode``/``eth_getStorageAt``
  pinned to a block; ``ChainRPC`` answers those from the embedded chain's eth-tester directly
  (its web3 formatters do not accept block numbers for every call) or from the node;
- titanoboa points py-evm's *shared* state class at its fork database; the embedded chain uses
  that class too, so each fork gets a private VM class and the embedded chain is left alone.

Nothing is cached on disk: a local chain reuses block numbers with different state.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from agentbazaar.chain.chain import Chain
from agentbazaar.errors import ChainError


def _hex(value: int) -> str:
    return hex(int(value))


class ChainRPC:
    """The handful of read calls titanoboa's fork makes, answered by a ``Chain``."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._tester: Any = None
        if chain.backend == "embedded":
            self._tester = getattr(chain.w3.provider, "ethereum_tester", None)

    @property
    def identifier(self) -> str:
        return f"agentbazaar-{id(self)}"

    @property
    def name(self) -> str:
        return f"chain {self.chain.chain_id}"

    def fetch_uncached(self, method: str, params: Any) -> Any:
        return self.fetch(method, params)

    def fetch_multi(self, payloads: list[tuple[str, Any]]) -> list[Any]:
        return [self.fetch(method, params) for method, params in payloads]

    def fetch(self, method: str, params: Any) -> Any:
        from boa.rpc import RPCError

        if self._tester is None:
            answer = self.chain.w3.provider.make_request(RPCEndpoint(method), params)
            if "error" in answer:
                raise RPCError.from_json(dict(answer["error"]))  # type: ignore[arg-type]
            return answer["result"]
        return self._from_tester(method, params, RPCError)

    def _from_tester(self, method: str, params: Any, rpc_error: Any) -> Any:
        tester = self._tester
        lock = getattr(self.chain.w3.provider, "_request_lock", None)
        if lock is None:  # pragma: no cover - our embedded provider always has one
            raise ChainError("the embedded chain has no request lock")
        with lock:
            if method == "eth_chainId":
                return _hex(self.chain.chain_id)
            if method == "eth_getBlockByNumber":
                block = tester.get_block_by_number(_block(params[0]))
                return {
                    "number": _hex(block["number"]),
                    "timestamp": _hex(block["timestamp"]),
                    "parentHash": _as_hex(block["parent_hash"]),
                }
            address = Web3.to_checksum_address(params[0])
            if method == "eth_getBalance":
                return _hex(tester.get_balance(address, _block(params[1])))
            if method == "eth_getTransactionCount":
                return _hex(tester.get_nonce(address, _block(params[1])))
            if method == "eth_getCode":
                return _as_hex(tester.get_code(address, _block(params[1])))
            if method == "eth_getStorageAt":
                return _as_hex(tester.get_storage_at(address, params[1], _block(params[2])))
        raise rpc_error(f"{method} is not served by the embedded chain", -32601)


def _block(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x"):
        return int(value, 16)
    return value


def _as_hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def fork_env(chain: Chain | None = None) -> Any:
    """A titanoboa ``Env`` on a private VM: a fork of ``chain`` at its latest block, or an
    empty chain when ``chain`` is None."""
    from boa.environment import Env
    from boa.vm.py_evm import GENESIS_PARAMS
    from eth.chains.mainnet import MainnetChain
    from eth.db.atomic import AtomicDB
    from eth.tools.builder.chain import builders as builder
    from eth.vm.forks.prague import PragueVM

    env = Env()
    state_class = type("ForkState", (PragueVM._state_class,), {})
    vm_class = PragueVM.configure(__name__="ForkVM", _state_class=state_class)
    chain_class: Any = builder.build(MainnetChain, builder.fork_at(vm_class, 1))
    env.evm.chain = chain_class.from_genesis(AtomicDB(), GENESIS_PARAMS)
    if chain is None:
        env.evm._init_vm()
        return env
    block = chain.block_number()
    env.fork_rpc(ChainRPC(chain), block_identifier=block, cache_dir=None)
    return env
