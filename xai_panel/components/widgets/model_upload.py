"""Your own model in the explorer: a TorchScript or ONNX file, its class names, its normalisation.

The file goes through ``load_classifier``'s checks (a TorchScript archive or an ONNX graph,
never a pickle that could run code; the output checked against the class names on a test
input), in the background, and the model is then known to this session only: it is
registered under a name no other session can guess, offered in the session's model
selector and chosen there (the image and the gallery re-predict with it), and forgotten
with its temporary file when the session ends.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import panel as pn
import param

from ...models import ModelError, load_classifier
from ...models.classifier import MAX_INPUT_SIZE, MIN_INPUT_SIZE, NORMALISATIONS, preprocessing_for
from ...models.registry import is_torchscript
from ...runtime.jobs import Job, JobRunner, register_classifier, unregister_classifier
from .model_selector import ModelSelector

__all__ = ["ModelUpload", "parse_class_names", "MODEL_SUFFIXES"]

MODEL_SUFFIXES = (".pt", ".ts", ".onnx")
MAX_NAMES_BYTES = 5 * 1024 * 1024
MAX_CLASSES = 100_000
NORMALISATION_LABELS = {"ImageNet mean/std": "imagenet", "0.5 / 0.5 (inputs in [-1, 1])": "0.5",
                        "None (inputs in [0, 1])": "none", "Custom": "custom"}
assert set(NORMALISATION_LABELS.values()) == {*NORMALISATIONS, "custom"}


def parse_class_names(data: bytes | str, filename: str = "class names") -> list[str]:
    """Class names from a text file (one per line) or JSON: a list of names, or a mapping of
    index to a name or to ``[wnid, name]`` (Keras' ``imagenet_class_index.json``).

    Raises ``ValueError`` with a message for the user.
    """
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_NAMES_BYTES:
        raise ValueError(f"{filename} is larger than {MAX_NAMES_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{filename} is not UTF-8 text") from None
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{filename} is not valid JSON: {exc}") from None
        if isinstance(obj, dict):
            try:
                items = sorted(((int(k), v) for k, v in obj.items()), key=lambda kv: kv[0])
            except ValueError:
                raise ValueError(f"{filename}: a JSON mapping must have class indices (0, 1, ...) as keys") from None
            if [k for k, _ in items] != list(range(len(items))):
                raise ValueError(f"{filename}: the class indices must be 0 to {len(items) - 1}, each once")
            obj = [v[-1] if isinstance(v, list) and v else v for _, v in items]
        if not isinstance(obj, list) or not all(isinstance(n, str) for n in obj):
            raise ValueError(f"{filename}: JSON must be a list of names or a mapping of index to name")
        names = [n.strip() for n in obj]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{filename} holds no class names")
    if len(names) > MAX_CLASSES:
        raise ValueError(f"{filename} lists {len(names)} classes; at most {MAX_CLASSES} are supported")
    if any(not n for n in names):
        raise ValueError(f"{filename} has an empty class name")
    if any(len(n) > 200 for n in names):
        raise ValueError(f"{filename} has a class name longer than 200 characters")
    return names


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"{text!r} is not three numbers") from None


class ModelUpload(pn.viewable.Viewer):
    """Upload a model file (and its class names); ``use`` loads, checks and selects it.

    Settings are parameters; ``model`` (the registered name), ``status`` and ``error`` are
    results (read-only).
    """

    selector = param.ClassSelector(class_=ModelSelector, doc="The session's model selector the model is chosen in.")
    normalisation = param.Selector(default="imagenet", objects=NORMALISATION_LABELS,
                                   doc="How the model's training normalised its inputs.")
    mean = param.String(default="0.485, 0.456, 0.406", doc="Custom normalisation: the mean per channel (R, G, B).")
    std = param.String(default="0.229, 0.224, 0.225", doc="Custom normalisation: the std per channel (R, G, B).")
    input_size = param.Integer(default=224, bounds=(MIN_INPUT_SIZE, MAX_INPUT_SIZE),
                               doc="The square input the model takes, in pixels.")
    max_mb = param.Integer(default=200, bounds=(1, 4096), doc="The largest model file accepted, in MB.")

    model = param.String(default="", constant=True, doc="The uploaded model's name in the selector (read-only).")
    status = param.String(default="", constant=True, doc="What was loaded (read-only).")
    error = param.String(default="", constant=True, doc="Why the last model was refused (read-only).")
    names_status = param.String(default="", constant=True, doc="The class names read (read-only).")
    busy = param.Boolean(default=False, constant=True, doc="A model is being loaded (read-only).")

    def __init__(self, **params):
        super().__init__(**params)
        self._runner = JobRunner("model-upload")
        self._file: tuple[str, bytes] | None = None
        self._names: tuple[str, bytes | str] | None = None
        self._folder: Path | None = None
        self._registered: list[str] = []
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda _ctx: self.forget())

    # -- the inputs ----------------------------------------------------------------------------
    def set_file(self, filename: str, data: bytes) -> None:
        """The model file (what a drop does)."""
        self._file = (filename, bytes(data) if not isinstance(data, str) else data.encode())
        self._set(error="", status=f"{filename} received ({len(self._file[1]) / 1024:,.0f} KB): choose its "
                                   "settings, then 'Use this model'.")

    def set_names(self, filename: str, data: bytes | str | None) -> None:
        """The class names file (None: the ImageNet classes); read at once, so a bad one is said now."""
        self._names = None
        if data is None:
            self._set(error="", names_status="")
            return
        try:
            names = parse_class_names(data, filename)
        except ValueError as exc:
            self._set(names_status="")
            self._refuse(str(exc))
            return
        self._names = (filename, data)
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        self._set(error="", names_status=f"{filename}: {len(names):,} class names ({shown})")

    def preprocessing(self):
        """The ``Preprocessing`` the settings describe (``ValueError`` with a message if they are bad)."""
        if self.normalisation == "custom":
            mean, std = _numbers(self.mean), _numbers(self.std)
            return preprocessing_for("custom", self.input_size, mean=mean, std=std)
        return preprocessing_for(self.normalisation, self.input_size)

    # -- loading -------------------------------------------------------------------------------
    def use(self) -> None:
        """Load and check the model in the background; on success select it in ``selector``."""
        if self._file is None:
            self._refuse("Choose a model file (TorchScript .pt/.ts or ONNX .onnx) first.")
            return
        try:
            prep = self.preprocessing()
        except ValueError as exc:
            self._refuse(f"The normalisation was refused: {exc}")
            return
        self._set(busy=True, error="", status=f"Loading {self._file[0]}…")
        self._runner.start(self._load, self._file, self._names, prep)

    def wait(self, timeout: float | None = 120) -> "ModelUpload":
        self._runner.wait(timeout)
        return self

    def _load(self, job: Job, file: tuple[str, bytes], names_file, prep) -> None:
        filename, data = file
        try:
            loaded = self._check_and_load(filename, data, names_file, prep)
        except (ModelError, ValueError) as exc:
            message = str(exc)
            self._runner.publish(job, lambda: self._refuse(message))
            return
        except Exception as exc:  # anything else the file does to a loader: a message, the page keeps working
            message = f"{filename} could not be used: {exc}"
            self._runner.publish(job, lambda: self._refuse(message))
            return
        name = register_classifier(loaded, Path(filename).name)
        self._registered.append(name)
        self._runner.publish(job, lambda: self._accept(name, loaded))

    def _check_and_load(self, filename: str, data: bytes, names_file, prep):
        suffix = Path(filename).suffix.lower()
        if suffix not in MODEL_SUFFIXES:
            raise ValueError(f"{filename}: a model must be a TorchScript (.pt, .ts) or ONNX (.onnx) file")
        if len(data) > self.max_mb * 1024 * 1024:
            raise ValueError(f"{filename} is {len(data) / 2**20:.0f} MB; the limit is {self.max_mb} MB")
        if not data:
            raise ValueError(f"{filename} is empty")
        names = parse_class_names(names_file[1], names_file[0]) if names_file is not None else None
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="xai-panel-model-"))
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).stem)[:60] or "model"
        path = self._folder / f"{uuid.uuid4().hex[:8]}" / f"{stem}{suffix}"  # the stem names the model's id
        path.parent.mkdir()
        path.write_bytes(data)
        if suffix != ".onnx" and not is_torchscript(path):
            path.unlink()
            raise ModelError(f"{filename} was refused: it is not a TorchScript archive (torch.jit.save); a pickled "
                             "model or a state dict cannot be uploaded (unpickling could run code)")
        try:
            loaded = load_classifier(path, class_names=names, preprocessing=prep, cache=False)
        except ModelError as exc:
            raise ModelError(f"{filename} was refused: {str(exc).replace(path.name, filename)}") from None
        finally:
            if suffix != ".onnx":  # TorchScript is read into memory; ONNX Runtime keeps reading its file
                path.unlink(missing_ok=True)
        return loaded

    def forget(self) -> None:
        """Drop this session's uploaded models and their files (the session ended)."""
        self._runner.cancel()
        for name in self._registered:
            unregister_classifier(name)
        self._registered.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    # -- results -------------------------------------------------------------------------------
    def _set(self, **values) -> None:
        with param.edit_constant(self):
            self.param.update(**values)

    def _refuse(self, message: str) -> None:
        self._set(error=message, busy=False, status="")
        if pn.state.notifications is not None:
            pn.state.notifications.error(message, duration=8000)

    def _accept(self, name: str, loaded) -> None:
        label = next(k for k, v in NORMALISATION_LABELS.items() if v == self.normalisation)
        self._set(model=name, busy=False, error="",
                  status=f"Using {name}: {loaded.num_classes} classes, {label}, {loaded.input_size} px "
                         f"({loaded.backend}).")
        if self.selector is not None:
            self.selector.options = [*self.selector.options, name]
            self.selector.model = name

    # -- the view ------------------------------------------------------------------------------
    def __panel__(self):
        model_drop = pn.widgets.FileDropper(multiple=False, max_file_size=f"{self.max_mb}MB", layout="compact",
                                            sizing_mode="stretch_width", height=90, css_classes=["xp-model-file"])
        names_drop = pn.widgets.FileDropper(multiple=False, max_file_size=f"{MAX_NAMES_BYTES // 2**20}MB",
                                            layout="compact", sizing_mode="stretch_width", height=90,
                                            css_classes=["xp-names-file"])

        def newest(event):
            files = dict(event.new or {})
            return list(files.items())[-1] if files else None

        def on_model(event):
            item = newest(event)
            if item is not None:
                self.set_file(*item)

        def on_names(event):
            item = newest(event)
            self.set_names(*(item or ("", None)))

        model_drop.param.watch(on_model, "value")
        names_drop.param.watch(on_names, "value")
        custom = self.param.normalisation.rx() == "custom"
        widgets = pn.Param(self, parameters=["normalisation", "input_size"], show_name=False,
                           widgets={"normalisation": {"type": pn.widgets.Select, "name": "Normalisation"},
                                    "input_size": {"type": pn.widgets.IntInput, "name": "Input size (px)"}})
        mean = pn.widgets.TextInput.from_param(self.param.mean, name="Mean (R, G, B)", visible=custom)
        std = pn.widgets.TextInput.from_param(self.param.std, name="Std (R, G, B)", visible=custom)
        button = pn.widgets.Button(name="Use this model", button_type="primary", loading=self.param.busy,
                                   sizing_mode="stretch_width")
        button.on_click(lambda _e: self.use())
        plain = {"linkify": False}  # file names such as rgb.pt are not web addresses
        alert = pn.pane.Alert(self.param.error, alert_type="danger", visible=self.param.error.rx().rx.pipe(bool),
                              sizing_mode="stretch_width", css_classes=["xp-model-error"], renderer_options=plain)
        status = pn.pane.Markdown(self.param.status, css_classes=["xp-model-status"], margin=(0, 10),
                                  renderer_options=plain)
        names_status = pn.pane.Markdown(self.param.names_status, css_classes=["xp-names-status"], margin=(0, 10),
                                        renderer_options=plain)
        return pn.Column(
            pn.pane.Markdown(f"**Model file** — TorchScript (.pt, .ts) or ONNX (.onnx), up to {self.max_mb} MB",
                             margin=(0, 5)),
            model_drop,
            pn.pane.Markdown("**Class names** (optional) — one per line, or JSON; default: ImageNet's 1,000",
                             margin=(0, 5)),
            names_drop, names_status, widgets, mean, std, button, alert, status, sizing_mode="stretch_width")
