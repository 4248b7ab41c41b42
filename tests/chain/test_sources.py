"""Source bundles name every imported module the way the contract imports it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from agentbazaar.chain.sources import gather


def test_a_search_root_that_holds_site_packages_does_not_rename_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `python -m pytest` from a project holding its virtualenv puts the project directory, an
    # ancestor of site-packages, on sys.path: snekmate must still be "snekmate/...".
    spec = importlib.util.find_spec("snekmate")
    assert spec is not None and spec.submodule_search_locations
    site = Path(next(iter(spec.submodule_search_locations))).resolve().parent
    for ancestor in (site.parent, site.parent.parent, Path("/")):
        monkeypatch.setattr(sys, "path", [str(ancestor), *sys.path])
    bundle = gather("templates/LinearVesting")
    assert sorted(bundle.sources) == ["snekmate/utils/math.vy", "templates/LinearVesting.vy"]
