"""Cancellation that does not wait for the next poll: a ``CancelEvent`` interrupts the model
pass in flight (ONNX Runtime's ``RunOptions.terminate``), so a click that supersedes the
previous image's work gets the cores back at once instead of after that work's batch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from xai_panel.engine.perturbation import Cancelled, PerturbationEngine
from xai_panel.engine.segmentation import segment
from xai_panel.runtime.cancel import CancelEvent, interrupting
from xai_panel.runtime.jobs import Job, foreground, wait_for_foreground_idle


def test_a_cancel_event_interrupts_what_runs_in_its_blocks_only():
    event, calls = CancelEvent(), []
    with interrupting(event, lambda: calls.append("inside")):
        pass
    event.set()
    assert calls == []  # its block had ended: nothing to interrupt
    with interrupting(event, lambda: calls.append("already set")):
        assert calls == ["already set"]  # set before the block: interrupted at once
    fresh = CancelEvent()
    with interrupting(fresh, lambda: calls.append("while running")):
        fresh.set()
        fresh.set()  # again: each interruption runs once
    assert calls == ["already set", "while running"]
    plain = threading.Event()
    with interrupting(plain, lambda: calls.append("plain")):
        plain.set()  # a plain Event is only polled
    assert calls == ["already set", "while running"]


def test_a_failing_interruption_is_logged_and_the_event_is_still_set(caplog):
    event = CancelEvent()

    def broken():
        raise RuntimeError("no")

    with interrupting(event, broken):
        event.set()
    assert event.is_set() and "interrupting cancelled work failed" in caplog.text


def test_jobs_cancel_with_a_cancel_event():
    assert isinstance(Job("x", None).cancel, CancelEvent)


@pytest.fixture(scope="module")
def one_big_batch(classifier, chelsea):
    view = classifier.prepare(chelsea)
    segments = segment(view, "slic", seed=0, n_segments=40)
    coalitions = np.random.default_rng(0).random((96, segments.n_segments)) < 0.5
    return view, segments, coalitions


def _evaluate(classifier, view, segments, coalitions, cancel, after: float | None):
    engine = PerturbationEngine(view, segments, classifier, batch_size=len(coalitions), cancel=cancel)
    engine.evaluate(coalitions[:1])  # the engine's own first call, outside the clock
    started = threading.Event()
    real = classifier._runner

    def runner(batch, **kwargs):  # the real runner; marks when the pass begins
        started.set()
        return real(batch, **kwargs)

    runner.accepts_cancel = True
    if after is not None:
        threading.Thread(target=lambda: started.wait(30) and time.sleep(after) or cancel.set(), daemon=True).start()
    classifier._runner = runner
    try:
        before, t0 = classifier.forward_passes, time.perf_counter()
        try:
            engine.evaluate(coalitions[1:])
            outcome = "finished"
        except Cancelled:
            outcome = "cancelled"
        return outcome, time.perf_counter() - t0, classifier.forward_passes - before
    finally:
        classifier._runner = real


def test_cancelling_interrupts_the_model_pass_in_flight(classifier, one_big_batch):
    if classifier.backend != "onnxruntime":
        pytest.skip(f"the embedded model runs on {classifier.backend}, whose passes are not interruptible")
    view, segments, coalitions = one_big_batch
    outcome, full, passes = _evaluate(classifier, view, segments, coalitions, CancelEvent(), after=None)
    assert outcome == "finished" and passes == len(coalitions) - 1
    # a plain Event is polled between batches: this single batch runs to its end
    outcome, polled, _ = _evaluate(classifier, view, segments, coalitions, threading.Event(), after=0.05)
    assert outcome == "finished" and polled > 0.5 * full
    # a CancelEvent stops the pass itself: well before the pass would have ended
    outcome, interrupted, passes = _evaluate(classifier, view, segments, coalitions, CancelEvent(), after=0.05)
    assert outcome == "cancelled"
    assert interrupted < 0.5 * full, (interrupted, full)
    assert passes == 0  # an interrupted pass is not counted
    # the session is still usable: the next pass gives the same probabilities as before
    again = PerturbationEngine(view, segments, classifier).evaluate(coalitions[:4])
    np.testing.assert_allclose(again, classifier.forward_normalised(
        PerturbationEngine(view, segments, classifier).render_normalised(coalitions[:4])), atol=1e-5)


def test_a_waiter_for_the_idle_foreground_is_let_go_at_once_when_cancelled():
    release = foreground.hold(30)
    try:
        cancel, result = CancelEvent(), []
        waiter = threading.Thread(target=lambda: result.append(wait_for_foreground_idle(cancel=cancel)))
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive()  # still waiting: a page holds the foreground
        t0 = time.monotonic()
        cancel.set()
        waiter.join(5)
        assert result == [False] and time.monotonic() - t0 < 0.3  # it polled every 0.5 s
    finally:
        release()
