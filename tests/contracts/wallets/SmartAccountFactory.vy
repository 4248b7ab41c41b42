# pragma version ~=0.4.3
"""
@title A CREATE2 factory of `SmartAccount`s for tests (ERC-6492 deployments)
@notice `createAccount(owner, token, salt)` deploys a copy of the template at an address fixed
        by (owner, token, salt), initializes it (approving `SPENDER` for `token`), and returns
        it; called again it returns the same account. The address is known before deployment
        by simulating the call, which is what an ERC-6492 signature is made against.
"""

interface SmartAccount:
    def initialize(owner_: address, token: address, spender: address): nonpayable


TEMPLATE: public(immutable(address))
SPENDER: public(immutable(address))
accounts: public(HashMap[bytes32, address])


@deploy
def __init__(template: address, spender: address):
    TEMPLATE = template
    SPENDER = spender


@external
def createAccount(owner: address, token: address, salt: bytes32) -> address:
    key: bytes32 = keccak256(abi_encode(owner, token, salt))
    account: address = self.accounts[key]
    if account != empty(address):
        return account
    account = create_copy_of(TEMPLATE, salt=key)
    extcall SmartAccount(account).initialize(owner, token, SPENDER)
    self.accounts[key] = account
    return account
