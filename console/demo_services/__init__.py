"""Stand-ins for a trust's data-access-api and imaging-api, for the demo and tests, on loopback only.

Cohort queries get counts from a synthetic dataset made at start-up, with
small counts suppressed and the rest rounded, so no real patient data is
involved. Nothing here imports Textual or the agent.
"""

from .app import DATA_ACCESS_API, IMAGING_API, ServiceRequest
from .dataset import SyntheticCohort, rounded_count
from .server import DemoTrustServices

__all__ = ["DATA_ACCESS_API", "IMAGING_API", "DemoTrustServices", "ServiceRequest", "SyntheticCohort", "rounded_count"]
