"""Config loading: defaults, overrides, protocol presets and clear errors."""

from __future__ import annotations

import pytest

from crossdistill.config import dump_config, load_config, protocol_sites
from crossdistill.errors import ConfigError, InputError


def test_defaults_are_the_paper_training_settings():
    cfg = load_config()
    assert cfg.train.epochs == 100 and cfg.train.batch_size == 16
    assert cfg.train.optimizer.name == "adam"
    s = cfg.train.schedule
    assert (s.base_lr, s.max_lr, s.step_size, s.mode) == (1e-6, 1e-2, 2000, "triangular2")


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: erfnet\ntrain:\n  epochs: 5\n")
    cfg = load_config(path, ["train.epochs=7", "model.width=0.25", "train.sites=[S1, S2]"])
    assert cfg.model.name == "erfnet" and cfg.train.epochs == 7 and cfg.model.width == 0.25
    assert cfg.train.sites == ["S1", "S2"]
    dump_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.epochz=3", "train.epochz"),
        ("train.epochs=three", "train.epochs"),
        ("model.width=-1", "model.width"),
        ("data.channels=2", "data.channels"),
        ("nonsense=1", "nonsense"),
        ("train.optimizer.name=rmsprop", "train.optimizer.name"),
    ],
)
def test_bad_keys_name_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(None, [override])


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match=r"key\.sub=value"):
        load_config(None, ["no-equals-sign"])


def test_protocol_presets():
    sites = ["A", "B", "C"]
    assert protocol_sites("cross-site", "teacher", "B", sites) == (["B"], ["B"])
    assert protocol_sites("cross-site", "student", "B", sites) == (["A", "C"], ["B"])
    assert protocol_sites("leave-one-site-out", "teacher", "B", sites) == (["A", "C"], ["B"])


def test_packaged_recommended_config_is_the_paper_setup_with_the_recommended_preset():
    from crossdistill.distill import preset_terms

    paper, rec = load_config("paper"), load_config("recommended")
    assert rec.distill.preset == "recommended" and paper.distill.preset == "ours"
    assert rec.train == paper.train and rec.model == paper.model
    terms = preset_terms("recommended")
    assert set(terms) == {"kmm", "lm"} and terms["lm"]["gt_gate"] is True
    assert preset_terms("ours")["lm"] == {"weight": 0.2}  # the paper preset stays the paper's
