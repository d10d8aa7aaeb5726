"""Every comparison method trains end to end through the same engine, and its loss falls."""

from __future__ import annotations

import json

import pytest

from conftest import tiny_run_config
from crossdistill import api
from crossdistill.engine.checkpoint import load_checkpoint
from crossdistill.errors import ConfigError

EPOCHS = ["train.epochs=2", "train.steps_per_epoch=10"]


@pytest.fixture(scope="module")
def teacher(engine_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    cfg = tiny_run_config(engine_cache, out, "teacher", "role=teacher", "train.epochs=4")
    api.train(cfg, progress=False)
    return out / "teacher"


def _losses(run) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["loss/total"] for x in lines]


EXPECTED_TERMS = {
    "kd": {"kd"},
    "at": {"at_low", "at_high"},
    "emkd": {"pmd", "imd_low", "imd_high", "rad_low", "rad_high"},
    "mskd": {"ffd_low", "ffd_high", "rgd_low", "rgd_high"},
}


@pytest.mark.parametrize("method", sorted(EXPECTED_TERMS))
def test_distillation_baseline_trains(method, engine_cache, teacher, tmp_path):
    cfg = tiny_run_config(
        engine_cache,
        tmp_path,
        method,
        *EPOCHS,
        f"distill.preset={method}",
        f"distill.teacher={teacher}",
        "train.term_grad_every=4",
    )
    summary = api.train(cfg, progress=False)
    assert set(summary["terms"]) == EXPECTED_TERMS[method]
    # the diagnosis of each term's pull on the student: gradient norms in metrics.jsonl
    record = json.loads((tmp_path / method / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["grad/seg"] > 0
    assert all(record[f"grad/{t}"] >= 0 for t in EXPECTED_TERMS[method])
    losses = _losses(tmp_path / method)
    assert len(losses) == 2 and losses[1] < losses[0], losses
    end = summary["loss_terms"]["end"]
    for term in EXPECTED_TERMS[method]:
        assert end[term] >= 0 and f"raw/{term}" in end


@pytest.mark.parametrize("method", ["saml", "drdg"])
def test_domain_generalisation_baseline_trains(method, engine_cache, tmp_path):
    cfg = tiny_run_config(engine_cache, tmp_path, method, *EPOCHS, f"train.method={method}")
    summary = api.train(cfg, progress=False)
    assert summary["method"] == method and "teacher_reliability" not in summary
    assert sorted(summary["train_sites"]) == ["BIDMC", "HK"]
    losses = _losses(tmp_path / method)
    assert len(losses) == 2 and losses[1] < losses[0], losses
    extra = {"saml": "meta_seg", "drdg": "rec"}[method]
    assert extra in summary["loss_terms"]["end"]
    # the auxiliary heads are checkpointed with the student (for --resume), not in the model
    ckpt = load_checkpoint(tmp_path / method / "checkpoints/last.safetensors")
    assert ckpt.extra and not any(k.startswith(("smoothness", "heads")) for k in ckpt.model)


def test_teacherless_methods_refuse_a_teacher(engine_cache, teacher, tmp_path):
    cfg = tiny_run_config(
        engine_cache,
        tmp_path,
        "x",
        "train.method=saml",
        "distill.preset=kd",
        f"distill.teacher={teacher}",
    )
    with pytest.raises(ConfigError, match="without a teacher"):
        api.train(cfg, progress=False)


def test_cli_train_method_errors_write_nothing(engine_cache, tmp_path, run_cli):
    common = ["--set", f"data.cache={engine_cache}", "--set", f"output={tmp_path / 'out'}"]
    common += ["--set", "protocol=cross-site", "--set", "target=S4"]
    code, _, err = run_cli("train", "--method", "mixup", *common)
    assert code == 2 and "unknown method 'mixup'" in err and "Traceback" not in err
    bad_option = ["--set", "train.method_options.lr=1"]
    code, _, err = run_cli("train", "--method", "saml", *bad_option, *common)
    assert code == 2 and "'train.method_options.lr'" in err and "inner_lr" in err
    code, _, err = run_cli("distill", "--method", "drdg", "--teacher", str(tmp_path), *common)
    assert code == 2 and "crossdistill train --method" in err
    assert not (tmp_path / "out").exists()  # no run folder for a rejected configuration
