"""Drag-and-drop an image of your own; bad files give a clear message, never a broken page."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from ...config import Config
from ...data import ImageError, load_image
from ...runtime.jobs import Job, JobRunner

__all__ = ["ImageUpload", "MAX_UPLOAD_MB", "max_upload_mb"]

MAX_UPLOAD_MB = Config.param.max_upload_mb.default
"""Default upload limit in MB; ``XAI_PANEL_MAX_UPLOAD_MB`` overrides it (see ``xai_panel.config``)."""


def max_upload_mb() -> int:
    """The configured upload limit: ``XAI_PANEL_MAX_UPLOAD_MB`` or the default (a bad value
    is ignored and reported, see ``xai_panel.config``)."""
    from ...config import config

    return config().max_upload_mb


class ImageUpload(pn.viewable.Viewer):
    """A drop zone; ``image`` is the decoded upload (read-only), ``error`` says why one was refused."""

    image = param.Array(default=None, allow_None=True, constant=True, doc="The decoded image (read-only).")
    name = param.String(default="", constant=True, doc="File name of the image (read-only).")
    error = param.String(default="", constant=True, doc="Why the last upload was refused (read-only).")

    def __init__(self, **params):
        super().__init__(**params)
        self.max_mb = max_upload_mb()
        self._runner = JobRunner("upload")
        self._dropper = pn.widgets.FileDropper(
            accepted_filetypes=["image/*"], multiple=False, max_file_size=f"{self.max_mb}MB",
            layout="compact", sizing_mode="stretch_width", height=120)
        self._dropper.param.watch(self._on_upload, "value")
        self._seen: dict[str, object] = {}

    def load(self, data: bytes, filename: str = "upload") -> None:
        """Decode ``data`` in the background (what a drop does; usable from code too)."""
        self._runner.start(self._decode, bytes(data), filename)

    def wait(self, timeout: float | None = 60) -> "ImageUpload":
        self._runner.wait(timeout)
        return self

    def _on_upload(self, event) -> None:
        # FileDropper keeps every file of the session in one dict, mutated in place, and also
        # triggers on deletions: explain the file that arrived in this event, not the first one.
        current = dict(event.new or {})
        fresh = [(name, data) for name, data in current.items() if self._seen.get(name) is not data]
        self._seen = current
        if not fresh:
            return
        filename, data = fresh[-1]
        if isinstance(data, str):  # text files arrive decoded
            data = data.encode()
        self.load(data, filename)

    def _decode(self, job: Job, data: bytes, filename: str) -> None:
        try:
            image = load_image(data, max_bytes=self.max_mb * 1024 * 1024)
        except ImageError as exc:
            message = f"{filename}: {exc}".replace("The image data", "the file")
            self._runner.publish(job, lambda: self._refuse(message))
            return
        self._runner.publish(job, lambda: self._accept(image, filename))

    def _set(self, **values) -> None:
        with param.edit_constant(self):
            self.param.update(**values)

    def _refuse(self, message: str) -> None:
        self._set(error=message)
        if pn.state.notifications is not None:
            pn.state.notifications.error(message, duration=8000)

    def _accept(self, image: np.ndarray, filename: str) -> None:
        self._set(image=image, name=filename, error="")

    def __panel__(self):
        alert = pn.pane.Alert(self.param.error, alert_type="danger", visible=self.param.error.rx().rx.pipe(bool),
                              sizing_mode="stretch_width", css_classes=["xp-upload-error"])
        return pn.Column(
            pn.pane.Markdown("**Your own image** — drop a JPEG, PNG, WebP, GIF, BMP or TIFF (up to "
                             f"{self.max_mb} MB), or click to browse.", margin=(0, 5)),
            self._dropper, alert, sizing_mode="stretch_width")
