"""The run folder: where each file of a run lives (docs/design.md §7).

Every module that reads or writes a run's files asks :class:`RunFolder` for their paths, so
the layout is spelled here only::

    OUTPUT/NAME/
      config.yaml            the resolved configuration (written first)
      metrics.jsonl          one JSON line per epoch
      checkpoints/last.safetensors, best.safetensors
      evaluation.json        per-site, per-case metrics of the best checkpoint
      summary.json           the run's summary (written last: its presence means "finished")
      curves.png, overlay.png
      tracking.json          where the run is tracked (with ``tracking.backend`` set)
      .lock                  held while a process writes the folder
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdistill.atomic import write_text_atomic


@dataclass(frozen=True)
class RunFolder:
    """The files of the run in ``path``."""

    path: Path

    @classmethod
    def of(cls, config: Any) -> RunFolder:
        """The folder of a run configuration: ``config.output / config.name``."""
        return cls(Path(config.output) / config.name)

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        """The checkpoint written after every epoch (what ``--resume`` continues from)."""
        return self.checkpoints / "last.safetensors"

    @property
    def best(self) -> Path:
        """The checkpoint of the best validation Dice (what evaluation and export use)."""
        return self.checkpoints / "best.safetensors"

    @property
    def evaluation(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def overlay(self) -> Path:
        return self.path / "overlay.png"

    @property
    def tracking(self) -> Path:
        """The tracker's note of its run (URI, run id), so that a resumed run goes on in it."""
        return self.path / "tracking.json"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    def finished(self) -> bool:
        """Whether the run wrote its summary."""
        return self.summary.is_file()

    def read_summary(self) -> dict[str, Any]:
        """The run's summary (``OSError`` or ``ValueError`` when missing or unreadable)."""
        return json.loads(self.summary.read_text(encoding="utf-8"))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The epoch records of a ``metrics.jsonl`` in order; a missing file gives none, and a line
    that is not a JSON object with an ``epoch`` (one cut short by a kill, bytes that are not
    UTF-8) is skipped."""
    try:
        lines = Path(path).read_bytes().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "epoch" in record:
            records.append(record)
    return records


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON (NaN allowed, as Python's json writes it), written
    atomically: a summary's presence marks its run finished, so it is never half there."""
    write_text_atomic(path, json.dumps(payload, indent=1, allow_nan=True))
