"""A run's inputs, checked before anything heavy is loaded: the cache and the sites it names.

:func:`crossdistill.api.train` calls :func:`open_run_inputs` before it imports the engine,
so that a missing cache or a mistyped site ends in one line at once rather than after torch,
MONAI and the networks are loaded (about 10 s per process on a 2-core CPU).
"""

from __future__ import annotations

from crossdistill.config import RunConfig, protocol_sites
from crossdistill.data.cache import Cache
from crossdistill.data.sites import resolve_site
from crossdistill.errors import ConfigError


def run_sites(config: RunConfig, cache: Cache) -> tuple[list[str], list[str]]:
    """``(train_sites, eval_sites)`` as folders, from the protocol preset or the lists given."""
    if config.protocol != "custom":
        if config.target is None:
            raise ConfigError("target", f"protocol '{config.protocol}' needs a target site")
        target = resolve_site(config.target, cache.sites)
        return protocol_sites(config.protocol, config.role, target, cache.sites)
    if not config.train.sites:
        raise ConfigError("train.sites", "give the training sites (or a protocol and a target)")
    train_sites = cache.resolve_sites(config.train.sites)
    eval_sites = cache.resolve_sites(config.eval.sites) if config.eval.sites else train_sites
    return train_sites, eval_sites


def open_run_inputs(config: RunConfig) -> tuple[Cache, list[str], list[str]]:
    """``(cache, train_sites, eval_sites)`` of ``config``.

    Raises:
        ConfigError: no ``data.cache``, no target for a protocol, no training sites.
        CrossDistillError: a cache that cannot be opened, an unknown site.
    """
    if config.data.cache is None:
        raise ConfigError("data.cache", "give the cache folder written by `crossdistill prepare`")
    cache = Cache(config.data.cache)
    return (cache, *run_sites(config, cache))
