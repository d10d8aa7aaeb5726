"""The project's own error types.

Every mistake a user can make (a missing file, a corrupt volume, an unknown site, a bad
config key) is raised as a :class:`CrossDistillError`. The command line turns it into one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class CrossDistillError(Exception):
    """Base class of every error that is the user's to fix; ``str(err)`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class InputError(CrossDistillError):
    """A file or folder given by the user cannot be used: ``<path>: <reason>``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ConfigError(CrossDistillError):
    """A configuration key is unknown, mistyped or out of range: ``<key>: <reason>``."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"config key '{key}': {reason}")


def compile_failure(key: str, what: str, err: Exception) -> ConfigError:
    """``ConfigError`` at ``key`` for a ``torch.compile`` backend that failed to build
    ``what`` (Dynamo's ``BackendCompilerFailed``; e.g. no C++ compiler, no Triton): the
    compiler's first line and the way out."""
    cause = str(getattr(err, "inner_exception", None) or err).strip().splitlines()
    first = cause[0] if cause else type(err).__name__
    return ConfigError(key, f"torch.compile could not build {what} here ({first}); set it to false")


def option_error(key: str, options: Iterable[str], err: Exception) -> ConfigError:
    """``ConfigError`` for a builder's ``err``, at ``key.<option>`` when the message starts
    with one of ``options`` (builders say "margin must be >= 0, ..."), else at ``key``."""
    bad = next((o for o in sorted(options, key=len, reverse=True) if str(err).startswith(o)), "")
    return ConfigError(f"{key}.{bad}" if bad else key, str(err))
