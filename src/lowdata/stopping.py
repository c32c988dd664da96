"""Stopping on request: Ctrl-C (SIGINT) and a scheduler's SIGTERM (SLURM, Kubernetes and Ray send it before a
kill) end a run at the next step boundary, with a checkpoint, instead of losing the epoch in progress.

Outside a training loop a signal stops the command at once (nothing is lost there); inside one (`graceful()`)
the first signal only sets a flag that the loop reads after each step; a second one stops at once. Exit status
128 + the signal's number (130, 143), as shells and schedulers expect.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal. `detail` says what was kept (set by the loop that checkpointed)."""

    def __init__(self, signum: int, detail: str = "finished epochs are checkpointed; continue with --resume"
                 ) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.detail = signum, detail

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


_state = {"graceful": 0, "requested": None}
_forward: list[Callable[[int], None]] = []  # e.g. a --jobs parent passing SIGTERM on to its workers


def handle(signum: int, frame) -> None:
    for forward in list(_forward):
        forward(signum)
    if _state["graceful"] == 0 or _state["requested"] is not None:
        raise Stopped(signum)
    _state["requested"] = signum


def install() -> None:
    """SIGTERM handled like Ctrl-C for the whole command (the CLI calls this; Python only handles SIGINT)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)


def requested() -> int | None:
    """The signal asking this process to stop, once one came inside `graceful()`; else None."""
    return _state["requested"]


@contextmanager
def graceful() -> Iterator[None]:
    """While inside, a first SIGINT or SIGTERM is only recorded (see `requested`). Outside the main thread (a
    Ray actor, a thread of a notebook) signals cannot be caught, and the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handle) for signum in HANDLED}
    _state["graceful"] += 1
    try:
        yield
    finally:
        _state["graceful"] -= 1
        if _state["graceful"] == 0:
            _state["requested"] = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def forwarding(forward: Callable[[int], None]) -> Iterator[None]:
    """Call `forward(signum)` for every signal handled while inside (before stopping this process)."""
    _forward.append(forward)
    try:
        yield
    finally:
        _forward.remove(forward)
