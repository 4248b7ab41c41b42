"""The reason codes of refused x402 payments, and what to tell the payer about each.

The SDK's own codes (``x402.mechanisms.evm.constants``) for what the token or the signature
refuses, plus ours for what the exactly-once protocol, the facilitator's guard and the seller
add. Sellers put the code in the 402's JSON body (``error``) with ``message`` from ``explain``;
``bazaar pay`` prints the same text for a code it reads from any seller.

=============================================  ==============================================
code                                           meaning
=============================================  ==============================================
``authorization_in_use``                       another request holds this authorization
``invalid_exact_evm_nonce_already_used``       it was already settled (or canceled)
``payer_throttled``                            the payer's recent settlements kept failing
``facilitator_unavailable``                    the seller cannot reach its facilitator
``facilitator_unauthorized``                   the facilitator refused the seller's key
``unknown_reservation``                        a release without the lease's token
``payment_terms_mismatch``                     the payment is for other terms than the route's
``payment_for_another_tool``                   an MCP payment made for another tool
``payment_for_other_arguments``                an MCP payment made for the same tool, other arguments
``invalid_payment``                            a payment that cannot be read as x402 v2
``not_settled``                                (buyer) served without a successful settlement
=============================================  ==============================================
"""

from __future__ import annotations

from x402.mechanisms.evm import constants as c

ERR_AUTHORIZATION_IN_USE = "authorization_in_use"
ERR_UNKNOWN_RESERVATION = "unknown_reservation"
ERR_FACILITATOR_UNAVAILABLE = "facilitator_unavailable"
ERR_FACILITATOR_UNAUTHORIZED = "facilitator_unauthorized"
ERR_PAYER_THROTTLED = "payer_throttled"
ERR_TERMS_MISMATCH = "payment_terms_mismatch"
ERR_PAYMENT_REQUIRED = "payment_required"
ERR_OTHER_TOOL = "payment_for_another_tool"
ERR_OTHER_ARGUMENTS = "payment_for_other_arguments"
ERR_INVALID_PAYMENT = "invalid_payment"
ERR_NOT_SETTLED = "not_settled"
# how the SDK's middleware words a payment whose `accepted` matches none of the route's terms
SDK_NO_MATCH = "No matching payment requirements"

MESSAGES = {
    ERR_FACILITATOR_UNAVAILABLE: "the seller's payment facilitator cannot be reached; nothing "
    "was charged, try again later",
    ERR_FACILITATOR_UNAUTHORIZED: "the seller's facilitator refused its credentials; nothing "
    "was charged (the seller must fix its facilitator key)",
    ERR_AUTHORIZATION_IN_USE: "another request is being served with this payment; retry the "
    "same request later, or sign a new payment",
    ERR_PAYER_THROTTLED: "too many of this payer's payments failed after verification; try "
    "again later",
    ERR_NOT_SETTLED: "the seller answered without a successful settlement (no PAYMENT-RESPONSE): "
    "it does not count as paid; `bazaar wallet ledger --reconcile` finds out later whether the "
    "authorization was used",
    ERR_TERMS_MISMATCH: "the payment is for other terms (network, token, amount or payee) than "
    "this route asks; pay what its 402 lists",
    ERR_PAYMENT_REQUIRED: "this is paid: pay one of the listed requirements (x402) and call again",
    ERR_OTHER_TOOL: "the payment was made for another tool; pay what this tool's payment-required "
    "result lists",
    ERR_OTHER_ARGUMENTS: "the payment was made for this tool with other arguments; pay for this "
    "very call",
    ERR_INVALID_PAYMENT: "the payment cannot be read as an x402 v2 payment",
    c.ERR_UNSUPPORTED_SCHEME: "the payment uses a scheme this seller does not offer; pay with one "
    "it lists",
    c.ERR_NONCE_ALREADY_USED: "this payment authorization was already used; sign a new one",
    c.ERR_INSUFFICIENT_BALANCE: "the payer's token balance is too low for this payment; fund "
    "the wallet and pay again",
    c.ERR_VALID_BEFORE_EXPIRED: "the payment authorization has expired (or expires too soon); "
    "sign a new one (check this machine's clock)",
    c.ERR_VALID_AFTER_FUTURE: "the payment authorization is not valid yet; check this "
    "machine's clock",
    c.ERR_INVALID_SIGNATURE: "the payment signature does not match the payer for this token "
    "(a look-alike token or a wrong EIP-712 domain?)",
    c.ERR_SETTLEMENT_PENDING: "the payment was sent but is not confirmed yet; retry the same "
    "request to get its response",
    c.ERR_TRANSACTION_FAILED: "the payment transaction failed on chain; nothing was charged",
}


def explain(reason: str | None) -> str:
    """A plain sentence for ``reason`` (the code itself when it is not one we know)."""
    if not reason:
        return "payment required"
    return MESSAGES.get(reason, reason)
