# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title ERC-8004 Identity Registry
@notice Every agent is an ERC-721 token (the agentId) whose token URI is the agent's
        registration file (https, ipfs or a `data:` URI). The owner (or an approved operator)
        sets the URI and key/value metadata; the `agentWallet` key is reserved: it can only be
        set by `setAgentWallet` with an EIP-712 `AgentWalletSet` signature of the new wallet
        (EOA or ERC-1271 contract), it starts as the registering address and it is cleared
        whenever the token changes hands.

        Function selectors and event topics equal ERC-8004's (January 2026 revision): Vyper's
        bounded strings and arrays are `string`, `bytes` and `T[]` in the ABI. Bounds:
        - agentURI / newURI / tokenURI: at most 16,384 bytes (a `data:` URI card fits),
        - metadata key: at most 128 bytes, metadata value: at most 1,024 bytes,
        - register(agentURI, metadata): at most 16 metadata entries,
        - setAgentWallet signature: 65 bytes (ECDSA, or an ERC-1271 wallet's 65-byte signature).
        Agent ids start at 0 and increase by one, as in the reference implementation.
"""

from ethereum.ercs import IERC165
from ethereum.ercs import IERC721

from snekmate.auth import ownable
from snekmate.tokens import erc721
from snekmate.utils import eip712_domain_separator
from snekmate.utils import signature_checker

initializes: ownable
initializes: erc721[ownable := ownable]
uses: eip712_domain_separator

exports: (
    erc721.balanceOf,
    erc721.ownerOf,
    erc721.getApproved,
    erc721.isApprovedForAll,
    erc721.approve,
    erc721.setApprovalForAll,
    erc721.name,
    erc721.symbol,
    erc721.totalSupply,
    erc721.tokenByIndex,
    erc721.tokenOfOwnerByIndex,
    erc721.DOMAIN_SEPARATOR,
    erc721.eip712Domain,
)

URI_MAX: constant(uint256) = 16384
KEY_MAX: constant(uint256) = 128
VALUE_MAX: constant(uint256) = 1024
ENTRIES_MAX: constant(uint256) = 16
MAX_DEADLINE_DELAY: constant(uint256) = 300  # 5 minutes

AGENT_WALLET_KEY: constant(String[11]) = "agentWallet"
AGENT_WALLET_SET_TYPEHASH: constant(bytes32) = keccak256(
    "AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)"
)

_SUPPORTED_INTERFACES: constant(bytes4[5]) = [
    0x01FFC9A7,  # ERC-165
    0x80AC58CD,  # ERC-721
    0x5B5E139F,  # ERC-721 metadata
    0x780E9D63,  # ERC-721 enumerable
    0x49064906,  # ERC-4906 (MetadataUpdate on setAgentURI)
]


struct MetadataEntry:
    metadataKey: String[KEY_MAX]
    metadataValue: Bytes[VALUE_MAX]


event Registered:
    agentId: indexed(uint256)
    agentURI: String[URI_MAX]
    owner: indexed(address)


event MetadataSet:
    agentId: indexed(uint256)
    indexedMetadataKey: indexed(String[KEY_MAX])
    metadataKey: String[KEY_MAX]
    metadataValue: Bytes[VALUE_MAX]


event URIUpdated:
    agentId: indexed(uint256)
    newURI: String[URI_MAX]
    updatedBy: indexed(address)


event MetadataUpdate:
    _tokenId: uint256


_last_id: uint256
_agent_uris: HashMap[uint256, String[URI_MAX]]
_metadata: HashMap[uint256, HashMap[String[KEY_MAX], Bytes[VALUE_MAX]]]
_agent_wallets: HashMap[uint256, address]


@deploy
def __init__(name_: String[25], symbol_: String[5]):
    ownable.__init__()
    erc721.__init__(name_, symbol_, "", "ERC8004IdentityRegistry", "1")


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    return interface_id in _SUPPORTED_INTERFACES


@external
@view
def tokenURI(agentId: uint256) -> String[URI_MAX]:
    erc721._require_minted(agentId)
    return self._agent_uris[agentId]


@external
def register(
    agentURI: String[URI_MAX] = "", metadata: DynArray[MetadataEntry, ENTRIES_MAX] = []
) -> uint256:
    agent_id: uint256 = self._last_id
    self._last_id = agent_id + 1
    self._agent_uris[agent_id] = agentURI
    log Registered(agentId=agent_id, agentURI=agentURI, owner=msg.sender)
    self._store_wallet(agent_id, msg.sender)
    for entry: MetadataEntry in metadata:
        assert not self._is_reserved(entry.metadataKey), "identity: reserved metadata key"
        self._metadata[agent_id][entry.metadataKey] = entry.metadataValue
        log MetadataSet(
            agentId=agent_id,
            indexedMetadataKey=entry.metadataKey,
            metadataKey=entry.metadataKey,
            metadataValue=entry.metadataValue,
        )
    erc721._safe_mint(msg.sender, agent_id, b"")
    return agent_id


@external
def setAgentURI(agentId: uint256, newURI: String[URI_MAX]):
    self._check_authorized(agentId)
    self._agent_uris[agentId] = newURI
    log URIUpdated(agentId=agentId, newURI=newURI, updatedBy=msg.sender)
    log MetadataUpdate(_tokenId=agentId)


@external
@view
def getMetadata(agentId: uint256, metadataKey: String[KEY_MAX]) -> Bytes[VALUE_MAX]:
    if self._is_reserved(metadataKey):
        return self._wallet_bytes(self._agent_wallets[agentId])
    return self._metadata[agentId][metadataKey]


@external
def setMetadata(agentId: uint256, metadataKey: String[KEY_MAX], metadataValue: Bytes[VALUE_MAX]):
    self._check_authorized(agentId)
    assert not self._is_reserved(metadataKey), "identity: reserved metadata key"
    self._metadata[agentId][metadataKey] = metadataValue
    log MetadataSet(
        agentId=agentId,
        indexedMetadataKey=metadataKey,
        metadataKey=metadataKey,
        metadataValue=metadataValue,
    )


@external
def setAgentWallet(agentId: uint256, newWallet: address, deadline: uint256, signature: Bytes[65]):
    assert newWallet != empty(address), "identity: zero wallet"
    assert block.timestamp <= deadline, "identity: signature expired"
    assert deadline <= block.timestamp + MAX_DEADLINE_DELAY, "identity: deadline too far ahead"
    owner: address = self._check_authorized(agentId)
    struct_hash: bytes32 = keccak256(
        abi_encode(AGENT_WALLET_SET_TYPEHASH, agentId, newWallet, owner, deadline)
    )
    digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(struct_hash)
    assert signature_checker._is_valid_signature_now(
        newWallet, digest, signature
    ), "identity: invalid wallet signature"
    self._store_wallet(agentId, newWallet)


@external
@view
def getAgentWallet(agentId: uint256) -> address:
    erc721._require_minted(agentId)
    return self._agent_wallets[agentId]


@external
def unsetAgentWallet(agentId: uint256):
    self._check_authorized(agentId)
    self._store_wallet(agentId, empty(address))


@external
@view
def isAuthorizedOrOwner(spender: address, agentId: uint256) -> bool:
    owner: address = erc721._owner_of(agentId)
    assert owner != empty(address), "erc721: invalid token ID"
    return self._is_operator(owner, spender, agentId)


@external
@payable
def transferFrom(owner: address, to: address, token_id: uint256):
    assert erc721._is_approved_or_owner(
        msg.sender, token_id
    ), "erc721: caller is not token owner or approved"
    self._clear_wallet_on_transfer(owner, to, token_id)
    erc721._transfer(owner, to, token_id)


@external
@payable
def safeTransferFrom(owner: address, to: address, token_id: uint256, data: Bytes[1_024] = b""):
    assert erc721._is_approved_or_owner(
        msg.sender, token_id
    ), "erc721: caller is not token owner or approved"
    self._clear_wallet_on_transfer(owner, to, token_id)
    erc721._safe_transfer(owner, to, token_id, data)


@internal
@view
def _check_authorized(agent_id: uint256) -> address:
    owner: address = erc721._owner_of(agent_id)
    assert owner != empty(address), "erc721: invalid token ID"
    assert self._is_operator(owner, msg.sender, agent_id), "identity: not the agent's owner or operator"
    return owner


@internal
@view
def _is_operator(owner: address, spender: address, agent_id: uint256) -> bool:
    return (
        spender == owner
        or erc721.isApprovedForAll[owner][spender]
        or erc721._token_approvals[agent_id] == spender
    )


@internal
@pure
def _is_reserved(key: String[KEY_MAX]) -> bool:
    return keccak256(key) == keccak256(AGENT_WALLET_KEY)


@internal
def _store_wallet(agent_id: uint256, wallet: address):
    # the reserved `agentWallet` metadata is read from `_agent_wallets` (one slot, not two)
    self._agent_wallets[agent_id] = wallet
    log MetadataSet(
        agentId=agent_id,
        indexedMetadataKey=AGENT_WALLET_KEY,
        metadataKey=AGENT_WALLET_KEY,
        metadataValue=self._wallet_bytes(wallet),
    )


@internal
@pure
def _wallet_bytes(wallet: address) -> Bytes[VALUE_MAX]:
    if wallet == empty(address):
        return b""
    return concat(convert(wallet, bytes20), b"")


@internal
def _clear_wallet_on_transfer(owner: address, to: address, token_id: uint256):
    if owner != to and self._agent_wallets[token_id] != empty(address):
        self._store_wallet(token_id, empty(address))
