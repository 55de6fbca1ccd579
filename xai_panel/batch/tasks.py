"""What runs on a worker: explain one image, measure it, hand back encoded rows (no database here).

Workers get the image *bytes* from the client and return encoded payloads, so a cluster
needs no shared filesystem; the client alone writes the store. The model is loaded once
per worker process (``worker_classifier``) and its threads limited, so N workers on N
cores do not oversubscribe them. With trust metrics requested, the client also sends
what the store already holds of the image (``ImageTask.stored``): the worker computes only
the missing methods and the missing metrics, never a stored explanation again.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Mapping

from ..engine.request import ExplainRequest
from ..engine.results import Explanation
from ..store.entries import EncodedExplanation, encode_explanation

__all__ = ["ImageTask", "TaskOutcome", "worker_classifier", "worker_model_id", "run_task", "explain_image"]

_models: dict = {}
_models_lock = threading.Lock()


@dataclass(frozen=True)
class ImageTask:
    """One image to explain: its bytes (encoded file) and the hash the client computed."""

    image_id: str
    data: bytes
    image_hash: str
    methods: tuple[str, ...]  # the missing methods of the request (none: only the metrics are missing)
    stored: Explanation | None = None  # what the store holds of this image (sent when metrics are wanted)
    metrics: tuple[str, ...] = ()  # trust metrics to add (``check_metrics`` names)
    metric_settings: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOutcome:
    image_id: str
    image_hash: str
    encoded: EncodedExplanation | None
    error: str | None
    seconds: float
    worker: str


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:  # torch not importable or threads already fixed: the model still runs
        pass


def worker_classifier(model: str, threads: int | None = None):
    """The classifier for ``model``, loaded once per process with ``threads`` model threads."""
    key = (model, threads)
    with _models_lock:
        classifier = _models.get(key)
        if classifier is None:
            if threads:
                _limit_threads(threads)
            from ..models import load_classifier

            classifier = load_classifier(model, threads=threads)
            _models[key] = classifier
        return classifier


def worker_model_id(model: str, threads: int | None = None) -> str:
    """The model id (with the weights' digest) as a worker sees it; loads the model."""
    return worker_classifier(model, threads).model_id


def worker_refusals(model: str, threads: int | None, methods, settings: Mapping) -> dict[str, str]:
    """Why the model refuses each of ``methods`` that it refuses (``Explainer.check``), as a worker sees it."""
    from ..engine.service import _refusals

    return _refusals(methods, settings, worker_classifier(model, threads))


def explain_image(image, image_hash: str, request: ExplainRequest, classifier, methods=None, *,
                  stored: Explanation | None = None, metrics=(), metric_settings: Mapping | None = None,
                  ) -> EncodedExplanation:
    """Explain the decoded ``image`` for ``methods`` of ``request``, add the trust ``metrics``
    the result lacks, and encode the new rows and metrics.

    Through the explanation service the dashboards use: a method that fails is named in
    the result's ``errors`` and the others are encoded (and stored by the client).
    ``stored`` is what the store has of the image: its methods are not computed again
    (``methods=()`` with ``stored`` only measures; the image is then not needed).
    """
    from dataclasses import replace

    from ..engine.service import ExplanationService

    methods = tuple(request.methods if methods is None else methods)
    if methods:
        wanted = request if stored is not None else request.with_methods(methods)
        explanation = ExplanationService().compute(image, classifier, wanted, image_hash=image_hash, write="none",
                                                   stored=stored)
    elif stored is not None:
        explanation = stored
    else:
        raise ValueError("nothing to do: no methods to compute and no stored explanation to measure")
    errors = dict(explanation.errors)
    if metrics:
        from ..metrics.trust import add_metrics

        try:
            explanation = add_metrics(explanation, classifier, metrics, settings=metric_settings)
        except Exception as exc:  # the explanations are still stored; the image is reported
            errors["trust metrics"] = f"{type(exc).__name__}: {exc}"
    encoded = encode_explanation(explanation, image_hash, request, methods)
    return replace(encoded, errors=errors)


def run_task(task: ImageTask, model: str, request: ExplainRequest, threads: int | None = None) -> TaskOutcome:
    """Worker entry point: never raises, so one bad image cannot stop the batch."""
    from ..data import image_hash, load_image

    t0 = time.perf_counter()
    try:
        worker = __import__("distributed").get_worker().address
    except Exception:
        worker = f"pid {os.getpid()}"
    try:
        classifier = worker_classifier(model, threads)
        if classifier.model_id != request.model_id:
            raise RuntimeError(f"this worker's model is {classifier.model_id}, the client expects {request.model_id}: "
                               "workers must have the same model weights")
        image = None
        if task.methods:  # only measuring: the stored explanation holds the view
            image = load_image(task.data)
            if image_hash(image) != task.image_hash:
                raise RuntimeError("the worker decodes this image differently from the client (different Pillow?)")
        encoded = explain_image(image, task.image_hash, request, classifier, task.methods, stored=task.stored,
                                metrics=task.metrics, metric_settings=task.metric_settings)
        return TaskOutcome(task.image_id, task.image_hash, encoded, encoded.failure(), time.perf_counter() - t0, worker)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if not str(exc):
            detail += "\n" + traceback.format_exc(limit=3)
        return TaskOutcome(task.image_id, task.image_hash, None, detail, time.perf_counter() - t0, worker)
