"""agentbazaar: agents with wallets, ERC-8004 identities and stablecoin payments on a real EVM.

Layers (see docs/ARCHITECTURE.md): ``chain`` (embedded py-evm, anvil, any JSON-RPC chain),
``wallet`` (keystores, spending policy, spend ledger), ``identity`` (ERC-8004 registries, signed
agent cards, discovery), ``payments`` (x402), ``channels`` (batch-settlement), ``dex`` and
``intents`` (plain-language swaps and sends), ``agents`` (paid AI work, receipts, validation).
"""

__version__ = "0.1.0"
