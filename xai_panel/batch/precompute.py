"""Batch precompute: explain a dataset into the store, resumably, locally or on Dask.

The client (this process) lists the images, hashes them (a file-hash memo in the store
makes a resumed run skip decoding), skips every image whose requested methods are all
stored, and sends the rest to be explained: in this process (default), on a Dask
``LocalCluster`` (``workers=N``) or on an existing cluster (``scheduler=ADDRESS``).
Workers receive image bytes and return encoded rows; the client writes each image in one
transaction, so a kill at any moment loses only images in flight and never leaves a
partial row. A bad image is reported and skipped; the run goes on.

``metrics=("faithfulness", "agreement")`` adds the trust metrics (``xai_panel.metrics.trust``)
with ``metric_settings``, stored beside the explanations. An image is skipped only when its
explanations *and* these metrics are stored; one stored without them is sent with its
stored explanation and only measured (no method runs again).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from ..engine.request import ExplainRequest
from ..store.sqlite import ExplanationStore, StoreError
from .tasks import ImageTask, TaskOutcome, explain_image, run_task, worker_model_id, worker_refusals

__all__ = ["ImageEvent", "Precompute", "PrecomputeReport", "precompute", "resolve_dataset"]

DEFAULT_MODEL = "efficientnet_lite0"
_MEMO_FLUSH = 20  # file hashes remembered per write


@dataclass(frozen=True)
class ImageEvent:
    """What happened to one image: ``status`` is "done", "skipped" (already stored) or "failed"."""

    image_id: str
    status: str
    image_hash: str | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str | None = None
    measured: bool = False  # trust metrics were computed for it (maybe on a stored explanation)
    computed: tuple[str, ...] = ()  # methods that ran for it (none when only measured)


@dataclass
class PrecomputeReport:
    store_path: str
    model_id: str | None
    total: int
    done: int = 0
    skipped: int = 0
    measured: int = 0  # of the done images, those whose trust metrics were computed
    failed: list[ImageEvent] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole run
    startup_seconds: float = 0.0  # of which: starting workers, loading the model, reading the store
    backend: str = "in-process"
    left_out: dict = field(default_factory=dict)  # method -> why: a preset's method the model refuses

    @property
    def images_per_minute(self) -> float:
        """Images computed per minute of work (start-up not counted)."""
        work = self.seconds - self.startup_seconds
        return 60.0 * self.done / work if work > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def format(self) -> str:
        measured = f" ({self.measured} measured)" if self.measured else ""
        lines = [f"precompute: {self.total} images: {self.done} computed{measured}, {self.skipped} already stored, "
                 f"{len(self.failed)} failed in {self.seconds:.1f} s ({self.startup_seconds:.1f} s start-up; "
                 f"{self.images_per_minute:.1f} images/min, {self.backend}) -> {self.store_path}"]
        if self.failed:
            lines.append("failed images (run again to retry them):")
            lines += [f"  {e.image_id}: {e.error}" for e in self.failed]
        if self.left_out:
            lines += [f"left out (the preset's, refused by the model): {m}: {why}" for m, why in self.left_out.items()]
        return "\n".join(lines)


def resolve_dataset(data) -> list:
    """Records from a folder path, ``None``/"demo" (the demo gallery), a Dataset or records."""
    from ..data import open_dataset

    if data is None or (isinstance(data, str) and data == "demo"):
        return list(open_dataset(None))
    if isinstance(data, (str, os.PathLike)):
        return list(open_dataset(data))
    return list(data)


class Precompute:
    """One precompute run; iterate it for :class:`ImageEvent`s (a generator per run).

    Arguments after ``data`` are those of ``xai_panel.explain`` (methods, top_k, seed,
    segmentation, segmentation_params, fill, settings) plus where to run: ``workers``
    (start a Dask LocalCluster of that many single-threaded worker processes),
    ``scheduler`` (address of a running Dask scheduler) or ``client`` (a
    ``distributed.Client`` to reuse); none of them: in this process. ``model_threads`` is
    the model's thread count per Dask worker (default 1, so N workers use N cores).

    ``workers=N`` spawns processes: a script that calls it needs the usual
    ``if __name__ == "__main__":`` guard. Remote workers (``scheduler``) need xai-panel and
    the same model weights installed; they get image bytes from this process, no files.

    ``metrics`` (names of ``xai_panel.metrics.trust.METRICS``) and ``metric_settings``
    (``METRIC_SETTINGS`` keys) add the trust metrics; both are checked here, before any work.

    ``preset`` (``xai_panel.presets``) fills in methods, segmentation and settings under what
    is given, as for ``explain``; ``xai-panel precompute`` passes ``"interactive"`` unless told
    otherwise, so what it stores is what the dashboards look up.
    """

    def __init__(self, data, *, store: ExplanationStore | str | os.PathLike | None = None,
                 model: str = DEFAULT_MODEL, methods: Iterable[str] | None = None,
                 top_k: int = 5, seed: int = 0, segmentation: str | None = None,
                 segmentation_params: Mapping | None = None, fill: str = "mean", settings: Mapping | None = None,
                 preset: str | None = None,
                 workers: int | None = None, scheduler: str | None = None, client=None,
                 model_threads: int | None = None, limit: int | None = None,
                 metrics: Iterable[str] | str | None = None, metric_settings: Mapping | None = None):
        from ..metrics.trust import check_metrics

        self.metrics, self.metric_settings = check_metrics(metrics, metric_settings)  # before any work
        if sum(x is not None for x in (workers, scheduler, client)) > 1:
            raise ValueError("give at most one of workers, scheduler and client")
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        from ..engine.pipeline import apply_preset

        # The preset's methods (not named by the caller) that the model refuses are left out, not failed
        # on every image: the dashboards' preset ticks Grad-CAM, which an ONNX file cannot run.
        self._droppable = preset is not None and methods is None
        methods, segmentation, segmentation_params, settings = apply_preset(
            preset, methods, segmentation, segmentation_params, settings)
        self.preset = preset
        self.request = ExplainRequest.create(None, methods, top_k=top_k, seed=seed, segmentation=segmentation,
                                             segmentation_params=segmentation_params, fill=fill, settings=settings)
        self.records = resolve_dataset(data)[: limit if limit is not None else None]
        self.store = store if isinstance(store, ExplanationStore) else ExplanationStore(store)
        self.model = str(model)
        self.workers, self.scheduler, self.client = workers, scheduler, client
        self.model_threads = model_threads
        self.model_id: str | None = None
        self.report = PrecomputeReport(str(self.store.path), None, len(self.records),
                                       backend=self._backend_name())
        self.on_start: Callable[[int], None] | None = None  # called with the number of images to compute

    def _backend_name(self) -> str:
        if self.workers is not None:
            return f"dask LocalCluster, {self.workers} worker(s)"
        if self.scheduler is not None:
            return f"dask scheduler {self.scheduler}"
        if self.client is not None:
            return "dask client"
        return "in-process"

    # -- scanning (client side) --------------------------------------------------------
    def _scan(self, stored: dict[str, frozenset], read_bytes: bool) -> Iterator:
        """Yields ImageEvent (skipped/failed) or (record, image array or None, ImageTask)."""
        from ..data import ImageError, image_hash, load_image

        memo = self._memo
        known = [r for r in self.records if self._complete(stored, memo.get(str(r.path)))]
        for record in known:  # first, so a progress bar can take them off its total at once
            yield ImageEvent(record.id, "skipped", memo[str(record.path)])
        known_ids = {r.id for r in known}
        fresh: dict[str, str] = {}
        try:
            for record in self.records:
                if record.id in known_ids:
                    continue
                t0 = time.perf_counter()
                h = memo.get(str(record.path))
                try:
                    data = Path(record.path).read_bytes() if read_bytes else None
                    # Workers decode for themselves; the client decodes only to learn the hash.
                    image = None if (read_bytes and h is not None) else load_image(data if read_bytes else record.path)
                except (ImageError, OSError) as exc:
                    yield ImageEvent(record.id, "failed", None, f"{type(exc).__name__}: {exc}",
                                     time.perf_counter() - t0)
                    continue
                if h is None:
                    h = image_hash(image)
                    fresh[str(record.path)] = h
                    if len(fresh) >= _MEMO_FLUSH:
                        self.store.remember_file_hashes(fresh)
                        fresh = {}
                missing = tuple(m for m in self.request.methods if m not in stored.get(h, frozenset()))
                if self._complete(stored, h):
                    yield ImageEvent(record.id, "skipped", h)
                    continue
                previous = None
                if self.metrics and len(missing) < len(self.request.methods):
                    previous = self.store.get(h, self.request)  # measured with what it has, not recomputed
                    if previous is None:  # its rows no longer decode: explain it again
                        missing = self.request.methods
                task = ImageTask(record.id, data or b"", h, missing, previous, self.metrics, self.metric_settings)
                yield record, (None if read_bytes else image), task
        finally:
            if fresh:
                try:  # only a shortcut for the next run: never worth a second lock wait
                    self.store.remember_file_hashes(fresh)
                except StoreError:
                    pass

    def _complete(self, stored: dict[str, frozenset], h: str | None) -> bool:
        """Every requested method of image ``h`` is stored, and so are the requested metrics."""
        if h is None or not set(self.request.methods) <= stored.get(h, frozenset()):
            return False
        return not self.metrics or h in self._measured

    def _count_known_done(self, stored: dict[str, frozenset]) -> int:
        return sum(1 for r in self.records if self._complete(stored, self._memo.get(str(r.path))))

    def _write(self, record, outcome: TaskOutcome) -> ImageEvent:
        encoded = outcome.encoded
        if encoded is not None and (encoded.rows or encoded.measures):  # what ran is kept, even if a method failed
            self.store.write(encoded, record=record)  # store errors are fatal: raise
        ran = dict(measured=bool(encoded is not None and encoded.measures),
                   computed=encoded.methods if encoded is not None else ())
        if outcome.error is not None:
            return ImageEvent(record.id, "failed", outcome.image_hash, outcome.error, outcome.seconds, outcome.worker,
                              **ran)
        return ImageEvent(record.id, "done", outcome.image_hash, None, outcome.seconds, outcome.worker, **ran)

    # -- running -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[ImageEvent]:
        self._t0 = t0 = time.perf_counter()
        try:
            if self.workers is None and self.scheduler is None and self.client is None:
                events = self._run_local()
            else:
                events = self._run_dask()
            for event in events:
                self._account(event)
                self.report.seconds = time.perf_counter() - t0
                yield event
        finally:
            self.report.seconds = time.perf_counter() - t0

    def _account(self, event: ImageEvent) -> None:
        if event.status == "done":
            self.report.done += 1
            self.report.measured += int(event.measured)
        elif event.status == "skipped":
            self.report.skipped += 1
        else:
            self.report.failed.append(event)

    def _leave_out(self, refused: dict[str, str]) -> None:
        """Drop the preset's methods the model refuses (``refused``: method -> why) from the request."""
        if not self._droppable or not refused:
            return
        kept = [m for m in self.request.methods if m not in refused]
        if kept:
            self.request = self.request.with_methods(kept)
            self.report.left_out = dict(refused)

    def _started(self, model_id: str) -> dict[str, frozenset]:
        self.model_id = self.report.model_id = model_id
        self.request = self.request.with_model(model_id)
        stored = self.store.stored_images(self.request)
        self._measured = (self.store.measured_images(self.request, self.metrics, self.metric_settings)
                          if self.metrics else frozenset())
        self._memo = self.store.file_hashes(str(r.path) for r in self.records)
        self.report.startup_seconds = time.perf_counter() - self._t0
        if self.on_start is not None:
            self.on_start(len(self.records) - self._count_known_done(stored))
        return stored

    def _run_local(self) -> Iterator[ImageEvent]:
        from ..models import load_classifier

        classifier = load_classifier(self.model)
        if self._droppable:
            from ..engine.service import _refusals

            self._leave_out(_refusals(self.request.methods, self.request.settings, classifier))
        stored = self._started(classifier.model_id)
        for item in self._scan(stored, read_bytes=False):
            if isinstance(item, ImageEvent):
                yield item
                continue
            record, image, task = item
            t0 = time.perf_counter()
            try:
                encoded = explain_image(image, task.image_hash, self.request, classifier, task.methods,
                                        stored=task.stored, metrics=task.metrics,
                                        metric_settings=task.metric_settings)
                outcome = TaskOutcome(record.id, task.image_hash, encoded, encoded.failure(),
                                      time.perf_counter() - t0, "local")
            except Exception as exc:  # one bad image must not stop the batch
                outcome = TaskOutcome(record.id, task.image_hash, None, f"{type(exc).__name__}: {exc}",
                                      time.perf_counter() - t0, "local")
            yield self._write(record, outcome)

    def _run_dask(self) -> Iterator[ImageEvent]:
        from distributed import Client, LocalCluster, as_completed

        cluster = own_client = None
        client = self.client
        try:
            if client is None:
                if self.workers is not None:
                    cluster = LocalCluster(n_workers=int(self.workers), threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
                    own_client = client = Client(cluster)
                else:
                    own_client = client = Client(self.scheduler, timeout="30s")
            threads = self.model_threads or 1
            model_id = client.submit(worker_model_id, self.model, threads, pure=False).result()
            if self._droppable:
                self._leave_out(client.submit(worker_refusals, self.model, threads, self.request.methods,
                                              dict(self.request.settings), pure=False).result())
            stored = self._started(model_id)
            window = max(2, 2 * sum(client.nthreads().values()))
            waiting: dict = {}
            queue = as_completed()
            scan = self._scan(stored, read_bytes=True)
            exhausted = False
            while True:
                while not exhausted and len(waiting) < window:
                    item = next(scan, None)
                    if item is None:
                        exhausted = True
                    elif isinstance(item, ImageEvent):
                        yield item
                    else:
                        record, _, task = item
                        future = client.submit(run_task, task, self.model, self.request, threads, pure=False)
                        waiting[future.key] = record
                        queue.add(future)
                if not waiting:
                    break
                future = next(queue)
                record = waiting.pop(future.key)
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker died (e.g. out of memory): report, go on
                    outcome = TaskOutcome(record.id, None, None, f"worker failed: {type(exc).__name__}: {exc}", 0.0, None)
                future.release()
                yield self._write(record, outcome)
        finally:
            if own_client is not None:
                own_client.close()
            if cluster is not None:
                cluster.close()


def precompute(data, *, progress: bool | Callable[[ImageEvent], None] = True, **kwargs) -> PrecomputeReport:
    """Run a :class:`Precompute` to the end and return its report.

    ``progress=True`` shows a progress bar on stderr (images done, rate, ETA; already
    stored images are taken off the total); a callable receives each :class:`ImageEvent`.
    """
    job = Precompute(data, **kwargs)
    bar = None
    if progress is True:
        from tqdm import tqdm

        known = 0

        def start(todo: int) -> None:
            nonlocal bar, known
            known = len(job.records) - todo
            bar = tqdm(total=todo, unit="img", desc="precompute", file=sys.stderr, dynamic_ncols=True,
                       smoothing=0.1)

        job.on_start = start
    try:
        for event in job:
            if callable(progress):
                progress(event)
            if bar is not None:
                bar.set_postfix(failed=len(job.report.failed), stored_before=job.report.skipped, refresh=False)
                if event.status != "skipped":
                    bar.update(1)
                elif job.report.skipped > known:
                    bar.total -= 1  # found stored only after hashing: not work to do
                    bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return job.report
