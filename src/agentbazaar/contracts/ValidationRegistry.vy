# pragma version ~=0.4.3
"""
@title ERC-8004 Validation Registry
@notice The owner (or an operator) of an agent asks a named validator to check its work
        (`validationRequest`, keyed by a fresh `requestHash`); only that validator answers, with
        a response from 0 to 100, and may answer again (progressive finality, e.g. tag "soft"
        then "hard"): the latest answer is the status. `getSummary` averages the answered
        requests of an agent, optionally filtered by validators and tag.

        Selectors and event topics equal ERC-8004's (January 2026 revision). Bounds: requestURI
        and responseURI at most 8,192 bytes, tag at most 64, validatorAddresses at most 1,024,
        and the list getters at most 4,096 items per call (paged getters beside them).
"""

TAG_MAX: constant(uint256) = 64
URI_MAX: constant(uint256) = 8192
QUERY_MAX: constant(uint256) = 1024
LIST_MAX: constant(uint256) = 4096
LOOP_MAX: constant(uint256) = 4294967295
MAX_RESPONSE: constant(uint8) = 100


interface IIdentityRegistry:
    def ownerOf(tokenId: uint256) -> address: view
    def isApprovedForAll(owner: address, operator: address) -> bool: view
    def getApproved(tokenId: uint256) -> address: view


struct ValidationStatus:
    validatorAddress: address
    agentId: uint256
    response: uint8
    hasResponse: bool
    responseHash: bytes32
    tag: String[TAG_MAX]
    lastUpdate: uint256


event ValidationRequest:
    validatorAddress: indexed(address)
    agentId: indexed(uint256)
    requestURI: String[URI_MAX]
    requestHash: indexed(bytes32)


event ValidationResponse:
    validatorAddress: indexed(address)
    agentId: indexed(uint256)
    requestHash: indexed(bytes32)
    response: uint8
    responseURI: String[URI_MAX]
    responseHash: bytes32
    tag: String[TAG_MAX]


_identity: immutable(address)
_validations: HashMap[bytes32, ValidationStatus]
_agent_requests: HashMap[uint256, HashMap[uint256, bytes32]]
_agent_request_count: HashMap[uint256, uint256]
_validator_requests: HashMap[address, HashMap[uint256, bytes32]]
_validator_request_count: HashMap[address, uint256]


@deploy
def __init__(identityRegistry: address):
    assert identityRegistry != empty(address), "validation: zero identity registry"
    _identity = identityRegistry


@external
@view
def getIdentityRegistry() -> address:
    return _identity


@external
def validationRequest(
    validatorAddress: address, agentId: uint256, requestURI: String[URI_MAX], requestHash: bytes32
):
    assert validatorAddress != empty(address), "validation: zero validator"
    assert self._validations[requestHash].validatorAddress == empty(
        address
    ), "validation: requestHash already used"
    registry: IIdentityRegistry = IIdentityRegistry(_identity)
    owner: address = staticcall registry.ownerOf(agentId)
    assert owner != empty(address), "validation: agent does not exist"
    assert (
        msg.sender == owner
        or staticcall registry.isApprovedForAll(owner, msg.sender)
        or staticcall registry.getApproved(agentId) == msg.sender
    ), "validation: not the agent's owner or operator"
    self._validations[requestHash] = ValidationStatus(
        validatorAddress=validatorAddress,
        agentId=agentId,
        response=0,
        hasResponse=False,
        responseHash=empty(bytes32),
        tag="",
        lastUpdate=block.timestamp,
    )
    n: uint256 = self._agent_request_count[agentId]
    self._agent_requests[agentId][n] = requestHash
    self._agent_request_count[agentId] = n + 1
    m: uint256 = self._validator_request_count[validatorAddress]
    self._validator_requests[validatorAddress][m] = requestHash
    self._validator_request_count[validatorAddress] = m + 1
    log ValidationRequest(
        validatorAddress=validatorAddress,
        agentId=agentId,
        requestURI=requestURI,
        requestHash=requestHash,
    )


@external
def validationResponse(
    requestHash: bytes32,
    response: uint8,
    responseURI: String[URI_MAX],
    responseHash: bytes32,
    tag: String[TAG_MAX],
):
    status: ValidationStatus = self._validations[requestHash]
    assert status.validatorAddress != empty(address), "validation: unknown requestHash"
    assert msg.sender == status.validatorAddress, "validation: not the requested validator"
    assert response <= MAX_RESPONSE, "validation: response above 100"
    status.response = response
    status.hasResponse = True
    status.responseHash = responseHash
    status.tag = tag
    status.lastUpdate = block.timestamp
    self._validations[requestHash] = status
    log ValidationResponse(
        validatorAddress=status.validatorAddress,
        agentId=status.agentId,
        requestHash=requestHash,
        response=response,
        responseURI=responseURI,
        responseHash=responseHash,
        tag=tag,
    )


@external
@view
def getValidationStatus(
    requestHash: bytes32,
) -> (address, uint256, uint8, bytes32, String[TAG_MAX], uint256):
    s: ValidationStatus = self._validations[requestHash]
    assert s.validatorAddress != empty(address), "validation: unknown requestHash"
    return s.validatorAddress, s.agentId, s.response, s.responseHash, s.tag, s.lastUpdate


@external
@view
def getSummary(
    agentId: uint256, validatorAddresses: DynArray[address, QUERY_MAX], tag: String[TAG_MAX]
) -> (uint64, uint8):
    total: uint256 = 0
    count: uint64 = 0
    for i: uint256 in range(self._agent_request_count[agentId], bound=LOOP_MAX):
        s: ValidationStatus = self._validations[self._agent_requests[agentId][i]]
        if not s.hasResponse:
            continue
        if len(validatorAddresses) > 0 and s.validatorAddress not in validatorAddresses:
            continue
        if len(tag) > 0 and keccak256(tag) != keccak256(s.tag):
            continue
        total += convert(s.response, uint256)
        count += 1
    if count == 0:
        return 0, 0
    return count, convert(total // convert(count, uint256), uint8)


@external
@view
def getAgentValidations(agentId: uint256) -> DynArray[bytes32, LIST_MAX]:
    n: uint256 = self._agent_request_count[agentId]
    assert n <= LIST_MAX, "validation: more than 4096 requests: use getAgentValidationsPage"
    return self._agent_page(agentId, 0, n)


@external
@view
def getAgentValidationCount(agentId: uint256) -> uint256:
    return self._agent_request_count[agentId]


@external
@view
def getAgentValidationsPage(
    agentId: uint256, offset: uint256, limit: uint256
) -> DynArray[bytes32, LIST_MAX]:
    n: uint256 = self._agent_request_count[agentId]
    if offset >= n:
        return []
    return self._agent_page(agentId, offset, min(min(limit, LIST_MAX), n - offset))


@external
@view
def getValidatorRequests(validatorAddress: address) -> DynArray[bytes32, LIST_MAX]:
    n: uint256 = self._validator_request_count[validatorAddress]
    assert n <= LIST_MAX, "validation: more than 4096 requests: use getValidatorRequestsPage"
    return self._validator_page(validatorAddress, 0, n)


@external
@view
def getValidatorRequestCount(validatorAddress: address) -> uint256:
    return self._validator_request_count[validatorAddress]


@external
@view
def getValidatorRequestsPage(
    validatorAddress: address, offset: uint256, limit: uint256
) -> DynArray[bytes32, LIST_MAX]:
    n: uint256 = self._validator_request_count[validatorAddress]
    if offset >= n:
        return []
    return self._validator_page(validatorAddress, offset, min(min(limit, LIST_MAX), n - offset))


@internal
@view
def _agent_page(agent_id: uint256, offset: uint256, count: uint256) -> DynArray[bytes32, LIST_MAX]:
    out: DynArray[bytes32, LIST_MAX] = []
    for i: uint256 in range(count, bound=LIST_MAX):
        out.append(self._agent_requests[agent_id][offset + i])
    return out


@internal
@view
def _validator_page(
    validator: address, offset: uint256, count: uint256
) -> DynArray[bytes32, LIST_MAX]:
    out: DynArray[bytes32, LIST_MAX] = []
    for i: uint256 in range(count, bound=LIST_MAX):
        out.append(self._validator_requests[validator][offset + i])
    return out
