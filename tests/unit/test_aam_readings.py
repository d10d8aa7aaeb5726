"""AAM on other grids (issue 18): pooled probabilities, a feature map, majority labels."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from crossdistill.distill import Distiller
from crossdistill.engine.cached_teacher import teacher_taps
from crossdistill.errors import ConfigError
from crossdistill.losses import AffinityLoss, affinity_loss
from crossdistill.losses.label_grid import majority_gate, majority_labels
from crossdistill.models import create_model


def _naive(probs: list, labels: list, margin: float, size: int) -> float:
    """L_s by loops over every pixel and its 8 neighbours: ``probs[c][y][x]`` (already a
    distribution, clipped), ``labels[y][x]``."""
    K, H, W = len(probs), len(probs[0]), len(probs[0][0])
    pos, neg = [], []
    for y, x, dy, dx in itertools.product(range(H), range(W), (-size, 0, size), (-size, 0, size)):
        yj, xj = y + dy, x + dx
        if (dy, dx) == (0, 0) or not (0 <= yj < H and 0 <= xj < W):
            continue
        f_i = [probs[c][y][x] for c in range(K)]
        f_j = [probs[c][yj][xj] for c in range(K)]
        w = sum(f_j[c] * (math.log(f_j[c]) - math.log(f_i[c])) for c in range(K))
        (pos if labels[y][x] == labels[yj][xj] else neg).append(w)
    mean = lambda v: sum(v) / len(v) if v else 0.0  # noqa: E731
    return mean(pos) + mean([max(0.0, margin - w) for w in neg])


def _softmax(values: list[float]) -> list[float]:
    z = [math.exp(v) for v in values]
    return [max(v / sum(z), 1e-4) for v in z]


def test_majority_labels_and_gate_by_hand():
    labels = torch.tensor(
        [[[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 2, 2], [1, 0, 2, 0]]]
    )  # cells: (1,1,1,0) → 1; (0,0,0,0) → 0; (0,1,1,0) tie → 0; (2,2,2,0) → 2
    assert majority_labels(labels, (2, 2), 3).tolist() == [[[1, 0], [0, 2]]]
    gate = torch.tensor([[[1, 1, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 0, 1]]]).bool()
    assert majority_gate(gate, (2, 2)).tolist() == [[[True, False], [True, True]]]
    with pytest.raises(ValueError, match="square cells"):
        majority_labels(labels, (3, 2), 3)


def test_stride_pools_the_logits_and_labels_by_majority():
    torch.manual_seed(0)
    student = 1.5 * torch.randn(1, 2, 4, 4)
    teacher = torch.zeros(1, 2, 4, 4)
    teacher[0, 1, :2, :] = 1.0  # top half: class 1, with one cell of mixed labels below
    teacher[0, 1, 2, 0] = 1.0
    pooled = [
        [
            [
                sum(student[0, c, 2 * y + a, 2 * x + b].item() for a in (0, 1) for b in (0, 1)) / 4
                for x in range(2)
            ]
            for y in range(2)
        ]
        for c in range(2)
    ]
    probs = [[[0.0] * 2 for _ in range(2)] for _ in range(2)]
    for y, x in itertools.product(range(2), range(2)):
        p = _softmax([pooled[0][y][x], pooled[1][y][x]])
        probs[0][y][x], probs[1][y][x] = p
    labels = [[1, 1], [0, 0]]  # the bottom-left cell has one pixel of class 1 in four
    for margin in (3.0, 0.2):
        expected = _naive(probs, labels, margin, 1)
        loss = AffinityLoss(margin=margin, stride=2)
        assert loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    # stride 1 is today's loss exactly
    assert AffinityLoss()(student, teacher).item() == affinity_loss(student, teacher).item()


def test_features_reading_takes_the_channel_softmax_of_the_feature_map():
    torch.manual_seed(1)
    feature = torch.randn(1, 3, 2, 2)  # C = 3 channels on a 2x2 grid (1/4 of 8x8)
    teacher = torch.zeros(1, 2, 8, 8)
    teacher[0, 1, :, 4:] = 1.0  # right half: class 1
    probs = [[[0.0] * 2 for _ in range(2)] for _ in range(3)]
    for y, x in itertools.product(range(2), range(2)):
        p = _softmax([feature[0, c, y, x].item() for c in range(3)])
        for c in range(3):
            probs[c][y][x] = p[c]
    for sizes in ((1,), (1, 2)):
        expected = sum(_naive(probs, [[0, 1], [0, 1]], 3.0, s) for s in sizes) / len(sizes)
        got = AffinityLoss(on="features", sizes=sizes)(feature, teacher).item()
        assert got == pytest.approx(expected, rel=1e-5)


def test_gradcheck_of_the_new_readings_float64():
    torch.manual_seed(2)
    teacher = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    valid = torch.rand(1, 8, 8) > 0.2
    logits = (0.5 * torch.randn(1, 2, 8, 8, dtype=torch.float64)).requires_grad_()
    feature = (0.5 * torch.randn(1, 4, 2, 2, dtype=torch.float64)).requires_grad_()
    pooled = AffinityLoss(stride=4, sizes=(1,))
    features = AffinityLoss(on="features", adaptive=True, sizes=(1, 2))
    assert torch.autograd.gradcheck(lambda s: pooled(s, teacher, valid=valid), (logits,))
    assert torch.autograd.gradcheck(lambda s: features(s.double(), teacher), (feature,))


def test_bad_reading_options():
    with pytest.raises(ValueError, match="on must be"):
        AffinityLoss(on="pixels")
    with pytest.raises(ValueError, match="stride must be"):
        AffinityLoss(stride=3)
    with pytest.raises(ValueError, match="leave it at 1"):
        AffinityLoss(on="features", stride=2)


def test_features_reading_through_the_distiller():
    torch.manual_seed(0)
    student = create_model("enet", 1, 2, 0.25)
    teacher = create_model("enet", 1, 2, 0.25).eval()
    distiller = Distiller(teacher, student, {"aam": {"on": "features", "sizes": [1, 2]}})
    term = distiller.kd_terms["aam"]
    assert (term.wiring.feature, term.wiring.teacher_tap) == ("high", "logits")
    assert teacher_taps(distiller) == ["logits"]  # the teacher cache stores only its logits
    masks = torch.zeros(2, 64, 64, dtype=torch.long)
    out = distiller(torch.randn(2, 1, 64, 64), masks)
    assert torch.isfinite(out.raw["aam"]) and out.raw["aam"] > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on": "features", "feature": "logits"}, "reads a feature map, not the logits"),
        ({"feature": "high"}, "reads the logits, not 'high'"),
        ({"on": "features", "feature": "mid"}, "no feature 'mid'"),
    ],
)
def test_reading_clashes_name_the_key(options, message):
    student = create_model("enet", 1, 2, 0.25)
    teacher = create_model("enet", 1, 2, 0.25)
    with pytest.raises(ConfigError, match=message) as info:
        Distiller(teacher, student, {"aam": options})
    assert "terms.aam.feature" in str(info.value)


def _log_probs(values: torch.Tensor) -> list:
    """``(C, H, W)`` scores → nested lists of clipped softmax probabilities over C."""
    p = torch.softmax(values.double(), 0).clamp(1e-4, 1.0)
    return p.tolist()


def _naive_relational(student: torch.Tensor, teacher: torch.Tensor, size: int) -> float:
    ps, pt = _log_probs(student[0]), _log_probs(teacher[0])
    H, W = student.shape[-2:]
    gaps = []
    for y, x, dy, dx in itertools.product(range(H), range(W), (-size, 0, size), (-size, 0, size)):
        yj, xj = y + dy, x + dx
        if (dy, dx) == (0, 0) or not (0 <= yj < H and 0 <= xj < W):
            continue

        w = [
            sum(
                p[c][yj][xj] * (math.log(p[c][yj][xj]) - math.log(p[c][y][x]))
                for c in range(len(p))
            )
            for p in (ps, pt)
        ]
        gaps.append(abs(w[0] - w[1]))
    return sum(gaps) / len(gaps)


def test_relational_reading_matches_a_pixel_loop():
    from crossdistill.losses.relational_affinity import relational_affinity_loss

    torch.manual_seed(4)
    student, teacher = 2 * torch.randn(1, 3, 4, 5), 2 * torch.randn(1, 5, 4, 5)
    for sizes in ((1,), (1, 2)):
        expected = sum(_naive_relational(student, teacher, s) for s in sizes) / len(sizes)
        got = relational_affinity_loss(student, teacher, sizes).item()
        assert got == pytest.approx(expected, rel=1e-5)
    # the student equal to the teacher: every gap is 0
    assert relational_affinity_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    # the module: features of the teacher on a finer grid are resized to the student's
    module = AffinityLoss(on="features", match="teacher")
    value = module(student, torch.nn.functional.interpolate(teacher, scale_factor=2.0))
    assert torch.isfinite(value)


def test_relational_gradcheck_and_no_teacher_gradient():
    from crossdistill.losses.relational_affinity import relational_affinity_loss

    torch.manual_seed(5)
    student = (0.7 * torch.randn(1, 2, 4, 4, dtype=torch.float64)).requires_grad_()
    teacher = (2.0 * torch.randn(1, 2, 4, 4, dtype=torch.float64)).requires_grad_()
    valid = torch.rand(1, 4, 4) > 0.2
    assert torch.autograd.gradcheck(
        lambda s: relational_affinity_loss(s, teacher, (1, 2), valid=valid), (student,)
    )
    relational_affinity_loss(student, teacher).backward()
    assert teacher.grad is None
    pooled = AffinityLoss(stride=2, match="teacher", adaptive=True, sizes=(1, 2))
    big = (0.5 * torch.randn(1, 2, 8, 8, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda s: pooled(s, teacher.detach().repeat(1, 1, 2, 2)), (big,)
    )


def test_relational_reading_through_the_distiller_reads_the_teacher_where_the_student_is():
    student = create_model("enet", 1, 2, 0.25)
    teacher = create_model("deeplabv3plus", 1, 2, 0.0625).eval()
    distiller = Distiller(teacher, student, {"aam": {"on": "features", "match": "teacher"}})
    term = distiller.kd_terms["aam"]
    assert (term.wiring.feature, term.wiring.teacher_tap) == ("high", "high")
    assert teacher_taps(distiller) == ["logits", "high"]
    out = distiller(torch.randn(2, 1, 64, 64), torch.zeros(2, 64, 64, dtype=torch.long))
    assert torch.isfinite(out.raw["aam"])
    with pytest.raises(ValueError, match="match must be"):
        AffinityLoss(match="nobody")
