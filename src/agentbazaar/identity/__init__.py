"""Know-your-agent: ERC-8004 identity, reputation and validation registries, agent cards, discovery."""
