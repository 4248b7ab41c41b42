"""x402 `batch-settlement` payment channels: deposit once, pay per request with signed
cumulative vouchers, claim many vouchers in one transaction.

Wire-compatible with the official x402 SDK (same contracts ABI, EIP-712 types, canonical
addresses and payloads); the seller's engine verifies vouchers locally and records every charge
durably before the response leaves.
"""

from agentbazaar.channels._crypto import ChannelConfig
from agentbazaar.channels.buyer import ChannelBuyer
from agentbazaar.channels.engine import (
    ChannelEngine,
    ChannelTerms,
    OnchainState,
    Ticket,
    channel_state_wire,
)
from agentbazaar.channels.errors import (
    ChannelError,
    ChannelInputError,
    ChannelStoreError,
    VoucherRejected,
    WithdrawalRejected,
)
from agentbazaar.channels.facilitator import BatchSettlementHandler
from agentbazaar.channels.http import ChannelPaywall, ChannelPaywallMiddleware
from agentbazaar.channels.onchain import ChannelContracts, install
from agentbazaar.channels.service import ChannelSeller
from agentbazaar.channels.settlement import ClaimLoop, ClaimPolicy, ClaimReport
from agentbazaar.channels.store import ChannelRecord, ChannelStore
from agentbazaar.channels.wire import (
    BATCH_SETTLEMENT_ADDRESS,
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    SCHEME,
)

__all__ = [
    "BATCH_SETTLEMENT_ADDRESS",
    "ERC3009_DEPOSIT_COLLECTOR_ADDRESS",
    "SCHEME",
    "BatchSettlementHandler",
    "ChannelBuyer",
    "ChannelConfig",
    "ChannelContracts",
    "ChannelEngine",
    "ChannelError",
    "ChannelInputError",
    "ChannelPaywall",
    "ChannelPaywallMiddleware",
    "ChannelRecord",
    "ChannelSeller",
    "ChannelStore",
    "ChannelStoreError",
    "ChannelTerms",
    "ClaimLoop",
    "ClaimPolicy",
    "ClaimReport",
    "OnchainState",
    "Ticket",
    "VoucherRejected",
    "WithdrawalRejected",
    "channel_state_wire",
    "install",
]
