"""The live dashboard (``bazaar dashboard``): pages and a JSON API over a data directory."""

from agentbazaar.dashboard.app import create_app
from agentbazaar.dashboard.data import DashboardData
from agentbazaar.errors import NotFound

__all__ = ["DashboardData", "NotFound", "create_app"]
