# pragma version ~=0.4.3
"""
@title DatasetRegistry
@notice Content-addressed datasets with their publisher, licence, price, lineage, contributors
        and versions. An entry is keyed by its CID (binary form, 34 to 64 bytes) and numbered
        from 1. The publisher is an ERC-8004 agent: `publish` must come from the agent's
        `agentWallet` in the IdentityRegistry.

        Licences are machine-readable templates the registry's owner adds once (commercial use
        yes/no, derivatives allowed yes/no, attribution required yes/no, and the keccak hash of
        the template's canonical JSON terms). A dataset picks one and, when derivatives are
        allowed, the royalty in basis points that datasets derived from it pay it.

        Revenue: each dataset gets its own RevenueSplitter (an EIP-1167 clone of
        `splitterImplementation`, owned by this registry) over the dataset's payment token:
        contributors are its payees (initial shares must sum to SHARE_WHOLE = 10,000), and the
        parents' splitters are its upstreams with the parents' royalties, so every sale of a
        derived dataset pays its parents (and their parents, when they distribute) on chain.
        Buyers pay the splitter (it is the `payTo` of the dataset's x402 price).

        Versions: `publishVersion` adds a new CID to a dataset's line; it keeps the licence,
        parents, token and splitter (contributors keep earning), and `latestVersion(first)`
        points at the newest. The publisher may change prices and award shares to new
        contributors (what its contribution validator accepted) through the splitter.
"""

MAX_PARENTS: constant(uint256) = 8
MAX_CONTRIBUTORS: constant(uint256) = 64
CID_MIN: constant(uint256) = 34
CID_MAX: constant(uint256) = 64
NAME_MAX: constant(uint256) = 32
SHARE_WHOLE: constant(uint256) = 10_000
BPS: constant(uint256) = 10_000


interface IIdentityRegistry:
    def getAgentWallet(agentId: uint256) -> address: view


interface IRevenueSplitter:
    def initialize(
        token_: address,
        payees_: DynArray[address, MAX_CONTRIBUTORS],
        shares_: DynArray[uint256, MAX_CONTRIBUTORS],
        upstreams_: DynArray[address, MAX_PARENTS],
        bps_: DynArray[uint256, MAX_PARENTS],
        owner_: address,
    ): nonpayable
    def addShares(payee: address, amount: uint256): nonpayable


struct Licence:
    name: String[NAME_MAX]
    commercial: bool
    derivatives: bool
    attribution: bool
    termsHash: bytes32


struct Dataset:
    cid: Bytes[CID_MAX]
    agentId: uint256
    publisher: address
    licence: uint256
    royaltyBps: uint256
    token: address
    price: uint256
    pricePerChunk: uint256
    splitter: address
    version: uint256
    firstVersion: uint256
    publishedAt: uint256


event LicenceAdded:
    licenceId: indexed(uint256)
    name: String[NAME_MAX]
    termsHash: bytes32


event DatasetPublished:
    datasetId: indexed(uint256)
    agentId: indexed(uint256)
    publisher: indexed(address)
    cid: Bytes[CID_MAX]
    licence: uint256
    splitter: address
    version: uint256
    firstVersion: uint256


event PriceChanged:
    datasetId: indexed(uint256)
    price: uint256
    pricePerChunk: uint256


event SharesAwarded:
    datasetId: indexed(uint256)
    contributor: indexed(address)
    shares: uint256


identity: public(immutable(address))
splitterImplementation: public(immutable(address))
owner: public(address)
licenceCount: public(uint256)
datasetCount: public(uint256)
latestVersion: public(HashMap[uint256, uint256])
_licences: HashMap[uint256, Licence]
_datasets: HashMap[uint256, Dataset]
_parents: HashMap[uint256, DynArray[uint256, MAX_PARENTS]]
_by_cid: HashMap[bytes32, uint256]


@deploy
def __init__(identity_: address, splitter_implementation: address):
    assert identity_ != empty(address), "registry: zero identity registry"
    assert splitter_implementation != empty(address), "registry: zero splitter implementation"
    identity = identity_
    splitterImplementation = splitter_implementation
    self.owner = msg.sender


@external
def addLicence(
    name: String[NAME_MAX], commercial: bool, derivatives: bool, attribution: bool, termsHash: bytes32
) -> uint256:
    assert msg.sender == self.owner, "registry: caller is not the owner"
    assert len(name) > 0, "registry: empty licence name"
    assert termsHash != empty(bytes32), "registry: empty terms hash"
    licence_id: uint256 = self.licenceCount + 1
    self.licenceCount = licence_id
    self._licences[licence_id] = Licence(
        name=name, commercial=commercial, derivatives=derivatives, attribution=attribution, termsHash=termsHash
    )
    log LicenceAdded(licenceId=licence_id, name=name, termsHash=termsHash)
    return licence_id


@external
def publish(
    cid: Bytes[CID_MAX],
    agentId: uint256,
    licence: uint256,
    royaltyBps: uint256,
    token: address,
    price: uint256,
    pricePerChunk: uint256,
    parents: DynArray[uint256, MAX_PARENTS],
    contributors: DynArray[address, MAX_CONTRIBUTORS],
    shares: DynArray[uint256, MAX_CONTRIBUTORS],
) -> uint256:
    """
    @notice Register a new dataset (version 1 of its line) and its revenue splitter.
    """
    self._check_publisher(agentId)
    self._check_cid(cid)
    assert licence > 0 and licence <= self.licenceCount, "registry: unknown licence"
    assert royaltyBps <= BPS, "registry: royalty above 100%"
    assert royaltyBps == 0 or self._licences[licence].derivatives, "registry: royalty on a licence without derivatives"
    assert token != empty(address), "registry: zero token"
    self._check_shares(contributors, shares)
    upstreams: DynArray[address, MAX_PARENTS] = []
    bps: DynArray[uint256, MAX_PARENTS] = []
    upstreams, bps = self._parent_royalties(parents, token)
    splitter: address = create_minimal_proxy_to(splitterImplementation)
    extcall IRevenueSplitter(splitter).initialize(token, contributors, shares, upstreams, bps, self)
    dataset_id: uint256 = self.datasetCount + 1
    self._store(
        dataset_id,
        Dataset(
            cid=cid, agentId=agentId, publisher=msg.sender, licence=licence, royaltyBps=royaltyBps,
            token=token, price=price, pricePerChunk=pricePerChunk, splitter=splitter, version=1,
            firstVersion=dataset_id, publishedAt=block.timestamp,
        ),
    )
    self._parents[dataset_id] = parents
    return dataset_id


@external
def publishVersion(previous: uint256, cid: Bytes[CID_MAX], price: uint256, pricePerChunk: uint256) -> uint256:
    """
    @notice Add `cid` as the next version of `previous`'s line (its latest version only).
    """
    old: Dataset = self._require_dataset(previous)
    assert msg.sender == old.publisher, "registry: caller is not the publisher"
    assert self.latestVersion[old.firstVersion] == previous, "registry: not the latest version"
    self._check_publisher(old.agentId)
    self._check_cid(cid)
    dataset_id: uint256 = self.datasetCount + 1
    new: Dataset = old
    new.cid = cid
    new.price = price
    new.pricePerChunk = pricePerChunk
    new.version = old.version + 1
    new.publishedAt = block.timestamp
    self._store(dataset_id, new)
    self._parents[dataset_id] = self._parents[previous]
    return dataset_id


@external
def setPrice(datasetId: uint256, price: uint256, pricePerChunk: uint256):
    entry: Dataset = self._require_dataset(datasetId)
    assert msg.sender == entry.publisher, "registry: caller is not the publisher"
    self._datasets[datasetId].price = price
    self._datasets[datasetId].pricePerChunk = pricePerChunk
    log PriceChanged(datasetId=datasetId, price=price, pricePerChunk=pricePerChunk)


@external
def awardShares(datasetId: uint256, contributor: address, amount: uint256):
    """
    @notice Give an accepted contributor `amount` more shares of the dataset's revenue.
    """
    entry: Dataset = self._require_dataset(datasetId)
    assert msg.sender == entry.publisher, "registry: caller is not the publisher"
    extcall IRevenueSplitter(entry.splitter).addShares(contributor, amount)
    log SharesAwarded(datasetId=datasetId, contributor=contributor, shares=amount)


@external
def transferOwnership(new_owner: address):
    assert msg.sender == self.owner, "registry: caller is not the owner"
    self.owner = new_owner


@external
@view
def getDataset(datasetId: uint256) -> Dataset:
    return self._require_dataset(datasetId)


@external
@view
def getLicence(licenceId: uint256) -> Licence:
    assert licenceId > 0 and licenceId <= self.licenceCount, "registry: unknown licence"
    return self._licences[licenceId]


@external
@view
def parentsOf(datasetId: uint256) -> DynArray[uint256, MAX_PARENTS]:
    self._require_dataset(datasetId)
    return self._parents[datasetId]


@external
@view
def idOf(cid: Bytes[CID_MAX]) -> uint256:
    """
    @notice The dataset id of `cid`, or 0 when it is not registered.
    """
    return self._by_cid[keccak256(cid)]


@internal
def _store(dataset_id: uint256, entry: Dataset):
    self.datasetCount = dataset_id
    self._datasets[dataset_id] = entry
    self._by_cid[keccak256(entry.cid)] = dataset_id
    self.latestVersion[entry.firstVersion] = dataset_id
    log DatasetPublished(
        datasetId=dataset_id, agentId=entry.agentId, publisher=entry.publisher, cid=entry.cid,
        licence=entry.licence, splitter=entry.splitter, version=entry.version,
        firstVersion=entry.firstVersion,
    )


@internal
@view
def _require_dataset(dataset_id: uint256) -> Dataset:
    assert dataset_id > 0 and dataset_id <= self.datasetCount, "registry: unknown dataset"
    return self._datasets[dataset_id]


@internal
@view
def _check_publisher(agent_id: uint256):
    wallet: address = staticcall IIdentityRegistry(identity).getAgentWallet(agent_id)
    assert wallet == msg.sender, "registry: sender is not the agent's wallet"


@internal
@view
def _check_cid(cid: Bytes[CID_MAX]):
    assert len(cid) >= CID_MIN, "registry: CID too short"
    assert self._by_cid[keccak256(cid)] == 0, "registry: CID already registered"


@internal
@pure
def _check_shares(contributors: DynArray[address, MAX_CONTRIBUTORS], shares: DynArray[uint256, MAX_CONTRIBUTORS]):
    assert len(contributors) > 0, "registry: no contributors"
    assert len(contributors) == len(shares), "registry: contributors and shares differ in length"
    total: uint256 = 0
    for amount: uint256 in shares:
        total += amount
    assert total == SHARE_WHOLE, "registry: shares must sum to 10000"


@internal
@view
def _parent_royalties(
    parents: DynArray[uint256, MAX_PARENTS], token: address
) -> (DynArray[address, MAX_PARENTS], DynArray[uint256, MAX_PARENTS]):
    upstreams: DynArray[address, MAX_PARENTS] = []
    bps: DynArray[uint256, MAX_PARENTS] = []
    total: uint256 = 0
    for i: uint256 in range(len(parents), bound=MAX_PARENTS):
        assert parents[i] > 0 and parents[i] <= self.datasetCount, "registry: parent does not exist"
        for j: uint256 in range(i, bound=MAX_PARENTS):
            assert parents[j] != parents[i], "registry: duplicate parent"
        parent: Dataset = self._datasets[parents[i]]
        assert self._licences[parent.licence].derivatives, "registry: parent licence forbids derivatives"
        assert parent.token == token, "registry: parent is paid in another token"
        total += parent.royaltyBps
        if parent.royaltyBps > 0:
            upstreams.append(parent.splitter)
            bps.append(parent.royaltyBps)
    assert total <= BPS, "registry: parent royalties above 100%"
    return upstreams, bps
