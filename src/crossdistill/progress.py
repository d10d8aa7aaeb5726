"""Progress bars for long work (rich), written to stderr so stdout stays parseable.

A bar that is interrupted by an error is erased, so that the error stays the only line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr_console = Console(stderr=True)


def make_progress(transient: bool = False) -> Progress:
    """A rich progress display on stderr: description, bar, count, elapsed, remaining, status."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=stderr_console,
        transient=transient,
    )


@contextmanager
def progress_bar(
    total: int | None, description: str, enabled: bool = True
) -> Iterator[Callable[..., None]]:
    """Yield ``advance(steps=1, status="")``; the bar is erased if the block raises."""
    if not enabled:
        yield lambda steps=1, status="": None
        return
    bar = make_progress()
    task = bar.add_task(description, total=total, status="")
    bar.start()
    try:
        yield lambda steps=1, status="": bar.update(task, advance=steps, status=status)
    except BaseException:
        bar.live.transient = True
        raise
    finally:
        bar.stop()
