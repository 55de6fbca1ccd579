"""Background jobs for the components: off the event loop, cancellable, document-safe.

Explanations take seconds, so they run in a process-wide thread pool and never block
another browser session. Each owner (a session, a stability pane...) holds a
``JobRunner``: starting a job cancels the owner's previous one through the
``threading.Event`` the engine checks between model batches, and results are published
on the owner's Bokeh document with ``pn.state.execute`` (under the document lock), only
while the job is still the current one, so a late result of an abandoned image can
never overwrite the new one. Publications that arrive while the event loop is busy are
applied together, so a loaded server never builds up a backlog of stale updates.

Interactive explanations are admitted through a bounded ``ComputeQueue``
(``$XAI_PANEL_MAX_QUEUE``, default 8, jobs waiting or running): when it is full ``start``
raises ``ServerBusy`` at once, and the owner tells its user to try again, instead of the
queue growing without limit behind a busy server. A job cancelled while it waits leaves
the queue at once and its work never runs; a running one leaves when the engine stops at
its next batch.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from concurrent.futures import Future
from typing import Any, Callable

import panel as pn
from panel.io.document import hold
from panel.io.state import set_curdoc
from tornado.ioloop import IOLoop

from ..config import ENV, Config
from .cancel import CancelEvent

__all__ = ["ComputeQueue", "DaemonPool", "Job", "JobRunner", "MAX_QUEUE_ENV", "COMPUTE_THREADS_ENV", "ServerBusy",
           "compute_queue", "executor", "compute_executor", "foreground", "wait_for_foreground_idle", "classifier",
           "shutdown", "stopping", "register_classifier", "unregister_classifier", "unfinished_jobs"]

MAX_QUEUE_ENV = ENV["max_queue"]
_FLUSH_RETRY = 5.0  # seconds after which a pending flush that never ran is scheduled again
COMPUTE_THREADS_ENV = ENV["compute_threads"]
DEFAULT_MAX_QUEUE = Config.param.max_queue.default  # stated once, in the config
_log = logging.getLogger(__name__)


class DaemonPool:
    """A small thread pool whose threads never keep the process alive.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads at exit, so a server asked
    to stop would first finish every explanation still running; these threads are daemons.
    ``stop`` ends them (each after its current task): a daemon thread still inside the
    model's native code when the interpreter finalises takes the process down with
    ``terminate called without an active exception``; ``shutdown`` (at exit) cancels the
    jobs first, so the current tasks end at the engine's next batch.
    """

    def __init__(self, workers: int = 4, name: str = "xai-panel"):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        future: Future = Future()
        if self._stopped:  # the process is stopping: nothing new starts
            future.cancel()
            future.set_running_or_notify_cancel()
            return future
        self._tasks.put((future, fn, args, kwargs))
        return future

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Let every thread finish its current task and end; queued tasks are cancelled.

        Waits up to ``timeout`` seconds in all; returns the names of threads still running.
        """
        self._stopped = True
        for _ in self._threads:
            self._tasks.put(None)
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        return [t.name for t in self._threads if t.is_alive()]

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, fn, args, kwargs = task
            if self._stopped:
                future.cancel()
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)


_executor: DaemonPool | None = None
_executor_lock = threading.Lock()


def executor() -> DaemonPool:
    """The process-wide pool for short work: decoding, top classes, cache lookups, thumbnails."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = DaemonPool(workers=4)
        return _executor


_compute_executor: DaemonPool | None = None


def compute_threads() -> int:
    """``$XAI_PANEL_COMPUTE_THREADS``, default one per two cores (at least one).

    Each explanation already keeps every core busy (the model runs multi-threaded), and the
    Python parts of several explanations at once would take the interpreter lock from the
    event loop that serves every page: more threads than this only make each one slower.
    """
    from ..config import config

    return config().threads


def compute_executor() -> DaemonPool:
    """The process-wide pool explanations run in (``compute_threads()`` threads)."""
    global _compute_executor
    with _executor_lock:
        if _compute_executor is None:
            _compute_executor = DaemonPool(workers=compute_threads(), name="xai-panel-compute")
        return _compute_executor


class ServerBusy(RuntimeError):
    """The compute queue is full: the job was refused, nothing was started."""


class ComputeQueue:
    """Admission to the pool: at most ``limit`` live jobs waiting or running.

    Only jobs that are not cancelled count towards the limit, so a session that moves on
    to another image is not refused because its own abandoned job has not reached the
    engine's next cancellation check yet (those are at most one per pool thread).
    """

    def __init__(self, limit: int = DEFAULT_MAX_QUEUE):
        if int(limit) < 1:
            raise ValueError(f"the queue limit must be >= 1, got {limit}")
        self.limit = int(limit)
        self._jobs: set[Job] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Jobs holding a slot (cancelled ones that are still running included)."""
        with self._lock:
            return len(self._jobs)

    @property
    def live(self) -> int:
        """Jobs holding a slot that are not cancelled (what the limit applies to)."""
        with self._lock:
            return sum(not job.cancelled for job in self._jobs)

    def admit(self, job: "Job") -> None:
        """Give ``job`` a slot or raise ``ServerBusy``."""
        with self._lock:
            live = sum(not j.cancelled for j in self._jobs)
            if live >= self.limit:
                raise ServerBusy(f"The server is busy ({live} explanations are waiting or running); "
                                 "try again in a moment.")
            self._jobs.add(job)

    def release(self, job: "Job") -> None:
        with self._lock:
            self._jobs.discard(job)


def _configured_limit() -> int:
    from ..config import config

    return config().max_queue


_compute_queue: ComputeQueue | None = None


def compute_queue() -> ComputeQueue:
    """The process-wide queue interactive explanations are admitted through."""
    global _compute_queue
    with _executor_lock:
        if _compute_queue is None:
            _compute_queue = ComputeQueue(_configured_limit())
        return _compute_queue


_model_lock = threading.Lock()
_registered: dict[str, Any] = {}  # name -> Classifier: models users uploaded, each known to its own session only


def register_classifier(loaded, label: str) -> str:
    """Make a loaded ``Classifier`` (a user's upload) known to ``classifier()`` under a new
    name that no other session can guess (``"<label> · yours <token>"``); returns the name."""
    import secrets

    name = f"{label} · yours {secrets.token_hex(4)}"
    with _model_lock:
        _registered[name] = loaded
    return name


def unregister_classifier(name: str) -> None:
    """Forget a registered model (its session ended); unknown names are ignored."""
    with _model_lock:
        _registered.pop(name, None)


def classifier(name: str, pause: Callable[[], None] | None = None):
    """``load_classifier(name)``, one load at a time: each model is built once per process.

    Two sessions (or a session and the gallery's predictions) asking for the same model at
    the same moment would otherwise both build it, and the ONNX export is not thread-safe.
    A name given by ``register_classifier`` is that session's uploaded model.

    ONNX Runtime's first batches (``load_classifier``'s ``warm``) run after the load, outside
    that lock, in the first caller's thread: a caller that comes meanwhile gets the model at
    once. In a server the warm-up job is the first caller, and a visitor's first click, which
    needs the model only to prepare the image when its explanation is stored, waited for those
    batches (0.4-1 s on two cores while the page loads). ``pause()`` is called before each of
    those batches when this caller makes them (the warm-up job's waits while a click is served:
    under a page's load they took 2.5 s of both cores).
    """
    from ..models import load_classifier

    with _model_lock:
        if name in _registered:
            return _registered[name]
        loaded = load_classifier(name, warm=False)
        first = loaded.backend == "onnxruntime" and not loaded.warmed and id(loaded) not in _warming
        if first:
            _warming.add(id(loaded))
    if first:
        try:
            loaded.warm_up(pause=pause)
        except Exception:  # e.g. a file with a fixed batch of 1: it fails, and says why, when it is used
            pass
    return loaded


_warming: set[int] = set()  # classifiers whose warm-up batches have been started (ids: they live as long as the process)


stopping = CancelEvent()  # set when the process stops: the cancel event of work that is not a Job (warm-up)


class _Foreground:
    """Counts interactive jobs, and pages being served; background work (the gallery's
    prediction index, the warm-up) yields to them, and for ``linger`` seconds after an
    interactive job ends: its result is still being sent and drawn then (a stored click's
    worker takes about 0.1 s, the event loop and the browser 0.2-0.3 s more; a rehearsal batch
    resumed at once took the cores from them and made a first click 1.5 s)."""

    def __init__(self, linger: float = 0.75):
        self.linger = linger
        self._count = 0
        self._holds: dict[object, float] = {}  # token -> monotonic time it expires
        self._idle = threading.Condition()

    def __enter__(self):
        with self._idle:
            self._count += 1

    def __exit__(self, *exc):
        with self._idle:
            self._count -= 1
            if self.linger > 0:
                self._holds[object()] = time.monotonic() + self.linger
            self._idle.notify_all()

    def hold(self, seconds: float) -> Callable[[], None]:
        """Count as foreground for at most ``seconds`` (a page being built, sent and drawn, until the
        browser says it has loaded); returns the release, which may be called any number of times."""
        token = object()
        with self._idle:
            self._holds[token] = time.monotonic() + seconds

        def release() -> None:
            with self._idle:
                if self._holds.pop(token, None) is not None:
                    self._idle.notify_all()

        return release

    def _held(self) -> float:
        """Seconds until the last live hold expires (0: none); forgets expired ones. Under the lock."""
        now = time.monotonic()
        for token in [t for t, until in self._holds.items() if until <= now]:
            del self._holds[token]
        return max(self._holds.values(), default=now) - now

    @property
    def busy(self) -> bool:
        with self._idle:
            return self._count > 0 or self._held() > 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no interactive job runs and no page holds background work back; False after
        ``timeout`` seconds if that has not happened."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while True:
                held = self._held()
                if self._count == 0 and held <= 0:
                    return True
                waits = [w for w in (held if held > 0 else None, None if end is None else end - time.monotonic())
                         if w is not None]
                if waits and min(waits) <= 0:
                    return False
                self._idle.wait(min(waits) if waits else None)


    def wait_no_job(self, timeout: float | None = None) -> bool:
        """Block until no interactive job runs (pages being built and the moments after a job are
        not waited for); False after ``timeout`` seconds if that has not happened."""
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


foreground = _Foreground()


def wait_for_foreground_idle(*, jobs_only: bool = False, cancel: threading.Event | None = None) -> bool:
    """Block (a background thread) until no interactive job runs and no page is being served (with
    ``jobs_only``, only until no interactive job runs); False, at once, when the process stops or
    ``cancel`` is set while waiting."""
    wait = foreground.wait_no_job if jobs_only else foreground.wait_idle
    while not wait(timeout=0.05):  # a cancelled waiter frees its lane within 50 ms (a click's work may wait for it)
        if stopping.is_set() or (cancel is not None and cancel.is_set()):
            return False
    return not (stopping.is_set() or (cancel is not None and cancel.is_set()))


class Job:
    """One unit of background work; ``cancel`` is the Event handed to the engine."""

    def __init__(self, name: str, doc, loop=None):
        self.name = name
        self.doc = doc
        self.loop = loop
        self.cancel = CancelEvent()  # also interrupts a model pass in flight (see runtime.cancel)
        self.started = time.perf_counter()
        self.future: Future | None = None
        self.error: BaseException | None = None
        self.ran = False  # whether the work was started (a job cancelled while queued never runs)
        self._call: tuple | None = None  # (work, args, kwargs), dropped with the job so queued entries stay small
        self._queue: ComputeQueue | None = None
        self._state = "queued"  # queued -> running -> finished, or queued -> dropped
        self._state_lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def _begin(self) -> tuple | None:
        """In the pool thread: the work to run, or None if the job was cancelled while queued."""
        with self._state_lock:
            if self._state != "queued":
                return None
            if self.cancelled:
                self._drop()
                return None
            self._state = "running"
            self.ran = True
            return self._call

    def _finish(self) -> None:
        with self._state_lock:
            self._state = "finished"
            self._call = None
            self._leave_queue()

    def _drop_if_queued(self) -> None:
        """After ``cancel`` is set: a job still waiting gives its slot back now."""
        with self._state_lock:
            if self._state == "queued":
                self._drop()

    def _drop(self) -> None:
        self._state = "dropped"
        self._call = None  # the image and settings need not wait in the pool's queue
        self._leave_queue()

    def _leave_queue(self) -> None:
        if self._queue is not None:
            self._queue.release(self)
            self._queue = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


_jobs: "weakref.WeakSet[Job]" = weakref.WeakSet()  # every job started and not yet collected, for shutdown()


def unfinished_jobs() -> list["Job"]:
    """Every job queued or running now, of every runner (their ``name`` says whose)."""
    return [job for job in list(_jobs) if job._state in ("queued", "running")]


def shutdown(timeout: float = 5.0) -> list[str]:
    """Stop the background work before the process exits: cancel every job (the engine
    stops at its next model batch), then end the pools' threads (``DaemonPool.stop``).

    Registered with ``atexit``, so a server stopped by SIGTERM (Bokeh stops its loop and
    returns) or Ctrl-C exits with no thread inside the model. Returns the threads still
    running after ``timeout`` seconds (logged).
    """
    stopping.set()
    for job in list(_jobs):
        job.cancel.set()
        job._drop_if_queued()
    with _executor_lock:
        pools = [p for p in (_compute_executor, _executor) if p is not None]
    end = time.monotonic() + timeout
    left = [name for pool in pools for name in pool.stop(max(0.0, end - time.monotonic()))]
    if left:
        _log.warning("xai-panel: %d background threads still running at exit: %s", len(left), ", ".join(left))
    _log.info("xai-panel: background work stopped in %.1f s", timeout - max(0.0, end - time.monotonic()))
    return left


atexit.register(shutdown)


class JobRunner:
    """At most one live job per owner: a new ``start`` cancels the previous job.

    With a ``queue`` (a ``ComputeQueue``), ``start`` raises ``ServerBusy`` when the queue is
    full; the previous job is cancelled either way, since the owner has moved on.
    """

    def __init__(self, name: str = "job", queue: ComputeQueue | None = None, pool: Callable[[], DaemonPool] = executor):
        self.name = name
        self.queue = queue
        self.pool = pool
        self._job: Job | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, list[tuple[Job, Callable[[], None]]]] = {}  # per document: publications to apply
        self._scheduled: dict[int, float] = {}  # per document: when the pending flush was scheduled
        self._doc = pn.state.curdoc
        self._loop = IOLoop.current(instance=False)

    @property
    def job(self) -> Job | None:
        return self._job

    def is_current(self, job: Job) -> bool:
        return job is self._job and not job.cancelled

    def start(self, work: Callable[..., Any], *args, interactive: bool = True, **kwargs) -> Job:
        """Run ``work(job, *args, **kwargs)`` in the pool after cancelling the previous job.

        Raises ``ServerBusy`` (and starts nothing) when the runner's queue is full.
        """
        doc = pn.state.curdoc or self._doc
        job = Job(self.name, doc, IOLoop.current(instance=False) or self._loop)
        job._call = (work, args, kwargs)
        _jobs.add(job)
        with self._lock:
            previous, self._job = self._job, None
        if previous is not None:
            self._stop(previous)
        if self.queue is not None:
            self.queue.admit(job)
            job._queue = self.queue
        with self._lock:
            superseded, self._job = self._job, job
        if superseded is not None:  # another thread started a job meanwhile: the later call wins
            self._stop(superseded)
        job.future = self.pool().submit(self._run, job, interactive)
        return job

    @staticmethod
    def _stop(job: Job) -> None:
        job.cancel.set()
        job._drop_if_queued()

    @staticmethod
    def _run(job: Job, interactive: bool) -> None:
        call = job._begin()
        if call is None:
            return
        work, args, kwargs = call
        try:
            if interactive:
                with foreground:
                    work(job, *args, **kwargs)
            else:
                work(job, *args, **kwargs)
        except BaseException as exc:  # kept on the job; the work reports errors itself
            job.error = exc
        finally:
            job._finish()

    def cancel(self) -> None:
        with self._lock:
            job, self._job = self._job, None
        if job is not None:
            self._stop(job)

    def publish(self, job: Job, callback: Callable[[], None]) -> None:
        """Apply ``callback`` (which updates parameters) on the job's document, if still current.

        On a server, publications wait in the runner and the event loop applies all that
        have arrived in one go, under one ``hold``: a busy loop then falls behind by one
        update per runner, not by every progress update the jobs sent meanwhile (each
        ``hold`` ends in a recomputation of the whole document's model graph).
        """
        if not self.is_current(job):
            return
        doc = job.doc
        if doc is None or getattr(doc, "session_context", None) is None:
            with hold(doc):
                callback()
            return
        now = time.monotonic()
        with self._lock:
            waiting = self._pending.setdefault(id(doc), [])
            waiting.append((job, callback))
            # A flush is on its way: do not queue another, unless it has been waiting for
            # long (a scheduled callback can be lost, e.g. with the page's load, and then
            # every later update of this runner would wait behind it for ever).
            if len(waiting) > 1 and now - self._scheduled.get(id(doc), now) < _FLUSH_RETRY:
                return
            self._scheduled[id(doc)] = now

        def flush():
            with self._lock:
                waiting = self._pending.pop(id(doc), [])
                self._scheduled.pop(id(doc), None)
            todo = [fn for owner, fn in waiting if self.is_current(owner)]
            if not todo:
                return
            # One message for the whole update. Not frozen: a frozen document recomputes its
            # model graph (tens of ms on this page) when it thaws, even when, as for the
            # panes' string and option changes, no model was added or removed.
            with hold(doc):
                for fn in todo:
                    try:
                        fn()
                    except Exception:  # logged, never raised: the others still apply, and an
                        # exception out of a page's load callbacks stops Panel from running
                        # the rest and from marking the page loaded
                        _log.exception("applying a %s update failed", self.name)

        def schedule():
            with set_curdoc(doc):
                if pn.state.loaded:
                    pn.state.execute(flush, schedule=True)
                else:
                    # Changes made between the page's render and the browser's connection
                    # are not sent (e.g. the first page of thumbnails would never show):
                    # apply them once the page has loaded.
                    pn.state.onload(flush)

        if job.loop is not None:
            # Hand over to the event loop first (tornado's add_callback is thread-safe) and
            # schedule the document callback from there: adding it from this thread could
            # race with the loop dispatching the document's held events, and be lost.
            job.loop.add_callback(schedule)
        else:
            schedule()

    def wait(self, timeout: float | None = 60) -> None:
        """Block until the current job has finished (for tests, notebooks and scripts)."""
        job = self._job
        if job is not None and job.future is not None:
            job.future.result(timeout=timeout)
