"""Batch precompute of explanations into the store, in this process or on Dask.

``precompute(data, store=..., methods=..., workers=N)`` from Python, ``xai-panel precompute``
(or ``python -m xai_panel.batch``) from a shell.
"""

from .precompute import ImageEvent, Precompute, PrecomputeReport, precompute, resolve_dataset
from .tasks import ImageTask, TaskOutcome, run_task, worker_classifier, worker_model_id

__all__ = ["ImageEvent", "ImageTask", "Precompute", "PrecomputeReport", "TaskOutcome", "precompute",
           "resolve_dataset", "run_task", "worker_classifier", "worker_model_id"]
