"""Checkpoints: the full training state in one safetensors file, written atomically.

One file holds every tensor (model weights under ``model/``, optimizer state under
``optimizer/``, the torch RNG state under ``rng/``) and a JSON metadata block (epoch, step,
model spec, optimizer param groups, scheduler state, numpy and Python RNG states, and any
extra fields such as the resolved config). Nothing in it is pickled, so loading a
checkpoint can never execute code. Files are written to a temporary name in the same
folder, flushed and renamed, so a crash never leaves a half-written checkpoint behind
the final name; a write that fails (a full disk) leaves the previous checkpoint as it was
and removes its temporary file. A pickle (``torch.save``'s ``.pt``/``.pth``, whatever its
name) is recognised by its first bytes and refused before anything parses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from crossdistill.atomic import replaced_atomically
from crossdistill.errors import InputError
from crossdistill.faults import fault_point

FORMAT = "crossdistill-checkpoint"
VERSION = 1
TEMP_PATTERN = ".*.tmp-*"  # the temporary name of a write in progress: .NAME.tmp-PID
# First bytes of the files torch.save writes: a zip archive, or a bare pickle (protocol >= 2).
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")


@dataclass
class Checkpoint:
    """What a checkpoint file holds, split back into its parts."""

    model: dict[str, torch.Tensor]
    meta: dict[str, Any]
    optimizer: dict[str, Any] | None = None
    rng: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def capture_rng() -> dict[str, Any]:
    """The torch, numpy and Python RNG states (torch's as a tensor, the rest as JSON)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": _jsonable(random.getstate()),
    }


def restore_rng(rng: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "numpy" in rng:
        kind, keys, *rest = rng["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    if "python" in rng:
        version, internal, gauss = rng["python"]
        random.setstate((version, tuple(internal), gauss))


def save_checkpoint(
    path: str | Path,
    model: dict[str, torch.Tensor],
    meta: dict[str, Any],
    optimizer: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file + ``os.replace``).

    Args:
        model: a ``state_dict`` of tensors.
        meta: JSON-serialisable fields (epoch, step, model spec, config, ...).
        optimizer: an optimizer's ``state_dict()``.
        rng: from :func:`capture_rng`.
        extra: other tensors to keep beside the model (e.g. distillation adapters).

    Raises:
        InputError: the file cannot be written (a full disk, no permission); the file under
            ``path`` is then as it was and no temporary file is left.
    """
    path = Path(path)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.items()}
    tensors.update({f"extra/{k}": v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "meta": _jsonable(meta)}
    if optimizer is not None:
        state_meta = {}
        for index, state in optimizer["state"].items():
            for name, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer/{index}/{name}"] = value.detach().cpu().contiguous()
                else:
                    state_meta.setdefault(str(index), {})[name] = _jsonable(value)
        header["optimizer"] = {
            "param_groups": _jsonable(optimizer["param_groups"]),
            "state_scalars": state_meta,
        }
    if rng is not None:
        if "torch" in rng:
            tensors["rng/torch"] = rng["torch"].clone()
        header["rng"] = {k: v for k, v in rng.items() if k != "torch"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as tmp:
            save_file(tensors, str(tmp), metadata={"crossdistill": json.dumps(header)})
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            fault_point("checkpoint-write")
    except (OSError, SafetensorError) as err:
        reason = _short(err).removeprefix("Error while serializing: ")
        raise InputError(
            path,
            f"cannot write the checkpoint ({reason}); the file under this name, if any, "
            "is unchanged",
        ) from None
    return path


def discard_partial_writes(folder: str | Path) -> list[Path]:
    """Remove the temporary files that writes cut short (a killed process) left in ``folder``.

    Only call it while no other process writes there (under the run lock): a temporary file
    of a live writer would be removed too. Returns the removed files.
    """
    folder = Path(folder)
    removed = sorted(p for p in folder.glob(TEMP_PATTERN) if p.is_file() and not p.is_symlink())
    for stale in removed:
        stale.unlink(missing_ok=True)
    return removed


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no code is ever executed).

    Raises:
        InputError: the file is missing, not a safetensors file, or not a crossdistill
            checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint file does not exist")
    _refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            raw_meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise InputError(path, f"not a readable safetensors checkpoint ({_short(err)})") from None
    try:
        header = json.loads(raw_meta["crossdistill"])
        assert header["format"] == FORMAT
    except (KeyError, ValueError, TypeError, AssertionError):
        raise InputError(path, "not a crossdistill checkpoint (no crossdistill metadata)") from None
    if header.get("version") != VERSION:
        raise InputError(path, f"checkpoint version {header.get('version')} is not {VERSION}")
    model = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    extra = {k[len("extra/") :]: v for k, v in tensors.items() if k.startswith("extra/")}
    optimizer = None
    if "optimizer" in header:
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer/"):
                _, index, name = key.split("/", 2)
                state.setdefault(int(index), {})[name] = value
        for index, scalars in header["optimizer"]["state_scalars"].items():
            state.setdefault(int(index), {}).update(scalars)
        optimizer = {"state": state, "param_groups": header["optimizer"]["param_groups"]}
    rng = dict(header.get("rng", {}))
    if "rng/torch" in tensors:
        rng["torch"] = tensors["rng/torch"].cpu()
    return Checkpoint(model=model, meta=header["meta"], optimizer=optimizer, rng=rng, extra=extra)


def weights_sha256(path: str | Path) -> str:
    """The SHA-256 of a checkpoint's network: the name, dtype, shape and bytes of each
    ``model/`` tensor in name order. The metadata beside them (the config as the release that
    wrote it dumps it, the training state) is left out, so a run trained again to the same
    weights has the same digest.

    Raises:
        InputError: as :func:`load_checkpoint`.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(load_checkpoint(path).model.items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _refuse_pickle(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as err:
        raise InputError(path, f"cannot read: {err.strerror or err}") from None
    # A safetensors file is an 8-byte header length, then the JSON header: "{" at byte 8.
    if head[8:9] != b"{" and head.startswith(PICKLE_MAGIC):
        raise InputError(
            path,
            "is a pickled PyTorch file (torch.save); refused, a pickle can run code when loaded "
            "(crossdistill reads only its own safetensors checkpoints)",
        )


def load_state_dict_strict(
    module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path
) -> None:
    """Load ``state`` into ``module``; any missing, unexpected or mis-shaped key is an
    :class:`InputError` naming the checkpoint and the first offending key."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        what = f"missing key '{missing[0]}'" if missing else f"unexpected key '{extra[0]}'"
        raise InputError(path, f"weights do not fit the network: {what}")
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise InputError(
                path,
                f"weights do not fit the network: '{key}' has shape "
                f"{tuple(state[key].shape)}, expected {tuple(value.shape)}",
            )
    module.load_state_dict(state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if torch.is_tensor(value) and value.numel() == 1:
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in checkpoint metadata")


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."
