"""Domain-generalisation baselines (no teacher) and the registry of training methods."""

from crossdistill.dg.drdg import DRDG
from crossdistill.dg.registry import create_objective, method_names, method_options
from crossdistill.dg.saml import SAML, split_episode

__all__ = ["DRDG", "SAML", "create_objective", "method_names", "method_options", "split_episode"]
