"""Domain-generalisation baselines of the paper's Table 4 (no teacher); they are registered
as training methods in ``crossdistill.methods``."""

from crossdistill.dg.drdg import DRDG
from crossdistill.dg.saml import SAML, split_episode

__all__ = ["DRDG", "SAML", "split_episode"]
