"""The paper's constants have one home, :mod:`crossdistill.paper`, that every user reads.

"Read, not written again" is checked by identity (``is``): a number copied into another
module would be an equal but distinct object.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdistill import paper
from crossdistill.distill.presets import preset_terms
from crossdistill.losses.affinity import AffinityLoss
from crossdistill.losses.registry import get_term
from crossdistill.models import PAPER_TABLE1, list_models
from crossdistill.reproduce import paper_numbers

LAMBDAS = {"lm": paper.LAMBDA_LM, "kmm": paper.LAMBDA_KMM, "aam": paper.LAMBDA_AAM}


def test_the_paper_values() -> None:
    assert LAMBDAS == {"lm": 0.2, "kmm": 0.9, "aam": 0.9}
    assert paper.AAM_MARGIN == 3.0
    assert paper.TABLE1["enet"] == paper.PaperComplexity(params_m=0.353, gflops=2.2)
    assert sorted(paper.TABLE1) == sorted(list_models()) == sorted(paper.MODEL_LABELS)


@pytest.mark.parametrize("term", sorted(LAMBDAS))
def test_the_registry_default_weights_are_the_paper_module_values(term: str) -> None:
    assert get_term(term).default_weight is LAMBDAS[term]


@pytest.mark.parametrize("preset", ["ours", "lm", "kmm", "aam", "aam+kmm+lm", "recommended"])
def test_the_presets_weights_are_the_paper_module_values(preset: str) -> None:
    for term, options in preset_terms(preset).items():
        assert options["weight"] is LAMBDAS[term]


def test_the_aam_margin_is_the_paper_module_value() -> None:
    assert get_term("aam").options["margin"] is paper.AAM_MARGIN
    assert preset_terms("ours")["aam"]["margin"] is paper.AAM_MARGIN
    assert AffinityLoss().margin == paper.AAM_MARGIN


def test_the_tables_are_the_paper_module_objects() -> None:
    assert PAPER_TABLE1 is paper.TABLE1
    for name in ("SITE_LABELS", "MODEL_LABELS", "TABLE2", "TABLE3", "TABLE4"):
        assert getattr(paper_numbers, name) is getattr(paper, name)


def test_the_paper_module_imports_nothing_of_the_project() -> None:
    source = Path(paper.__file__).read_text(encoding="utf-8")
    assert "import crossdistill" not in source and "from crossdistill" not in source
