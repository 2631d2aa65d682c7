"""What every ``rag`` command shares when it prints: exit codes, errors, JSON, a progress bar.

Imports of rich stay inside the functions, so that ``rag --help`` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
# As shells report a process stopped by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def finish(ok: bool) -> typer.Exit:
    """Return the exit of a run that may have partly failed (0 if ``ok``, else 1)."""
    return typer.Exit(EXIT_OK if ok else EXIT_PARTIAL)


def echo_json(data: Any) -> None:
    """Print ``data`` as one line of JSON."""
    typer.echo(json.dumps(data, ensure_ascii=False))


def wants_progress(as_json: bool) -> bool:
    """Whether to draw a progress bar: not for JSON output, and only on a terminal."""
    return not as_json and sys.stderr.isatty()


class ProgressBar:
    """A handle on one bar: set its total, advance it with a description."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def set_total(self, total: int) -> None:
        """Set the number of steps once it is known."""
        self._progress.update(self._task, total=total)

    def add_to_total(self, steps: int) -> None:
        """Grow the total by ``steps`` found along the way (pages to OCR)."""
        total = next((t.total for t in self._progress.tasks if t.id == self._task), None)
        self._progress.update(self._task, total=(total or 0) + steps)

    def advance(self, description: str, steps: int = 1) -> None:
        """Advance by ``steps`` and show ``description`` beside the bar."""
        self._progress.update(self._task, advance=steps, description=description)


@contextmanager
def progress_bar(label: str, total: int | None = None) -> Iterator[ProgressBar]:
    """Draw ``label``, a bar, done/total and elapsed time until the block ends."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
    ) as progress:
        yield ProgressBar(progress, progress.add_task("", total=total))
