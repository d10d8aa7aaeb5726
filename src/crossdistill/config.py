"""Run configuration: YAML files validated by pydantic, with ``--set a.b=c`` overrides.

A run is one network trained on ``train.sites`` (a teacher, a plain student, or a student
distilled from ``distill.teacher``) and evaluated on ``eval.sites``. The protocols of
docs/design.md §6 are presets that fill those lists from ``protocol``, ``target`` and ``role``:

============================  ===================  ===================  ==============
protocol                      teacher train.sites  student train.sites  eval.sites
============================  ===================  ===================  ==============
``cross-site``                [target]             all other sites      [target]
``leave-one-site-out``        all other sites      all other sites      [target]
``custom`` (default)          as given             as given             as given
============================  ===================  ===================  ==============

Unknown or mistyped keys fail with the key's dotted path (:class:`ConfigError`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from crossdistill.errors import ConfigError, InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _bool_or(*words: str) -> BeforeValidator:
    """Accept true, false or one of ``words`` (one clear message instead of one per union
    member)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or value in words:
            return value
        raise PydanticCustomError(
            "bool_or",
            "expected true, false or {words}, got {value}",
            {"words": " or ".join(f"'{w}'" for w in words), "value": repr(value)},
        )

    return BeforeValidator(check)


class DataConfig(_Strict):
    cache: Path | None = None  # a cache written by ``crossdistill prepare``
    channels: Literal[1, 3] = 1  # 3 = 2.5D input (slices z−1, z, z+1)
    # true: geometric + intensity; geometric: rotation, scale, shift and flip only (data.augment)
    augment: Annotated[bool | Literal["geometric"], _bool_or("geometric")] = True
    num_workers: int = Field(0, ge=0)


class ModelConfig(_Strict):
    name: str = "enet"
    width: float = Field(1.0, gt=0)
    num_classes: int = Field(2, ge=2)


class OptimizerConfig(_Strict):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-2, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class ScheduleConfig(_Strict):
    """CyclicLR stepped per iteration; ``triangular2`` halves the amplitude every cycle."""

    name: Literal["cyclic", "constant"] = "cyclic"
    base_lr: float = Field(1e-6, gt=0)
    max_lr: float = Field(1e-2, gt=0)
    step_size: int = Field(2000, ge=1)
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular2"


class TrainConfig(_Strict):
    sites: list[str] | None = None
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(16, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)  # None = one pass over the slices
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    val_every: int = Field(1, ge=1)
    term_grad_every: int = Field(0, ge=0)  # log each loss term's gradient norm every k steps
    method: str = "supervised"  # supervised, saml or drdg (crossdistill.dg); not with a teacher
    method_options: dict[str, Any] = Field(default_factory=dict)  # the method's own options
    # auto: on CUDA the measured fastest per network (fp32 for ENet, else bf16; fp16 + grad
    # scaler where bf16 is unsupported), fp32 on CPU (engine/precision.py)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: Annotated[bool | Literal["auto"], _bool_or("auto")] = "auto"  # auto: CUDA only
    # torch.compile the student and the teacher: true (= default), reduce-overhead (CUDA graphs)
    compile: Annotated[
        bool | Literal["default", "reduce-overhead", "max-autotune"],
        _bool_or("default", "reduce-overhead", "max-autotune"),
    ] = False


class DistillConfig(_Strict):
    teacher: Path | None = None  # a run folder or a checkpoint file
    preset: str = "none"  # none, ours, or a Table 3 row (lm, aam, kmm, kmm+lm, ...)
    terms: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per-term overrides
    # run the teacher once and reuse its outputs: true (OUTPUT/.teacher-cache) or a folder
    teacher_cache: bool | Path = False
    # a control in place of the trained teacher (distill.controls): untrained or ground-truth
    control: Literal["untrained", "ground-truth"] | None = None
    # ground-truth control's label smoothing; None: matched to the teacher's mean confidence
    control_epsilon: float | None = Field(None, gt=0, lt=0.5)


class EvalConfig(_Strict):
    sites: list[str] | None = None
    split: Literal["val", "test"] = "test"


def _tracking_uri(value: Any) -> Any:
    """A URI with a scheme (``sqlite:///PATH``, ``http(s)://HOST:PORT``, ``postgresql://...``)
    or ``databricks``; one clear message otherwise."""
    if value is None or (
        isinstance(value, str)
        and (value == "databricks" or re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", value))
    ):
        return value
    raise PydanticCustomError(
        "tracking_uri",
        "expected a URI such as sqlite:///runs/mlflow.db or http://host:5000, got {value}",
        {"value": repr(value)},
    )


class TrackingConfig(_Strict):
    """Where the run is also reported (docs/design.md §7, "Tracking"); its own folder is
    written either way. Not part of what a run *is*: grids ignore it when they compare
    configurations (``reproduce.runs.config_digest``)."""

    backend: Literal["none", "mlflow"] = "none"
    uri: Annotated[str | None, BeforeValidator(_tracking_uri)] = None  # None: OUTPUT/mlflow.db
    experiment: str | None = Field(None, min_length=1)  # None: "crossdistill"
    run_name: str | None = Field(None, min_length=1)  # None: the run's name
    tags: dict[str, str | int | float | bool] = Field(default_factory=dict)  # over the run's own


class RunConfig(_Strict):
    name: str = "run"
    seed: int = 0
    output: Path = Path("runs")
    protocol: Literal["custom", "cross-site", "leave-one-site-out"] = "custom"
    target: str | None = None
    role: Literal["teacher", "student"] = "student"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    distill: DistillConfig = DistillConfig()
    eval: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()


def protocol_sites(
    protocol: str, role: str, target: str, all_sites: list[str]
) -> tuple[list[str], list[str]]:
    """``(train_sites, eval_sites)`` of ``role`` under ``protocol`` for target site ``target``."""
    others = [s for s in all_sites if s != target]
    if protocol == "cross-site":
        return ([target] if role == "teacher" else others), [target]
    if protocol == "leave-one-site-out":
        return others, [target]
    raise ConfigError("protocol", f"'{protocol}' is not a protocol preset")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=3"`` → ``(["train", "epochs"], 3)``; the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(text, "an override must look like key.sub=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except (yaml.YAMLError, RecursionError):
        parsed = value
    return key.strip().split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``key.sub=value`` in the nested dict ``raw`` (creating levels as needed)."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(".".join(path), f"'{part}' is not a section")
            node = child
        node[path[-1]] = value
    return raw


def preset_config_path(name: str) -> Path | None:
    """The packaged config called ``name`` (``paper``, ``demo``), or ``None``."""
    candidate = Path(__file__).parent / "configs" / f"{name.removesuffix('.yaml')}.yaml"
    return candidate if candidate.is_file() and "/" not in name else None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from the defaults), apply overrides and validate.

    ``path`` may also name a packaged preset: ``paper`` or ``demo``.

    Raises:
        InputError: the file is missing or not valid YAML.
        ConfigError: an unknown or mistyped key, named by its dotted path.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file() and preset_config_path(str(path)) is not None:
            path = preset_config_path(str(path))
        if not path.is_file():
            raise InputError(path, "config file does not exist")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise InputError(path, f"not valid YAML{where}") from None
        except UnicodeDecodeError as err:
            raise InputError(path, f"not UTF-8 text (byte {err.start})") from None
        except RecursionError:
            raise InputError(path, "not a config: nested too deeply") from None
        if not isinstance(raw, dict):
            raise InputError(path, "a config must be a mapping of sections")
    raw = apply_overrides(raw, overrides or [])
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(root)"
        reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(key, reason) from None


def dump_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (what a run actually used)."""
    Path(path).write_text(
        yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
