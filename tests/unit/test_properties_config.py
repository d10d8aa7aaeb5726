"""Property-based: whatever YAML file or ``--set`` override the config loader is given, it
returns a ``RunConfig`` or raises ``ConfigError`` / ``InputError``, never another exception.

Deterministic: the ``crossdistill`` hypothesis profile of ``conftest.py`` (fixed seed, no database).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from crossdistill.config import RunConfig, load_config
from crossdistill.errors import ConfigError, InputError


def _schema_paths(model=RunConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the config schema (``train.optimizer.lr``, ...)."""
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, RunConfig.__mro__[1]):
            paths += _schema_paths(kind, path + ".")
    return paths


PATHS = _schema_paths()
KEYS = st.sampled_from(sorted({p.split(".")[-1] for p in PATHS})) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["erfnet", "enet", "cpu", "cuda", "auto", "adam", "cyclic", "S4", "ours"])
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)
OVERRIDE = st.builds(
    lambda key, value: f"{key}={value}",
    st.sampled_from(PATHS) | st.text(max_size=12),
    st.text(max_size=12) | SCALARS.map(lambda v: yaml.safe_dump(v).strip().removesuffix("...")),
) | st.text(max_size=20)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _load(path: Path | None, overrides: list[str]) -> None:
    try:
        result = load_config(path, overrides)
    except (ConfigError, InputError) as err:
        assert str(err) and "\n" not in str(err)
        return
    assert isinstance(result, RunConfig)


@given(document=st.dictionaries(st.sampled_from(PATHS) | KEYS, DOCUMENTS, max_size=6))
def test_any_yaml_document(folder, document):
    path = folder / "doc.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    _load(path, [])


@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), DOCUMENTS), min_size=1, max_size=4))
def test_valid_config_with_mutated_fields(folder, changes):
    document = RunConfig().model_dump(mode="json")
    for path, value in changes:
        node = document
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    path = folder / "mutated.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    _load(path, [])


@given(text=st.text(max_size=200))
def test_any_yaml_text(folder, text):
    path = folder / "text.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load(path, [])


@given(data=st.binary(max_size=200))
def test_any_file_bytes(folder, data):
    path = folder / "bytes.yaml"
    path.write_bytes(data)
    _load(path, [])


@given(overrides=st.lists(OVERRIDE, max_size=6))
def test_any_overrides(overrides):
    _load(None, overrides)


def test_known_hostile_documents(folder):
    """Cases found by the properties above, kept as plain regressions."""
    for text in (
        b"\xff\xfe not utf-8",  # not UTF-8
        b"[" * 5000,  # nesting deeper than the YAML parser's recursion
        b"train: {optimizer: {lr: .inf}}",  # a non-finite number
        b"a: &x [1]\nb: *x\n",  # an alias at the top level
        b"!!python/object/apply:os.system ['echo hi']",  # a tag that would run code
    ):
        path = folder / "hostile.yaml"
        path.write_bytes(text)
        with pytest.raises((ConfigError, InputError)):
            load_config(path)
    for override in ("train.optimizer.lr=.nan", "model.width=.inf", "x" + "[" * 5000):
        with pytest.raises(ConfigError):
            load_config(None, [override])
