"""Escrowed jobs between agents (ERC-8183 draft semantics), disputes by a staked committee, and
stake."""
