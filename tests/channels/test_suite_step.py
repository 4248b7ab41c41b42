"""The suite step places the escrow, its collector and a Multicall3 at the canonical addresses
the SDK hard-codes; the SDK's own channel-id computation matches the contract there."""

from __future__ import annotations

import os
from pathlib import Path

from eth_account import Account
from x402.mechanisms.evm.batch_settlement import compute_channel_id
from x402.mechanisms.evm.batch_settlement.types import ChannelConfig as SdkConfig

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import SuiteStep
from agentbazaar.channels import BATCH_SETTLEMENT_ADDRESS, ERC3009_DEPOSIT_COLLECTOR_ADDRESS
from agentbazaar.channels.onchain import escrow_contract
from agentbazaar.channels.wire import MULTICALL3_ADDRESS
from agentbazaar.config import load_config
from agentbazaar.deployment import SUITE, deploy_suite


def test_deploy_suite_places_the_contracts_at_canonical_addresses(tmp_path: Path) -> None:
    chain = Chain.embedded()
    deploy_suite(chain, load_config(tmp_path / "home", env={}))
    assert "batch-settlement" in [e.name for e in SUITE if isinstance(e, SuiteStep)]
    for address in (
        BATCH_SETTLEMENT_ADDRESS,
        ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        MULTICALL3_ADDRESS,
    ):
        assert chain.code_at(address), address
    escrow = escrow_contract(chain)
    a, b = Account.create().address, Account.create().address
    config = SdkConfig(a, a, b, b, b, 900, "0x" + os.urandom(32).hex())
    onchain = escrow.functions.getChannelId((a, a, b, b, b, 900, bytes.fromhex(config.salt[2:])))
    assert "0x" + onchain.call().hex() == compute_channel_id(config, chain.network)
    collector = chain.contract(
        ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        [
            {
                "type": "function",
                "name": "x402BatchSettlement",
                "inputs": [],
                "outputs": [{"name": "", "type": "address"}],
                "stateMutability": "view",
            }
        ],
    )
    assert collector.functions.x402BatchSettlement().call() == BATCH_SETTLEMENT_ADDRESS
