"""Background jobs for the components: off the event loop, cancellable, document-safe.

Explanations take seconds, so they run in a process-wide thread pool and never block
another browser session. Each owner (a session, a stability pane...) holds a
``JobRunner``: starting a job cancels the owner's previous one through the
``threading.Event`` the engine checks between model batches, and results are published
on the owner's Bokeh document with ``pn.state.execute`` (under the document lock), only
while the job is still the current one, so a late result of an abandoned image can
never overwrite the new one.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

import panel as pn
from panel.io.document import hold
from panel.io.state import set_curdoc
from tornado.ioloop import IOLoop

__all__ = ["DaemonPool", "Job", "JobRunner", "executor", "foreground", "wait_for_foreground_idle", "classifier"]

class DaemonPool:
    """A small thread pool whose threads never keep the process alive.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads at exit, so a server asked
    to stop would first finish every explanation still running; these threads are daemons.
    """

    def __init__(self, workers: int = 4, name: str = "xai-panel"):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            future, fn, args, kwargs = self._tasks.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)


_executor: DaemonPool | None = None
_executor_lock = threading.Lock()


def executor() -> DaemonPool:
    """The process-wide pool every component submits its work to."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = DaemonPool(workers=4)
        return _executor


_model_lock = threading.Lock()


def classifier(name: str):
    """``load_classifier(name)``, one load at a time: each model is built once per process.

    Two sessions (or a session and the gallery's predictions) asking for the same model at
    the same moment would otherwise both build it, and the ONNX export is not thread-safe.
    """
    from ..models import load_classifier

    with _model_lock:
        return load_classifier(name)


class _Foreground:
    """Counts interactive jobs; background work (gallery predictions) yields to them."""

    def __init__(self):
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self):
        with self._idle:
            self._count += 1

    def __exit__(self, *exc):
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    @property
    def busy(self) -> bool:
        return self._count > 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


foreground = _Foreground()


def wait_for_foreground_idle() -> None:
    """Block (a background thread) until no interactive job is running."""
    foreground.wait_idle()


class Job:
    """One unit of background work; ``cancel`` is the Event handed to the engine."""

    def __init__(self, name: str, doc, loop=None):
        self.name = name
        self.doc = doc
        self.loop = loop
        self.cancel = threading.Event()
        self.started = time.perf_counter()
        self.future: Future | None = None
        self.error: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class JobRunner:
    """At most one live job per owner: a new ``start`` cancels the previous job."""

    def __init__(self, name: str = "job"):
        self.name = name
        self._job: Job | None = None
        self._lock = threading.Lock()
        self._doc = pn.state.curdoc
        self._loop = IOLoop.current(instance=False)

    @property
    def job(self) -> Job | None:
        return self._job

    def is_current(self, job: Job) -> bool:
        return job is self._job and not job.cancelled

    def start(self, work: Callable[..., Any], *args, interactive: bool = True, **kwargs) -> Job:
        """Run ``work(job, *args, **kwargs)`` in the pool after cancelling the previous job."""
        doc = pn.state.curdoc or self._doc
        job = Job(self.name, doc, IOLoop.current(instance=False) or self._loop)
        with self._lock:
            previous, self._job = self._job, job
        if previous is not None:
            previous.cancel.set()
        job.future = executor().submit(self._run, job, work, args, kwargs, interactive)
        return job

    @staticmethod
    def _run(job: Job, work, args, kwargs, interactive: bool) -> None:
        try:
            if interactive:
                with foreground:
                    work(job, *args, **kwargs)
            else:
                work(job, *args, **kwargs)
        except BaseException as exc:  # kept on the job; the work reports errors itself
            job.error = exc

    def cancel(self) -> None:
        with self._lock:
            job, self._job = self._job, None
        if job is not None:
            job.cancel.set()

    def publish(self, job: Job, callback: Callable[[], None]) -> None:
        """Apply ``callback`` (which updates parameters) on the job's document, if still current."""
        if not self.is_current(job):
            return

        doc = job.doc

        def apply():
            if self.is_current(job):
                # One model-graph recomputation for the whole update instead of one per
                # changed plot: with a dozen plots on a page that is most of the cost.
                with hold(doc, freeze=True):
                    callback()

        if doc is not None and getattr(doc, "session_context", None) is not None:
            def schedule():
                with set_curdoc(doc):
                    if pn.state.loaded:
                        pn.state.execute(apply, schedule=True)
                    else:
                        # Changes made between the page's render and the browser's connection
                        # are not sent (e.g. the first page of thumbnails would never show):
                        # apply them once the page has loaded.
                        pn.state.onload(apply)

            if job.loop is not None:
                # Hand over to the event loop first (tornado's add_callback is thread-safe) and
                # schedule the document callback from there: adding it from this thread could
                # race with the loop dispatching the document's held events, and be lost.
                job.loop.add_callback(schedule)
            else:
                schedule()
        else:
            apply()

    def wait(self, timeout: float | None = 60) -> None:
        """Block until the current job has finished (for tests, notebooks and scripts)."""
        job = self._job
        if job is not None and job.future is not None:
            job.future.result(timeout=timeout)
