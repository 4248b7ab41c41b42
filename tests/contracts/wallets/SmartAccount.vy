# pragma version ~=0.4.3
"""
@title A minimal smart account for tests: ERC-1271 by its owner's key
@notice Accepts a signature when its first 65 bytes are the owner's ECDSA signature of the
        digest (anything after them is ignored, as a wallet's own metadata would be), so tests
        can send ERC-1271 signatures of 65 bytes and of other lengths. Created by
        `SmartAccountFactory` as a copy of a template, then initialized once; it may approve a
        spender (Permit2) for a token at creation, as accounts that pay with Permit2 must.
"""

from ethereum.ercs import IERC20

owner: public(address)


@deploy
def __init__():
    pass


@external
def initialize(owner_: address, token: address, spender: address):
    assert self.owner == empty(address), "already initialized"
    assert owner_ != empty(address), "no owner"
    self.owner = owner_
    if token != empty(address):
        extcall IERC20(token).approve(spender, max_value(uint256))


@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[2048]) -> bytes4:
    if len(signature) < 65 or self.owner == empty(address):
        return 0xffffffff
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if ecrecover(digest, v, r, s) == self.owner:
        return 0x1626ba7e
    return 0xffffffff
