"""The example paid service in its own process, on a shared facilitator (cross-process tests):
python seller_proc.py FACILITATOR_URL PORT NETWORK TOKEN PAY_TO [RESPONSES_DB]"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from agentbazaar.payments.example import create_example_app
from agentbazaar.payments.server import PaymentTerms
from agentbazaar.tokens import Token


def main() -> None:
    facilitator, port, network, token, pay_to = sys.argv[1:6]
    terms = PaymentTerms(
        network=network, token=Token("USDC", 6, token, "USD Coin", "2"), pay_to=pay_to
    )
    kept = {"responses_path": Path(sys.argv[6])} if len(sys.argv) > 6 else {}
    app = create_example_app(terms, facilitator, **kept)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
