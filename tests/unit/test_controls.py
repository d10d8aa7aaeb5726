"""Control teachers (untrained, ground-truth): what they are, and how runs use them."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_run_config
from crossdistill import api
from crossdistill.data.cache import Cache
from crossdistill.data.dataset import SliceDataset
from crossdistill.distill import Distiller
from crossdistill.distill.controls import (
    GroundTruthTeacher,
    build_control,
    matched_epsilon,
    mean_confidence,
    same_run_control,
    untrained_network,
)
from crossdistill.distill.presets import resolved_terms
from crossdistill.distill.terms import reads_teacher_logits
from crossdistill.engine.checkpoint import save_checkpoint
from crossdistill.engine.teacher_cache import cache_key
from crossdistill.models import create_model

SPEC = {"name": "enet", "in_channels": 1, "num_classes": 2, "width": 0.25}


def test_untrained_teacher_is_the_initialisation_of_its_seed_and_keeps_the_rng():
    torch.manual_seed(5)
    reference = create_model("enet", 1, 2, 0.25)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    control = untrained_network(SPEC, 5)
    assert torch.equal(torch.get_rng_state(), state)  # the run's own stream is untouched
    assert not control.training
    assert all(not p.requires_grad for p in control.parameters())
    for (name, value), (_, expected) in zip(
        control.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(value, expected), name
    other = untrained_network(SPEC, 6)
    assert not all(
        torch.equal(a, b) for a, b in zip(other.parameters(), control.parameters(), strict=True)
    )


def test_ground_truth_teacher_argmax_is_the_mask_at_the_asked_confidence():
    masks = torch.zeros(2, 32, 32, dtype=torch.long)
    masks[0, 4:9, 3:12] = 1
    masks[1, 10:, :5] = 1
    teacher = GroundTruthTeacher(untrained_network(SPEC, 0), epsilon=0.1)
    out = teacher(torch.randn(2, 1, 32, 32), masks)
    assert torch.equal(out.logits.argmax(1), masks)
    probs = out.logits.softmax(1)
    assert torch.allclose(probs.amax(1), torch.full((2, 32, 32), 0.95), atol=1e-6)
    assert set(out.features) >= {"low", "high"}
    with pytest.raises(ValueError, match="needs the batch's masks"):
        teacher(torch.randn(1, 1, 32, 32))


def test_matched_epsilon_gives_the_teachers_confidence():
    for confidence in (0.8, 0.9, 0.97):
        eps = matched_epsilon(confidence, 2)
        assert 1 - eps + eps / 2 == pytest.approx(confidence)
    assert matched_epsilon(1.0, 2) == pytest.approx(1e-3)  # log p stays finite
    assert matched_epsilon(0.3, 2) < 0.5  # argmax stays the mask


def test_mean_confidence_of_a_network_leaves_the_rng(engine_cache):
    dataset = SliceDataset(Cache(engine_cache), ["HK"], "train")
    net = untrained_network(SPEC, 0)
    state = torch.get_rng_state()
    value = mean_confidence(net, dataset, max_items=10)
    assert torch.equal(torch.get_rng_state(), state)
    assert 0.5 <= value <= 1.0


def test_build_control_records_what_it_built(engine_cache):
    dataset = SliceDataset(Cache(engine_cache), ["HK"], "train")
    trained = create_model("enet", 1, 2, 0.25).eval()
    control, info = build_control("ground-truth", trained, SPEC, 4, dataset)
    assert isinstance(control, GroundTruthTeacher)
    assert info["name"] == "ground-truth" and info["seed"] == 4
    assert info["epsilon"] == pytest.approx(matched_epsilon(info["teacher_confidence"], 2))
    control, info = build_control("untrained", trained, SPEC, 4, dataset)
    assert info == {"name": "untrained", "seed": 4}


def test_the_distiller_hands_the_masks_to_a_ground_truth_teacher():
    student = create_model("enet", 1, 2, 0.25)
    teacher = GroundTruthTeacher(untrained_network(SPEC, 0), epsilon=0.05)
    distiller = Distiller(teacher, student, {"lm": {"weight": 1.0}})
    masks = torch.zeros(2, 32, 32, dtype=torch.long)
    masks[:, 8:20, 8:20] = 1
    out = distiller(torch.randn(2, 1, 32, 32), masks)
    assert torch.equal(out.teacher_logits.argmax(1), masks)
    assert torch.isfinite(out.total)


@pytest.mark.parametrize(
    ("preset", "changes", "reads_logits"),
    [
        ("kmm", {}, False),
        ("at", {}, False),
        ("mskd", {}, False),  # regions from the ground truth, features from the teacher
        ("kmm", {"kmm": {"feature": "logits"}}, True),
        ("lm", {}, True),
        ("kmm+lm", {"lm": {"weight": 0}}, False),  # a weight of 0 drops the term
        ("recommended", {}, True),
        ("aam", {}, True),  # the teacher's argmax labels the pairs
        ("aam", {"aam": {"on": "features"}}, True),
        ("aam", {"aam": {"on": "features", "match": "teacher"}}, False),
        ("aam", {"aam": {"on": "features", "match": "teacher", "gt_gate": True}}, True),
        ("aam", {"aam": {"on": "features", "match": "teacher", "min_confidence": 0.0}}, True),
    ],
)
def test_ground_truth_is_the_untrained_run_exactly_when_no_term_reads_teacher_logits(
    preset, changes, reads_logits
):
    terms = resolved_terms(preset, changes)
    assert any(reads_teacher_logits(n, o) for n, o in terms.items()) is reads_logits
    expected = "ground-truth" if reads_logits else "untrained"
    assert same_run_control("ground-truth", terms) == expected
    assert same_run_control("untrained", terms) == "untrained"
    assert same_run_control(None, terms) is None


def test_kmm_sees_the_same_teacher_under_both_controls():
    """Why the rule holds: the ground-truth control's features are the untrained network's,
    so a term of features alone gets the same loss and gradients from either."""
    student = create_model("enet", 1, 2, 0.25)
    images, masks = torch.randn(2, 1, 32, 32), torch.zeros(2, 32, 32, dtype=torch.long)
    masks[:, 8:20, 8:20] = 1
    losses = {}
    for name, teacher in (
        ("untrained", untrained_network(SPEC, 3)),
        ("ground-truth", GroundTruthTeacher(untrained_network(SPEC, 3), epsilon=0.05)),
    ):
        torch.manual_seed(0)  # the KMM adapter's initialisation
        distiller = Distiller(teacher, student, resolved_terms("kmm"))
        losses[name] = distiller(images, masks).terms["kmm"]
    assert torch.equal(losses["untrained"], losses["ground-truth"])


def test_the_teacher_cache_key_names_the_control(engine_cache, tmp_path):
    file = save_checkpoint(tmp_path / "t.safetensors", {"w": torch.ones(2)}, {})
    dataset = SliceDataset(Cache(engine_cache), ["HK"], "train")
    plain = cache_key(file, dataset, ["logits"], "fp32")
    assert "control" not in plain  # keys of runs without a control are unchanged
    untrained = cache_key(file, dataset, ["logits"], "fp32", {"name": "untrained", "seed": 0})
    truth = cache_key(file, dataset, ["logits"], "fp32", {"name": "ground-truth", "seed": 0})
    assert len({json.dumps(k, sort_keys=True) for k in (plain, untrained, truth)}) == 3


def test_a_run_distilled_from_a_control(engine_cache, tmp_path):
    """A teacher run, then students from its two controls: the summary says which, the
    ground-truth control teaches at Dice 1 (its argmax is the mask) through the teacher cache."""
    teacher_cfg = tiny_run_config(
        engine_cache, tmp_path, "teacher", "role=teacher", "seed=3", "data.augment=false"
    )
    api.train(teacher_cfg, progress=False)
    teacher = tmp_path / "teacher"
    summaries = {}
    for control in ("untrained", "ground-truth"):
        cfg = tiny_run_config(
            engine_cache,
            tmp_path,
            f"student-{control}",
            "distill.preset=recommended",
            f"distill.teacher={teacher}",
            f"distill.control={control}",
            "distill.teacher_cache=true",
            "data.augment=geometric",
            "train.epochs=1",
        )
        summaries[control] = api.train(cfg, progress=False)
    assert summaries["untrained"]["control"] == {"name": "untrained", "seed": 3}
    truth = summaries["ground-truth"]
    assert truth["control"]["name"] == "ground-truth" and 0 < truth["control"]["epsilon"] < 0.5
    assert truth["teacher_reliability"]["dice"]["mean"] > 0.95
    assert truth["teacher_cache"]["path"] != summaries["untrained"]["teacher_cache"]["path"]


def test_a_control_without_a_teacher_is_refused(engine_cache, tmp_path):
    from crossdistill.errors import ConfigError

    cfg = tiny_run_config(engine_cache, tmp_path, "s", "distill.control=untrained")
    with pytest.raises(ConfigError, match=r"distill\.control"):
        api.train(cfg, progress=False)
