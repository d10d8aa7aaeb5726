"""Parameters and FLOPs against the paper's Table 1, the counting helpers, and ONNX export.

Width-1 networks are built on the ``meta`` device: shapes only, so counting the teachers'
FLOPs at 384² takes well under a second.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from crossdistill.errors import CrossDistillError
from crossdistill.models import (
    complexity_rows,
    count_flops,
    count_parameters,
    create_model,
    list_models,
    measure_latency,
)
from crossdistill.paper import TABLE1

NAMES = list_models()


def _meta(name: str, **kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)  # type: ignore[arg-type]


def test_paper_table_covers_the_zoo() -> None:
    assert sorted(TABLE1) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_within_2_percent_of_the_paper(name: str) -> None:
    params_m = count_parameters(_meta(name)) / 1e6
    assert params_m == pytest.approx(TABLE1[name].params_m, rel=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_flops_within_10_percent_of_the_paper(name: str) -> None:
    gflops = count_flops(_meta(name), 384) / 1e9
    assert gflops == pytest.approx(TABLE1[name].gflops, rel=0.10)


@pytest.mark.parametrize("name", NAMES)
def test_flops_scale_with_pixel_count(name: str) -> None:
    model = _meta(name)
    assert count_flops(model, 128) * 9 == pytest.approx(count_flops(model, 384), rel=0.01)


def test_flop_conventions_differ_only_for_transposed_convolutions() -> None:
    for name in ("unetpp", "deeplabv3plus"):
        model = _meta(name)
        assert count_flops(model, 64, convention="exact") == count_flops(model, 64)
    erfnet = _meta("erfnet")
    exact, paper = (count_flops(erfnet, 384, convention=c) for c in ("exact", "paper"))
    assert exact < paper
    assert exact / 1e9 == pytest.approx(14.87, rel=0.01)
    with pytest.raises(CrossDistillError, match="convention"):
        count_flops(erfnet, 64, convention="thop")


def test_count_flops_on_a_real_model_matches_meta_and_keeps_the_mode() -> None:
    model = create_model("espnet", width=0.25, in_channels=3).train()
    flops = count_flops(model, 64)
    assert model.training
    assert flops == count_flops(_meta("espnet", width=0.25, in_channels=3), 64) > 0


def test_measure_latency_returns_positive_milliseconds() -> None:
    model = create_model("enet", width=0.125)
    assert measure_latency(model, 64, batch=2, warmup=0, repeats=2) > 0
    assert model.training


def test_complexity_rows() -> None:
    rows = complexity_rows(size=128, names=["espnet", "UNet++"])
    assert [r["name"] for r in rows] == ["espnet", "unetpp"]
    keys = {"name", "params_m", "gflops", "paper_params_m", "paper_gflops"}
    keys |= {"params_rel_diff", "gflops_rel_diff", "flops_convention"}
    for row in rows:
        assert keys <= set(row) and "latency_ms" not in row
        assert abs(row["params_rel_diff"]) < 0.02 and abs(row["gflops_rel_diff"]) < 0.10
    (row,) = complexity_rows(size=64, latency=True, names=["espnet"], repeats=1)
    assert row["latency_ms"] > 0


@pytest.mark.filterwarnings("ignore")  # the legacy exporter warns about its own deprecation
@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_pytorch(name: str) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_model(name, width=0.125).eval()
    x = torch.randn(1, 1, 64, 64)
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"], output_names=["logits"])
    session = onnxruntime.InferenceSession(buffer.getvalue())
    logits = session.run(["logits"], {"x": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).logits.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
