"""agentbazaar's test kit: what our own tests and benchmarks use, public for yours.

Real parts, not mocks (as pydantic-ai ships ``TestModel`` beside its models): a real chain, the
real contracts, real HTTP on loopback.

- ``LocalWorld.deploy(chain, only=...)``: a chain with (part of) the contract suite, freshly
  deployed, a minter, funded accounts; ``local_anvil()``: a real anvil, stopped by PID.
- ``serve_in_thread(app)``: an ASGI app on a free 127.0.0.1 port for the block.
- ``cli_home(path)`` / ``make_home(path)``: a ``BAZAAR_HOME`` and ``bazaar`` runs against it.
- ``sign_eip3009(...)``, ``sign_voucher(...)``, ``ChannelPayer``: counterparties' signatures
  and batch-settlement payloads built by the channel library.
- ``dishonest_embedding_skill(model, price, mode)``: a provider whose work lies;
  ``UppercaseSkill(price)``: a priced skill that needs no model.
- ``boa_deployer(name)``: a contract of ours on titanoboa, compiled once per process.

In pytest, mark tests that start anvil with ``@pytest.mark.anvil``.
"""

from agentbazaar.loopback import ThreadedServer, free_port, serve_in_thread
from agentbazaar.testing.boa import STABLECOIN_ARGS, boa_deployer
from agentbazaar.testing.cli import CliHome, cli_home, make_home
from agentbazaar.testing.signers import ChannelPayer, sign_eip3009, sign_voucher
from agentbazaar.testing.skills import DISHONEST_MODES, UppercaseSkill, dishonest_embedding_skill
from agentbazaar.testing.world import LocalWorld, anvil_config, local_anvil

__all__ = [
    "DISHONEST_MODES",
    "STABLECOIN_ARGS",
    "ChannelPayer",
    "CliHome",
    "LocalWorld",
    "ThreadedServer",
    "UppercaseSkill",
    "anvil_config",
    "boa_deployer",
    "cli_home",
    "dishonest_embedding_skill",
    "free_port",
    "local_anvil",
    "make_home",
    "serve_in_thread",
    "sign_eip3009",
    "sign_voucher",
]
