"""The ONNX rewrites for ONNX Runtime: the same outputs (bit-identical where promised),
patterns found where expected."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from crossdistill.deploy.export import LogitsOnly, write_onnx
from crossdistill.deploy.metadata import DeploymentMetadata
from crossdistill.deploy.onnx_rewrite import optimise_for_onnxruntime
from crossdistill.models import create_model


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    return session.run(None, feed)


def _prelu_graph(slope: np.ndarray, channels: int | str | None = None) -> onnx.ModelProto:
    """``PRelu(x, slope)`` on a ``2×3×5×5`` input; ``channels`` a name makes the 3 dynamic."""
    shape = [2, channels or 3, 5, 5]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["s0"], ["s"]), helper.make_node("PRelu", ["x", "s"], ["y"])],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(slope, "s0")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _prelu_input() -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32) * 10
    x[0, 0, 0, :5] = [0.0, -0.0, 1e-30, -1e-30, 1e38]
    x[0, 0, 1, 0] = -3e38
    return x


#: Two rounded products and a rounded sum: within two float32 ulps of x.
TWO_ULPS = 2.0**-22


@pytest.mark.parametrize(
    ("slope", "channels", "ops"),
    [
        ([-0.5, 0.25, 1.0], None, {"Conv", "Relu", "Add"}),
        ([0.1], None, {"Conv", "Relu", "Add"}),  # one slope for every channel
        ([-0.5, 0.25, 1.0], "C", {"Mul", "Max"}),  # channel count unknown
        ([1.0, 1.5, 3.0], None, {"Mul", "Min"}),
        ([-0.5, 0.25, 1.5], None, {"Relu", "Min", "Mul", "Add"}),
    ],
)
def test_prelu_rewrites_keep_the_values(slope, channels, ops) -> None:
    x = _prelu_input()
    slope = np.array(slope, np.float32).reshape(-1, 1, 1)
    model = _prelu_graph(slope, channels)
    (expected,) = _run(model, {"x": x})
    np.testing.assert_array_equal(expected, np.where(x > 0, x, x * slope))
    assert optimise_for_onnxruntime(model) == {"prelu": 1}
    onnx.checker.check_model(model, full_check=True)
    assert {n.op_type for n in model.graph.node} - {"Identity", "Constant"} == ops
    (got,) = _run(model, {"x": x})
    if "Conv" in ops:  # exact where x ≤ 0, within two ulps of x where x > 0
        np.testing.assert_array_equal(got[x <= 0], expected[x <= 0])
        np.testing.assert_allclose(got[x > 0], expected[x > 0], rtol=TWO_ULPS, atol=0)
    else:
        np.testing.assert_array_equal(got, expected)


def test_prelu_with_a_computed_slope_is_left_alone() -> None:
    model = _prelu_graph(np.full((3, 1, 1), 0.25, np.float32))
    model.graph.node[0].op_type = "Relu"  # the slope is now computed, not a constant
    assert optimise_for_onnxruntime(model) == {}
    assert [n.op_type for n in model.graph.node] == ["Relu", "PRelu"]


@pytest.mark.filterwarnings("ignore")  # the legacy exporter's deprecation and folding notes
def test_enet_graph_is_rewritten_and_gives_the_same_logits(tmp_path) -> None:
    torch.manual_seed(0)
    network = create_model("enet", width=0.25).eval()
    with torch.no_grad():  # slopes all ≤ 1 in some layers, not in others
        for index, module in enumerate(
            m for m in network.modules() if isinstance(m, torch.nn.PReLU)
        ):
            module.weight.uniform_(-0.5, 1.5) if index % 2 else module.weight.uniform_(-1, 1)
    meta = DeploymentMetadata(
        model={"name": "enet", "width": 0.25, "in_channels": 1, "num_classes": 2},
        size=64,
        channels=1,
    )
    path = write_onnx(LogitsOnly(network), meta, tmp_path / "enet.onnx")
    rewritten = onnx.load(str(path))
    ops = {n.op_type for n in rewritten.graph.node}
    assert "PRelu" not in ops and "Mod" in ops
    assert sum(n.op_type == "MaxPool" for n in rewritten.graph.node) == 3  # the 1×1 pools gone

    # the same export without the rewrites
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(
        LogitsOnly(network).eval(),
        (torch.randn(2, 1, 64, 64),),
        str(plain),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    x = np.random.default_rng(1).standard_normal((3, 1, 64, 64)).astype(np.float32)
    (expected,) = _run(onnx.load(str(plain)), {"image": x})
    (got,) = _run(rewritten, {"image": x})
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    with torch.no_grad():
        reference = network(torch.from_numpy(x)).logits.numpy()
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5)
