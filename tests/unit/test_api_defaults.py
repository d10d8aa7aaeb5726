"""The API and the command line share their defaults and name real configuration keys."""

from __future__ import annotations

import pytest

from conftest import tiny_run_config
from crossdistill import api
from crossdistill.errors import ConfigError


def test_distill_defaults_to_the_papers_preset_like_the_command(engine_cache, tmp_path):
    """``api.distill`` picks ``ours`` when the configuration names no preset, as
    ``crossdistill distill`` does, and names the key that is missing."""
    config = tiny_run_config(engine_cache, tmp_path, "student")
    assert config.distill.preset == "none"
    with pytest.raises(ConfigError, match=r"'distill\.teacher'.*preset 'ours' needs a teacher"):
        api.distill(config, progress=False)
    with pytest.raises(ConfigError, match=r"preset 'kmm' needs a teacher"):
        api.distill(config, "kmm", progress=False)
    assert not (tmp_path / "student").exists()  # a rejected configuration leaves no trace


@pytest.mark.parametrize(
    ("preset", "message"),
    [("saml", "is a training method, not a preset"), ("nonsense", "unknown preset")],
)
def test_a_bad_preset_names_the_key_distill_preset(engine_cache, tmp_path, preset, message):
    config = tiny_run_config(engine_cache, tmp_path, "run", f"distill.preset={preset}")
    with pytest.raises(ConfigError, match=rf"'distill\.preset'.*{message}"):
        api.train(config, progress=False)
