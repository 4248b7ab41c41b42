# pragma version ~=0.4.3
"""
@title ERC-8004 Reputation Registry
@notice Clients give signed-decimal feedback (`value` with `valueDecimals` 0..18, |value| at
        most 1e38) to agents of one identity registry; the agent's owner, its operators and its
        verified agentWallet may not review it. Feedback is 1-indexed per (agent, client), append-only, and can only be
        revoked by the client who gave it. Anyone may append responses. `getSummary` needs an
        explicit, non-empty list of clients (against Sybil reviewers) and returns the average
        of the matching, unrevoked values: each value is normalised to 18 decimals, the sum is
        divided by the count and rescaled to the most frequent `valueDecimals` (ties: the
        smaller), truncating toward zero, as the reference implementation does.

        Selectors and event topics equal ERC-8004's (January 2026 revision). Bounds: tags at
        most 64 bytes, endpoint at most 1,024, feedbackURI / responseURI at most 8,192,
        clientAddresses / responders at most 1,024 addresses, `readAllFeedback` at most 1,024
        entries and the list getters at most 4,096 items per call (paged getters beside them).
"""

TAG_MAX: constant(uint256) = 64
ENDPOINT_MAX: constant(uint256) = 1024
URI_MAX: constant(uint256) = 8192
QUERY_MAX: constant(uint256) = 1024
LIST_MAX: constant(uint256) = 4096
LOOP_MAX: constant(uint64) = 4294967295
LOOP_MAX_U256: constant(uint256) = 4294967295
MAX_DECIMALS: constant(uint8) = 18
MAX_ABS_VALUE: constant(int128) = 10**38
WAD: constant(int256) = 10**18


interface IIdentityRegistry:
    def ownerOf(tokenId: uint256) -> address: view
    def isApprovedForAll(owner: address, operator: address) -> bool: view
    def getApproved(tokenId: uint256) -> address: view
    def getAgentWallet(agentId: uint256) -> address: view


struct Feedback:
    value: int128
    valueDecimals: uint8
    isRevoked: bool
    tag1: String[TAG_MAX]
    tag2: String[TAG_MAX]


event NewFeedback:
    agentId: indexed(uint256)
    clientAddress: indexed(address)
    feedbackIndex: uint64
    value: int128
    valueDecimals: uint8
    indexedTag1: indexed(String[TAG_MAX])
    tag1: String[TAG_MAX]
    tag2: String[TAG_MAX]
    endpoint: String[ENDPOINT_MAX]
    feedbackURI: String[URI_MAX]
    feedbackHash: bytes32


event FeedbackRevoked:
    agentId: indexed(uint256)
    clientAddress: indexed(address)
    feedbackIndex: indexed(uint64)


event ResponseAppended:
    agentId: indexed(uint256)
    clientAddress: indexed(address)
    feedbackIndex: uint64
    responder: indexed(address)
    responseURI: String[URI_MAX]
    responseHash: bytes32


_identity: immutable(address)
_feedback: HashMap[uint256, HashMap[address, HashMap[uint64, Feedback]]]
_last_index: HashMap[uint256, HashMap[address, uint64]]
_clients: HashMap[uint256, HashMap[uint256, address]]
_client_count: HashMap[uint256, uint256]
_is_client: HashMap[uint256, HashMap[address, bool]]
# (agentId, client, index) -> responders, and responder -> number of responses
_responders: HashMap[uint256, HashMap[address, HashMap[uint64, HashMap[uint256, address]]]]
_responder_count: HashMap[uint256, HashMap[address, HashMap[uint64, uint256]]]
_response_count: HashMap[uint256, HashMap[address, HashMap[uint64, HashMap[address, uint64]]]]


@deploy
def __init__(identityRegistry: address):
    assert identityRegistry != empty(address), "reputation: zero identity registry"
    _identity = identityRegistry


@external
@view
def getIdentityRegistry() -> address:
    return _identity


@external
def giveFeedback(
    agentId: uint256,
    value_: int128,
    valueDecimals: uint8,
    tag1: String[TAG_MAX],
    tag2: String[TAG_MAX],
    endpoint: String[ENDPOINT_MAX],
    feedbackURI: String[URI_MAX],
    feedbackHash: bytes32,
):
    assert valueDecimals <= MAX_DECIMALS, "reputation: valueDecimals above 18"
    assert value_ >= -MAX_ABS_VALUE and value_ <= MAX_ABS_VALUE, "reputation: value too large"
    registry: IIdentityRegistry = IIdentityRegistry(_identity)
    owner: address = staticcall registry.ownerOf(agentId)
    assert owner != empty(address), "reputation: agent does not exist"
    assert (
        msg.sender != owner
        and not staticcall registry.isApprovedForAll(owner, msg.sender)
        and staticcall registry.getApproved(agentId) != msg.sender
        and staticcall registry.getAgentWallet(agentId) != msg.sender
    ), "reputation: self-feedback not allowed"
    index: uint64 = self._last_index[agentId][msg.sender] + 1
    self._last_index[agentId][msg.sender] = index
    self._feedback[agentId][msg.sender][index] = Feedback(
        value=value_, valueDecimals=valueDecimals, isRevoked=False, tag1=tag1, tag2=tag2
    )
    if not self._is_client[agentId][msg.sender]:
        self._is_client[agentId][msg.sender] = True
        count: uint256 = self._client_count[agentId]
        self._clients[agentId][count] = msg.sender
        self._client_count[agentId] = count + 1
    log NewFeedback(
        agentId=agentId,
        clientAddress=msg.sender,
        feedbackIndex=index,
        value=value_,
        valueDecimals=valueDecimals,
        indexedTag1=tag1,
        tag1=tag1,
        tag2=tag2,
        endpoint=endpoint,
        feedbackURI=feedbackURI,
        feedbackHash=feedbackHash,
    )


@external
def revokeFeedback(agentId: uint256, feedbackIndex: uint64):
    self._check_index(agentId, msg.sender, feedbackIndex)
    assert not self._feedback[agentId][msg.sender][feedbackIndex].isRevoked, "reputation: already revoked"
    self._feedback[agentId][msg.sender][feedbackIndex].isRevoked = True
    log FeedbackRevoked(agentId=agentId, clientAddress=msg.sender, feedbackIndex=feedbackIndex)


@external
def appendResponse(
    agentId: uint256,
    clientAddress: address,
    feedbackIndex: uint64,
    responseURI: String[URI_MAX],
    responseHash: bytes32,
):
    assert len(responseURI) > 0, "reputation: empty responseURI"
    self._check_index(agentId, clientAddress, feedbackIndex)
    if self._response_count[agentId][clientAddress][feedbackIndex][msg.sender] == 0:
        n: uint256 = self._responder_count[agentId][clientAddress][feedbackIndex]
        self._responders[agentId][clientAddress][feedbackIndex][n] = msg.sender
        self._responder_count[agentId][clientAddress][feedbackIndex] = n + 1
    self._response_count[agentId][clientAddress][feedbackIndex][msg.sender] += 1
    log ResponseAppended(
        agentId=agentId,
        clientAddress=clientAddress,
        feedbackIndex=feedbackIndex,
        responder=msg.sender,
        responseURI=responseURI,
        responseHash=responseHash,
    )


@external
@view
def getSummary(
    agentId: uint256,
    clientAddresses: DynArray[address, QUERY_MAX],
    tag1: String[TAG_MAX],
    tag2: String[TAG_MAX],
) -> (uint64, int128, uint8):
    assert len(clientAddresses) > 0, "reputation: clientAddresses required"
    total: int256 = 0
    count: uint64 = 0
    per_decimals: uint64[19] = empty(uint64[19])
    for client: address in clientAddresses:
        last: uint64 = self._last_index[agentId][client]
        for i: uint64 in range(last, bound=LOOP_MAX):
            fb: Feedback = self._feedback[agentId][client][i + 1]
            if fb.isRevoked or not self._tags_match(fb, tag1, tag2):
                continue
            total += self._to_wad(fb)
            count += 1
            per_decimals[fb.valueDecimals] += 1
    if count == 0:
        return 0, 0, 0
    mode: uint8 = 0
    best: uint64 = 0
    for d: uint8 in range(19):
        if per_decimals[d] > best:
            best = per_decimals[d]
            mode = d
    average: int256 = total // convert(count, int256)
    # At the most frequent decimals the average may not fit int128 (huge values given with few
    # decimals, averaged with small ones given with more): fall back to fewer decimals until it
    # fits. At 0 decimals it always fits, since every value does.
    d: uint8 = mode
    for _: uint256 in range(19):
        scaled: int256 = average // convert(10 ** convert(MAX_DECIMALS - d, uint256), int256)
        if scaled <= convert(max_value(int128), int256) and scaled >= convert(
            min_value(int128), int256
        ):
            return count, convert(scaled, int128), d
        if d == 0:
            break
        d -= 1
    raise "reputation: summary out of range"


@external
@view
def readFeedback(
    agentId: uint256, clientAddress: address, feedbackIndex: uint64
) -> (int128, uint8, String[TAG_MAX], String[TAG_MAX], bool):
    self._check_index(agentId, clientAddress, feedbackIndex)
    fb: Feedback = self._feedback[agentId][clientAddress][feedbackIndex]
    return fb.value, fb.valueDecimals, fb.tag1, fb.tag2, fb.isRevoked


@external
@view
def readAllFeedback(
    agentId: uint256,
    clientAddresses: DynArray[address, QUERY_MAX],
    tag1: String[TAG_MAX],
    tag2: String[TAG_MAX],
    includeRevoked: bool,
) -> (
    DynArray[address, QUERY_MAX],
    DynArray[uint64, QUERY_MAX],
    DynArray[int128, QUERY_MAX],
    DynArray[uint8, QUERY_MAX],
    DynArray[String[TAG_MAX], QUERY_MAX],
    DynArray[String[TAG_MAX], QUERY_MAX],
    DynArray[bool, QUERY_MAX],
):
    clients: DynArray[address, QUERY_MAX] = clientAddresses
    if len(clients) == 0:
        n: uint256 = self._client_count[agentId]
        assert n <= QUERY_MAX, "reputation: too many clients: pass clientAddresses"
        for i: uint256 in range(n, bound=QUERY_MAX):
            clients.append(self._clients[agentId][i])
    out_clients: DynArray[address, QUERY_MAX] = []
    out_indexes: DynArray[uint64, QUERY_MAX] = []
    out_values: DynArray[int128, QUERY_MAX] = []
    out_decimals: DynArray[uint8, QUERY_MAX] = []
    out_tag1: DynArray[String[TAG_MAX], QUERY_MAX] = []
    out_tag2: DynArray[String[TAG_MAX], QUERY_MAX] = []
    out_revoked: DynArray[bool, QUERY_MAX] = []
    for client: address in clients:
        last: uint64 = self._last_index[agentId][client]
        for i: uint64 in range(last, bound=LOOP_MAX):
            fb: Feedback = self._feedback[agentId][client][i + 1]
            if (fb.isRevoked and not includeRevoked) or not self._tags_match(fb, tag1, tag2):
                continue
            assert len(out_clients) < QUERY_MAX, "reputation: more than 1024 entries: narrow the query"
            out_clients.append(client)
            out_indexes.append(i + 1)
            out_values.append(fb.value)
            out_decimals.append(fb.valueDecimals)
            out_tag1.append(fb.tag1)
            out_tag2.append(fb.tag2)
            out_revoked.append(fb.isRevoked)
    return out_clients, out_indexes, out_values, out_decimals, out_tag1, out_tag2, out_revoked


@external
@view
def getResponseCount(
    agentId: uint256,
    clientAddress: address,
    feedbackIndex: uint64,
    responders: DynArray[address, QUERY_MAX],
) -> uint64:
    count: uint64 = 0
    if clientAddress == empty(address):
        for c: uint256 in range(self._client_count[agentId], bound=LOOP_MAX_U256):
            client: address = self._clients[agentId][c]
            for i: uint64 in range(self._last_index[agentId][client], bound=LOOP_MAX):
                count += self._count_responses(agentId, client, i + 1, responders)
    elif feedbackIndex == 0:
        for i: uint64 in range(self._last_index[agentId][clientAddress], bound=LOOP_MAX):
            count += self._count_responses(agentId, clientAddress, i + 1, responders)
    else:
        count = self._count_responses(agentId, clientAddress, feedbackIndex, responders)
    return count


@external
@view
def getClients(agentId: uint256) -> DynArray[address, LIST_MAX]:
    n: uint256 = self._client_count[agentId]
    assert n <= LIST_MAX, "reputation: more than 4096 clients: use getClientsPage"
    return self._client_page(agentId, 0, n)


@external
@view
def getClientCount(agentId: uint256) -> uint256:
    return self._client_count[agentId]


@external
@view
def getClientsPage(agentId: uint256, offset: uint256, limit: uint256) -> DynArray[address, LIST_MAX]:
    n: uint256 = self._client_count[agentId]
    if offset >= n:
        return []
    return self._client_page(agentId, offset, min(min(limit, LIST_MAX), n - offset))


@external
@view
def getLastIndex(agentId: uint256, clientAddress: address) -> uint64:
    return self._last_index[agentId][clientAddress]


@internal
@view
def _client_page(agent_id: uint256, offset: uint256, count: uint256) -> DynArray[address, LIST_MAX]:
    out: DynArray[address, LIST_MAX] = []
    for i: uint256 in range(count, bound=LIST_MAX):
        out.append(self._clients[agent_id][offset + i])
    return out


@internal
@view
def _check_index(agent_id: uint256, client: address, index: uint64):
    assert index > 0, "reputation: feedbackIndex must be > 0"
    assert index <= self._last_index[agent_id][client], "reputation: feedbackIndex out of bounds"


@internal
@pure
def _tags_match(fb: Feedback, tag1: String[TAG_MAX], tag2: String[TAG_MAX]) -> bool:
    if len(tag1) > 0 and keccak256(tag1) != keccak256(fb.tag1):
        return False
    if len(tag2) > 0 and keccak256(tag2) != keccak256(fb.tag2):
        return False
    return True


@internal
@pure
def _to_wad(fb: Feedback) -> int256:
    scale: int256 = convert(10 ** convert(MAX_DECIMALS - fb.valueDecimals, uint256), int256)
    return convert(fb.value, int256) * scale


@internal
@view
def _count_responses(
    agent_id: uint256, client: address, index: uint64, responders: DynArray[address, QUERY_MAX]
) -> uint64:
    count: uint64 = 0
    if len(responders) == 0:
        n: uint256 = self._responder_count[agent_id][client][index]
        for k: uint256 in range(n, bound=LOOP_MAX_U256):
            responder: address = self._responders[agent_id][client][index][k]
            count += self._response_count[agent_id][client][index][responder]
    else:
        for responder: address in responders:
            count += self._response_count[agent_id][client][index][responder]
    return count
