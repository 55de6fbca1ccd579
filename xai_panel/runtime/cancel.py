"""Cancellation: the event a job's work is stopped with, and the exception it stops with.

Work polls its event between steps (``PerturbationEngine.check_cancelled`` between model
batches). A step that cannot poll, a model pass inside ONNX Runtime (a batch of 32 takes
0.17-0.3 s on two cores), is interrupted instead: a ``CancelEvent`` also calls back the
interruptions registered with :func:`interrupting` when it is set, and the ONNX runner's
callback sets its run's ``terminate`` flag, so the pass ends within milliseconds. That is
what a click waits for when it supersedes the previous image's work: its own passes
(Grad-CAM, the top classes) shared the two cores with a batch that was no longer wanted.

Any ``threading.Event`` works as a cancel event; a plain one is only polled.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["CancelEvent", "Cancelled", "interrupting"]

_log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The explanation was cancelled (a newer request superseded it)."""


class CancelEvent(threading.Event):
    """A ``threading.Event`` that, when set, also runs the interruptions registered while it
    was clear (see :func:`interrupting`)."""

    def __init__(self) -> None:
        super().__init__()
        self._interruptions: dict[object, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._lock:
            callbacks = list(self._interruptions.values())
            self._interruptions.clear()
        for callback in callbacks:
            _run(callback)

    @contextmanager
    def _interrupting(self, callback: Callable[[], None]) -> Iterator[None]:
        token = object()
        with self._lock:
            self._interruptions[token] = callback
        if self.is_set():  # set before it was registered: interrupt now (twice at worst, harmless)
            _run(callback)
        try:
            yield
        finally:
            with self._lock:
                self._interruptions.pop(token, None)


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # an interruption that fails leaves the work to its next poll
        _log.exception("interrupting cancelled work failed")


@contextmanager
def interrupting(cancel: threading.Event | None, callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, ``callback()`` is called as soon as ``cancel`` is set (at once if it
    already is), when ``cancel`` is a :class:`CancelEvent`; with a plain event or None the
    block runs as it is and the work relies on polling."""
    if isinstance(cancel, CancelEvent):
        with cancel._interrupting(callback):
            yield
    else:
        yield
