"""The bounded compute queue: a full queue refuses at once, cancelled work gives its slot back.

Real threads in the real process-wide pool. ``blocked_pool`` occupies every pool thread
so that jobs started afterwards stay queued (the pool is first in, first out) until the
test lets them go.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref

import pytest

from xai_panel.components import ExplainerSettings, ExplanationSession, MemoryCache
from xai_panel.runtime import jobs as controller
from xai_panel.runtime.jobs import ComputeQueue, JobRunner, ServerBusy, executor

from .conftest import wait_until

POOL_THREADS = 4


@pytest.fixture
def blocked_pool():
    """Every pool thread busy until the test calls the returned ``release``."""
    gate = threading.Event()
    started = threading.Semaphore(0)

    def block():
        started.release()
        gate.wait(60)

    for _ in range(POOL_THREADS):
        executor().submit(block)
    for _ in range(POOL_THREADS):  # all threads are held (leftover work from other tests ran first)
        assert started.acquire(timeout=60), "the pool never became free"
    yield gate.set
    gate.set()


def recorder():
    """A job body that notes its name when (if ever) it runs."""
    ran: list[str] = []

    def work(job, name):
        ran.append(name)

    return ran, work


def test_a_full_queue_refuses_a_job_at_once_and_starts_nothing(blocked_pool):
    queue = ComputeQueue(limit=2)
    ran, work = recorder()
    a, b, c = (JobRunner(n, queue=queue) for n in "abc")
    a.start(work, "a")
    b.start(work, "b")
    assert len(queue) == 2 and queue.live == 2

    with pytest.raises(ServerBusy, match="busy.*try again in a moment"):
        c.start(work, "c")
    # refused while a and b still wait behind the blocked pool: a start that waited for a
    # free slot could only have returned after one of them ran (the pool lets go in 60 s)
    assert ran == [] and c.job is None and len(queue) == 2

    blocked_pool()
    a.wait(30)
    b.wait(30)
    assert sorted(ran) == ["a", "b"] and len(queue) == 0
    c.start(work, "c")  # room again
    c.wait(30)
    assert sorted(ran) == ["a", "b", "c"] and len(queue) == 0


def test_a_job_cancelled_while_queued_never_runs_and_frees_its_slot_at_once(blocked_pool):
    queue = ComputeQueue(limit=2)
    ran, work = recorder()
    a, b, c = (JobRunner(n, queue=queue) for n in "abc")
    job_a = a.start(work, "a")
    b.start(work, "b")
    with pytest.raises(ServerBusy):
        c.start(work, "c")

    a.cancel()
    assert len(queue) == 1  # before any pool thread is free
    c.start(work, "c")
    assert len(queue) == 2

    blocked_pool()
    b.wait(30)
    c.wait(30)
    job_a.future.result(timeout=30)  # dequeued and skipped
    assert sorted(ran) == ["b", "c"] and not job_a.ran and job_a.error is None
    assert len(queue) == 0


def test_a_job_cancelled_while_queued_lets_go_of_its_arguments(blocked_pool):
    class Image:  # stands for a decoded image: it must not wait in the pool's queue
        pass

    image = Image()
    alive = weakref.ref(image)
    runner = JobRunner("explain", queue=ComputeQueue(limit=2))
    job = runner.start(lambda job, image: None, image)
    del image
    gc.collect()
    assert alive() is not None  # queued: the job still needs it
    runner.cancel()
    gc.collect()
    assert alive() is None
    blocked_pool()
    job.future.result(timeout=30)
    assert not job.ran


def test_restarting_an_owner_replaces_its_queued_job_without_taking_a_second_slot(blocked_pool):
    queue = ComputeQueue(limit=1)
    ran, work = recorder()
    runner = JobRunner("explain", queue=queue)
    first = runner.start(work, "first")
    second = runner.start(work, "second")  # the first one leaves the queue: no ServerBusy
    assert first.cancelled and len(queue) == 1
    blocked_pool()
    runner.wait(30)
    first.future.result(timeout=30)
    assert ran == ["second"] and not first.ran and second.ran and len(queue) == 0


def test_a_cancelled_running_job_holds_its_slot_until_its_next_batch(blocked_pool):
    blocked_pool()  # this test needs the pool
    queue = ComputeQueue(limit=1)
    running, batch_may_end = threading.Event(), threading.Event()
    stopped_at_batch = []

    def batches(job):
        running.set()
        while True:  # the engine: check the cancel Event between model batches
            batch_may_end.wait(30)
            if job.cancelled:
                stopped_at_batch.append(True)
                return

    owner, other = JobRunner("owner", queue=queue), JobRunner("other", queue=queue)
    job = owner.start(batches)
    assert running.wait(30)
    with pytest.raises(ServerBusy):
        other.start(lambda job: None)

    owner.cancel()
    assert len(queue) == 1 and queue.live == 0  # still computing, but no longer counted as live
    replacement = other.start(lambda job: None)  # a cancelled job does not keep others out
    replacement.future.result(timeout=30)
    assert len(queue) == 1  # the cancelled job's slot is still held: it has not reached a batch end

    batch_may_end.set()
    job.future.result(timeout=30)
    assert stopped_at_batch == [True] and len(queue) == 0


def test_the_limit_comes_from_the_environment(monkeypatch, caplog):
    monkeypatch.setenv(controller.MAX_QUEUE_ENV, "3")
    assert controller._configured_limit() == 3
    monkeypatch.setenv(controller.MAX_QUEUE_ENV, "0")
    assert controller._configured_limit() == controller.DEFAULT_MAX_QUEUE
    monkeypatch.setenv(controller.MAX_QUEUE_ENV, "lots")
    assert controller._configured_limit() == controller.DEFAULT_MAX_QUEUE
    assert controller.MAX_QUEUE_ENV in caplog.text
    with pytest.raises(ValueError):
        ComputeQueue(limit=0)


def test_a_full_queue_refuses_new_explanations_but_cached_images_are_still_served(monkeypatch, photos, classifier):
    queue = ComputeQueue(limit=1)
    monkeypatch.setattr(controller, "_compute_queue", queue)
    settings = ExplainerSettings.from_dict({"methods": ["lime"], "segmentation": "grid", "grid_size": 3,
                                            "lime": {"num_samples": 20}})
    session = ExplanationSession(settings=settings, cache=MemoryCache(), source=photos["chelsea"],
                                 source_name="chelsea.png")
    session.wait(60)
    assert session.status == "done" and not session.from_cache
    gate = threading.Event()
    occupier = JobRunner("occupier", queue=queue, pool=controller.compute_executor)  # holds a compute thread too
    occupier.start(lambda job: gate.wait(30))
    try:
        session.param.update(source=photos["coffee"], source_name="coffee.png")
        session.wait(30)
        assert session.status == "error" and "busy" in session.error and "try again" in session.error
        # The fast lane still answered: the new image and its top classes, no stale explanation.
        assert session.image_name == "coffee.png" and len(session.top) == 5 and session.explanation is None
        assert "try again in a moment" in session._status_text(session.status, session.running, session.requested,
                                                               session.error, session.from_cache, session.timings)
        # An image explained before needs no compute slot: served from the cache while the queue is full.
        session.param.update(source=photos["chelsea"], source_name="chelsea.png")
        session.wait(30)
        assert session.status == "done" and session.from_cache and session.explanation is not None
        assert len(queue) == 1  # only the occupier holds a slot
    finally:
        gate.set()
    occupier.wait(30)
    assert wait_until(lambda: len(queue) == 0, timeout=30)
    session.source = photos["coffee"]  # room again: the next request is explained
    session.wait(60)
    assert session.status == "done" and session.error == "" and len(session.top) == 5 and not session.from_cache


def test_the_compute_lane_has_one_thread_per_two_cores_unless_configured(monkeypatch):
    monkeypatch.delenv(controller.COMPUTE_THREADS_ENV, raising=False)
    assert controller.compute_threads() == max(1, (os.cpu_count() or 2) // 2)
    monkeypatch.setenv(controller.COMPUTE_THREADS_ENV, "3")
    assert controller.compute_threads() == 3
    monkeypatch.setenv(controller.COMPUTE_THREADS_ENV, "zero")  # refused with a warning, not a crash
    assert controller.compute_threads() == max(1, (os.cpu_count() or 2) // 2)


class _Context:  # the session context of a served page
    pass


@pytest.fixture
def unloaded_page(monkeypatch):
    """(runner, job, registered): a runner publishing to a served page that has not loaded yet;
    its flushes land in ``registered`` (the page's load callbacks) until a test runs them."""
    import panel as pn
    from bokeh.document import Document

    context = _Context()
    doc = Document()
    doc._session_context = weakref.ref(context)
    registered = []
    monkeypatch.setattr(pn.state, "onload", lambda callback, threaded=False: registered.append(callback))
    runner = JobRunner("panes")
    job = controller.Job("panes", doc, loop=None)
    runner._job = job
    yield runner, job, registered
    del context


def test_a_flush_that_never_ran_is_scheduled_again(unloaded_page, monkeypatch):
    """Updates wait for one flush per document; if that flush is lost (it rides on the page's
    load callbacks), the next update schedules another instead of waiting behind it for ever."""
    runner, job, registered = unloaded_page
    applied = []
    runner.publish(job, lambda: applied.append(1))
    assert len(registered) == 1
    registered.clear()  # the page's load callbacks never ran it
    runner.publish(job, lambda: applied.append(2))
    assert registered == [] and applied == []  # a flush is on its way: nothing more is scheduled yet
    monkeypatch.setattr(controller, "_FLUSH_RETRY", 0.0)  # ...and now it has waited too long
    runner.publish(job, lambda: applied.append(3))
    assert len(registered) == 1
    registered[0]()
    assert applied == [1, 2, 3]  # nothing was lost, in order


def test_a_failing_update_is_logged_and_the_others_still_apply(unloaded_page, caplog):
    runner, job, registered = unloaded_page
    applied = []
    runner.publish(job, lambda: 1 / 0)
    runner.publish(job, lambda: applied.append("after"))
    registered[0]()  # must not raise: it runs among the page's load callbacks
    assert applied == ["after"] and "applying a panes update failed" in caplog.text


def test_a_stopped_pool_ends_its_threads_after_their_task_and_cancels_the_rest():
    """What ``shutdown`` does at exit to each pool: no thread is left inside a task."""
    pool = controller.DaemonPool(workers=2, name="test-stop")
    release = threading.Event()
    running = pool.submit(release.wait, 10)
    blocked = pool.submit(release.wait, 10)
    queued = pool.submit(lambda: "never")
    assert wait_until(lambda: running.running() and blocked.running())
    threading.Timer(0.2, release.set).start()  # the tasks end (as a cancelled job's next batch)
    assert pool.stop(timeout=5) == []  # every thread ended
    assert running.result(0) is True and blocked.result(0) is True
    assert queued.cancelled()
    assert pool.submit(lambda: 1).cancelled()  # nothing new starts


def test_a_thread_still_in_its_task_at_the_deadline_is_named():
    pool = controller.DaemonPool(workers=1, name="test-stuck")
    release = threading.Event()
    task = pool.submit(release.wait, 30)
    assert wait_until(task.running)
    try:
        assert pool.stop(timeout=0.2) == ["test-stuck-0"]
    finally:
        release.set()


def test_a_page_being_served_holds_background_work_back_until_released_or_expired():
    from xai_panel.runtime.jobs import foreground

    assert foreground.wait_idle(timeout=10)  # the earlier tests' jobs linger for a moment
    release = foreground.hold(30)
    assert foreground.busy and not foreground.wait_idle(timeout=0.05)
    release()
    release()  # twice: no harm
    assert not foreground.busy and foreground.wait_idle(timeout=0.05)
    foreground.hold(0.3)  # never released (the page never loaded): it expires
    assert not foreground.wait_idle(timeout=0.01)
    t0 = time.monotonic()
    assert foreground.wait_idle(timeout=10) and time.monotonic() - t0 < 5
    with foreground:  # an interactive job holds it back for as long as it runs, and while its result is drawn
        assert not foreground.wait_idle(timeout=0.05)
    ended = time.monotonic()
    assert foreground.busy and not foreground.wait_idle(timeout=0.05)
    assert foreground.wait_idle(timeout=10)
    assert foreground.linger * 0.9 <= time.monotonic() - ended < foreground.linger + 2


def test_a_model_being_warmed_is_handed_to_the_next_caller_at_once(tmp_path, monkeypatch):
    """ONNX Runtime's first batches run in the first caller's thread, outside the load lock: a
    click that comes while the warm-up job warms the model gets the model at once (its stored
    explanation needs no batch), and the batches run once."""
    import threading

    from tests.tiny_models import tiny_onnx
    from xai_panel.models.onnx_backend import OnnxRunner
    from xai_panel.runtime.jobs import classifier

    path = str(tiny_onnx(tmp_path / "tiny.onnx"))
    warming, release, batches = threading.Event(), threading.Event(), []
    run = OnnxRunner.__call__

    def spied(self, batch):
        if len(batch) > 1:  # a warm-up batch (the load's check is one image)
            batches.append(len(batch))
            warming.set()
            assert release.wait(30)
        return run(self, batch)

    monkeypatch.setattr(OnnxRunner, "__call__", spied)
    first = {}
    worker = threading.Thread(target=lambda: first.setdefault("model", classifier(path)), daemon=True)
    worker.start()
    assert warming.wait(60), "the first caller did not warm the model"
    t0 = time.monotonic()
    second = classifier(path)  # while the first caller's batch is held
    assert time.monotonic() - t0 < 5 and not second.warmed
    release.set()
    worker.join(60)
    assert first["model"] is second and second.warmed and batches == [second.batch_size] * 2
    assert classifier(path) is second and batches == [second.batch_size] * 2  # warmed once
