"""x402 benchmark entry point: ``x402_paid_calls.py`` (scheme ``exact``), then
``x402_upto_paid_calls.py`` (scheme ``upto``); see each for what is measured.

Run: .venv/bin/python benchmarks/x402_calls.py [--n 100] [--concurrency 8] [--no-upto]
"""

from __future__ import annotations

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    upto = "--no-upto" not in sys.argv
    sys.argv = [a for a in sys.argv if a != "--no-upto"]
    runpy.run_path(os.path.join(HERE, "x402_paid_calls.py"), run_name="__main__")
    if upto:
        runpy.run_path(os.path.join(HERE, "x402_upto_paid_calls.py"), run_name="__main__")
