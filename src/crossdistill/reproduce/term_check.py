"""Check a grid's distillation terms before any run starts.

A term option is only checked when its run builds its :class:`~crossdistill.distill.Distiller`,
and in a grid that run waits for its teacher: a typo in ``--methods "kmm[kmm.wieght=1]"`` or
``--set distill.terms.aam.stride=3`` would fail minutes later, after the teacher trained.
:func:`check_planned_terms` builds the terms of every run still to train on *untrained*
networks of its student's and teacher's configurations (weights play no part in the checks),
once per distinct (student, teacher, terms), so such a grid stops at once with the key named.
"""

from __future__ import annotations

import json

from torch import nn

from crossdistill.config import RunConfig
from crossdistill.distill.distiller import Distiller
from crossdistill.distill.presets import resolved_terms
from crossdistill.models import create_model
from crossdistill.reproduce.runner import PlannedRun
from crossdistill.reproduce.runs import DONE


def _spec(config: RunConfig) -> str:
    model = config.model
    return json.dumps([model.name, config.data.channels, model.num_classes, model.width])


def check_planned_terms(planned: list[PlannedRun]) -> None:
    """Build the terms of each distilled run of ``planned`` that is not done, against its
    first dependency (its teacher run), on untrained networks.

    Raises:
        ConfigError: an unknown term or option, or a bad value; the message names the key.
    """
    configs = {p.spec.id: p.config for p in planned}
    networks: dict[str, nn.Module] = {}  # one of each (paper-size networks take seconds)
    seen: set[str] = set()
    for p in planned:
        terms = resolved_terms(p.config.distill.preset, p.config.distill.terms)
        teacher = configs.get(p.spec.depends[0]) if p.spec.depends else None
        if p.state == DONE or not terms or teacher is None:
            continue
        pair = (_spec(p.config), _spec(teacher))
        key = json.dumps([*pair, terms], sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        for spec in pair:
            if spec not in networks:
                name, channels, classes, width = json.loads(spec)
                networks[spec] = create_model(name, channels, classes, width)
        Distiller(networks[pair[1]], networks[pair[0]], terms, key_prefix="distill.terms")
