"""What a run says on stderr. A run on its own says every note and a line per epoch; inside `quiet()` (a study's
cells) each kind of note is said once per process and epoch lines not at all, since the study names each cell
as it starts and ends, and metrics.jsonl keeps every epoch. Hand-written rather than `logging`: the lines are a
product's messages to its user, not diagnostics a host application routes."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

_quiet = False
_said: set[str] = set()


def say(text: str, kind: str | None = None) -> None:
    """A note (`lowdata: text`); when quiet, only the first note of its `kind` (default: the text itself)."""
    if _quiet:
        if (kind or text) in _said:
            return
        _said.add(kind or text)
    print(f"lowdata: {text}", file=sys.stderr, flush=True)


def epoch(text: str) -> None:
    """An epoch line, kept in logs as on a terminal (written through tqdm, above a progress bar); none when quiet."""
    from tqdm import tqdm

    if not _quiet:
        tqdm.write(text, file=sys.stderr)


def is_quiet() -> bool:
    return _quiet


@contextmanager
def quiet() -> Iterator[None]:
    """Notes once per kind (counted from the outermost block) and no epoch lines or progress bars, for as long as
    the block runs."""
    global _quiet
    if not _quiet:
        _said.clear()
    before, _quiet = _quiet, True
    try:
        yield
    finally:
        _quiet = before
