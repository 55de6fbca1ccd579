"""The model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

An explanation that does not change when the model's weights are destroyed explains the
image, not the model. The cascading test, as implemented here:

- the model's **units** are its top-level children, with a container of blocks
  (``ModuleList``/``Sequential``, e.g. EfficientNet's ``_blocks``, a ResNet's ``layer3``)
  split into its blocks; units without parameters are skipped. For the embedded
  EfficientNet-Lite0 they are ``_conv_stem, _bn0, _blocks.0 .. _blocks.15, _conv_head,
  _bn1, _fc`` (21), in the order the model registers them (its forward order);
- **stages** re-initialise the units cumulatively from the top down: by default five
  stages reaching the head (the last unit), then 25 %, 50 %, 75 % and 100 % of the units
  (``stages=n`` spaces ``n`` stages so; a list of unit names sets each stage's deepest
  unit). A stage is named by the deepest unit it re-initialises;
- re-initialisation is each layer's own ``reset_parameters`` (torch's default init;
  BatchNorm back to weight 1, bias 0, running mean 0 and variance 1), parameters no
  ``reset_parameters`` covers (TorchScript, custom layers) are redrawn from a normal with
  their trained mean and std. Unit i is drawn from the seed ``(seed, i)``, so a unit gets
  the same weights whatever stages are asked for. It happens on a deep copy: the user's
  model is never touched;
- at each stage the same view, the same superpixels and the same coalition pool (seeded
  by ``seed``) are explained for the **trained model's top class** with the methods'
  reduced budget (each method's ``Explainer.reduced``, over which ``settings`` go), and compared with
  the trained model's explanation: Spearman of the per-superpixel scores (a randomised
  explanation with constant scores has no ranking left: 0), and the IoU of the top-
  ``k_top_segments`` sets;
- a method **passes** when the absolute Spearman at the last stage is below
  ``threshold`` (0.5 by default; absolute as in the paper: a ranking turned upside down
  is still the image's structure, not the model's).

The randomised copies run on ONNX Runtime from one graph of the model with its weights as
inputs (traced once per model and process, checked against torch once; each stage hands it
the copy's tensors), or in torch (``runtime="torch"``, or when the export fails: a warning).
Measured by ``benchmarks/bench_sanity.py`` on 2 cores at load ~10 (a randomised Lite0 copy,
batch 32): torch eager 2.8 passes/s; ONNX Runtime on a fresh export of the copy 33/s after
7.8 s of export, paid at every stage; the weights-as-inputs graph 15.5/s (ONNX Runtime
cannot fold BatchNorm into weights that are inputs) after 6.3 s, paid once. At the default
200 passes a stage that is 13 s a stage against 14 s; by these figures an export per stage
pays from about 225 passes a stage on, and the one graph spares the next image any export.

Pure core: no Panel.
"""

from __future__ import annotations

import copy
import io
import math
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..engine.perturbation import Cancelled, PerturbationEngine
from ..engine.results import Segmentation
from ..engine.segmentation import segment
from ..methods.base import (
    Explainer,
    check_methods,
    draw_shared_pool,
    make_explainer,
    method_class,
    reduced_settings,
    run_order,
    scoring_methods,
)
from ..models.classifier import Classifier, ClassScore, top_k_of
from .stability import jaccard, spearman

__all__ = ["SanityCheck", "sanity_check", "model_units", "plan_stages", "SANITY_THRESHOLD",
           "DEFAULT_STAGES", "RUNTIMES"]

SANITY_THRESHOLD = 0.5
"""A method passes when |Spearman| at the last stage is below this."""
DEFAULT_STAGES = 5
"""Stages by default: the head, then 25 %, 50 %, 75 % and 100 % of the units."""
RUNTIMES = ("auto", "onnxruntime", "torch")
_VERIFY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SanityCheck:
    """The cascading randomisation test of one image: per method, similarity to the trained explanation."""

    image: np.ndarray  # (H, W, 3) uint8: the view every stage explained
    model_id: str
    label: ClassScore  # the trained model's top class: the class explained at every stage
    segmentation: Segmentation  # one segmentation for all stages
    methods: tuple[str, ...]
    stages: tuple[str, ...]  # per stage, the deepest unit it re-initialised
    randomised: tuple[tuple[str, ...], ...]  # per stage, every unit re-initialised (cumulative, top first)
    units: tuple[str, ...]  # the model's units, input side first
    similarity: Mapping[str, tuple[float, ...]]  # method -> Spearman per stage
    top_overlap: Mapping[str, tuple[float, ...]]  # method -> IoU of the top-k superpixels per stage
    scores: Mapping[str, np.ndarray]  # method -> (1 + stages, M): the trained scores, then each stage's
    passed: Mapping[str, bool]  # method -> |similarity at the last stage| < threshold
    threshold: float
    label_probability: tuple[float, ...]  # the class's probability: trained, then each stage
    stage_top: tuple[ClassScore, ...]  # each randomised model's own top class
    k_top_segments: int
    seed: int
    runtime: str  # what the randomised copies ran on
    settings: Mapping[str, object] = field(default_factory=dict)
    forward_passes: int = 0
    seconds: float = 0.0

    def verdict(self, method: str) -> str:
        """One sentence on ``method``: passed or failed, and why."""
        last = self.similarity[method][-1]
        if math.isnan(last):
            return f"{method}: undetermined (its trained explanation has constant scores)"
        word = "passes" if self.passed[method] else "FAILS"
        why = ("its explanation changes when the model is destroyed" if self.passed[method] else
               "its explanation barely changes when the model is destroyed: it shows the image, not the model")
        return (f"{method} {word}: Spearman {last:+.2f} with the trained explanation after re-initialising "
                f"{len(self.randomised[-1])} of {len(self.units)} units (threshold |ρ| < {self.threshold:g}); {why}")


# -- the model's units and the stages --------------------------------------------------------


def _has_parameters(module) -> bool:
    return any(True for _ in module.parameters())


def model_units(module) -> list[tuple[str, object]]:
    """``(name, module)`` of the model's units, input side first (see the module's docstring)."""
    import torch

    units = []
    for name, child in module.named_children():
        blocks = list(child.named_children()) if isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)) else []
        if sum(_has_parameters(b) for _, b in blocks) >= 2:
            units += [(f"{name}.{n}", b) for n, b in blocks if _has_parameters(b)]
        elif _has_parameters(child):
            units.append((name, child))
    if not units and _has_parameters(module):
        units.append(("(model)", module))
    return units


def plan_stages(units: Sequence[str], stages: int | Sequence[str] | None = None) -> list[int]:
    """How many units (from the top) each stage re-initialises, strictly increasing."""
    n_units = len(units)
    if n_units == 0:
        raise ValueError("the model has no parameters to re-initialise")
    if stages is None:
        stages = DEFAULT_STAGES
    if isinstance(stages, str):
        stages = (stages,)
    if isinstance(stages, (int, np.integer)) and not isinstance(stages, bool):
        if stages < 1:
            raise ValueError(f"the sanity check needs at least one stage, got stages={stages}")
        n = int(stages)
        counts = [1] + [math.ceil(n_units * k / (n - 1)) for k in range(1, n)] if n > 1 else [n_units]
        return sorted(set(counts))
    names = list(stages)
    if not names:
        raise ValueError("the sanity check needs at least one stage (stages is empty)")
    counts = []
    for name in names:
        if name not in units:
            raise ValueError(f"no unit {name!r} in this model; its units (input side first) are {', '.join(units)}")
        counts.append(n_units - list(units).index(name))
    if any(b <= a for a, b in zip(counts, counts[1:])):
        raise ValueError(f"stages must go from the top of the model down, each deeper than the last: {names}")
    return counts


def _unit_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _reinitialise(unit, seed: int) -> None:
    """Re-initialise ``unit`` in place: each layer's ``reset_parameters``, else a redraw."""
    import torch

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        covered = set()
        for layer in unit.modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset) and not isinstance(layer, torch.jit.ScriptModule):
                reset()
                if hasattr(layer, "reset_running_stats"):
                    layer.reset_running_stats()
                covered.update(id(p) for p in layer.parameters(recurse=False))
        for p in unit.parameters():
            if id(p) not in covered:
                std = float(p.std()) if p.numel() > 1 else 1.0
                p.copy_(torch.randn_like(p) * (std if math.isfinite(std) and std > 0 else 1.0) + float(p.mean()))


class _WeightFedGraph:
    """The model's ONNX graph with its weights as inputs: exported once, run with any stage's weights.

    Exporting a copy per stage cost 2-5 s each here (torch traces the model every time);
    this graph is traced once per model and process, checked against torch once, and each
    stage only hands it the copy's tensors.
    """

    def __init__(self, module, size: int, probe: np.ndarray):
        import onnxruntime as ort
        import torch

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), torch.zeros(2, 3, size, size), buffer, dynamo=False, export_params=False,
                              do_constant_folding=False, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(torch.get_num_threads(), 8)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buffer.getvalue(), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.weights = [i.name for i in self.session.get_inputs()[1:]]
        run = self.runner(module)
        with torch.inference_mode():
            expected = module(torch.from_numpy(probe)).float().numpy()
        diff = float(np.max(np.abs(run(probe) - expected)))
        if not np.isfinite(diff) or diff > _VERIFY_TOLERANCE * max(1.0, float(np.abs(expected).max())):
            raise RuntimeError(f"ONNX outputs differ from torch by {diff:.3g}")

    def runner(self, module) -> Callable[[np.ndarray], np.ndarray]:
        """A runner with ``module``'s current weights (a snapshot: later changes do not reach it)."""
        state = module.state_dict()
        missing = [n for n in self.weights if n not in state]
        if missing:
            raise RuntimeError(f"graph inputs {missing[:3]} are not in the model's state dict")
        feed = {n: state[n].detach().cpu().numpy().copy() for n in self.weights}
        session, name = self.session, self.input

        def run(batch: np.ndarray) -> np.ndarray:
            return session.run(None, {name: batch.astype(np.float32, copy=False), **feed})[0]

        return run


_graphs: OrderedDict[tuple, _WeightFedGraph] = OrderedDict()
_graphs_lock = threading.Lock()


def _graph(model_id: str, module, size: int, probe: np.ndarray) -> _WeightFedGraph:
    key = (model_id, size)
    with _graphs_lock:
        if key in _graphs:
            _graphs.move_to_end(key)
            return _graphs[key]
    graph = _WeightFedGraph(module, size, probe)
    with _graphs_lock:
        _graphs[key] = graph
        while len(_graphs) > 4:
            _graphs.popitem(last=False)
    return graph


class _CancelCallable:
    """A ``cancel`` callable seen as an Event (the engine asks ``is_set``)."""

    def __init__(self, fn: Callable[[], bool]):
        self._fn = fn

    def is_set(self) -> bool:
        return bool(self._fn())


# -- the check -----------------------------------------------------------------------------


def _check_methods(methods) -> tuple[str, ...]:
    from ..methods.base import registry

    names = check_methods(methods)
    if not names:
        raise ValueError("the sanity check needs at least one method")
    for name in names:
        if not getattr(method_class(name).result_type, "ranked", True):
            ranked = [m for m, cls in registry().items() if getattr(cls.result_type, "ranked", True)]
            raise ValueError(f"{name}'s results are a set of superpixels, not per-superpixel scores: the sanity check "
                             f"compares rankings (methods with scores: {', '.join(ranked)})")
    return run_order(names)


def sanity_check(
    image: np.ndarray,
    classifier: Classifier | None = None,
    methods: Iterable[str] | None = None,
    *,
    stages: int | Sequence[str] | None = None,
    label: int | None = None,
    settings: Mapping[str, Mapping | Explainer] | None = None,
    seed: int = 0,
    threshold: float = SANITY_THRESHOLD,
    k_top_segments: int = 5,
    segmentation: str = "quickshift",
    segmentation_params: Mapping[str, object] | None = None,
    fill: str = "mean",
    runtime: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> SanityCheck:
    """Explain ``image`` with the trained model, then with copies of it re-initialised from the
    top down in ``stages``, and say per method whether its explanation followed the model.

    ``methods`` default to ``explain()``'s default methods whose results score superpixels
    (LIME and SHAP); ``label`` defaults to the trained model's top class; ``settings`` go over
    each method's reduced budget (``Explainer.reduced``: a LIME pool of 200, SHAP on that pool); segmentation and fill mean what
    they mean in ``xai_panel.explain`` (one segmentation, the pool of ``seed``, for every
    stage). ``runtime`` is where the randomised copies run: ``"auto"`` (ONNX Runtime on a
    CPU, else torch), ``"onnxruntime"`` or ``"torch"``. ``progress(done, total)`` is called
    after each explanation (1 + stages); ``cancel`` (a ``threading.Event`` or a callable
    returning True to stop) is checked between model batches and raises ``Cancelled``.
    An ONNX-only classifier raises ``ModelError`` ("needs a torch model"). Same inputs, same result.
    """
    from ..engine.pipeline import _default_classifier
    from ..models.torch_backend import TorchRunner

    classifier = classifier or _default_classifier()
    module, device = classifier.require_torch("the sanity check (model randomisation)")
    methods = _check_methods(scoring_methods() if methods is None else methods)
    settings = dict(settings or {})
    check_methods(settings)
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if not (isinstance(threshold, (int, float)) and 0.0 < float(threshold) <= 1.0):
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
    if not isinstance(k_top_segments, (int, np.integer)) or k_top_segments < 1:
        raise ValueError(f"k_top_segments must be an integer >= 1, got {k_top_segments!r}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if label is not None and (not isinstance(label, (int, np.integer)) or isinstance(label, bool)
                              or not 0 <= label < classifier.num_classes):
        raise ValueError(f"label must be a class index in [0, {classifier.num_classes}), got {label!r}")
    units = model_units(module)
    unit_names = [n for n, _ in units]
    counts = plan_stages(unit_names, stages)
    explainers, reduced = {}, reduced_settings(methods)
    for m in methods:
        given = settings.get(m)
        explainers[m] = given if isinstance(given, Explainer) else make_explainer(
            m, {**reduced.get(m, {}), **dict(given or {})})
    if cancel is not None and not hasattr(cancel, "is_set"):
        cancel = _CancelCallable(cancel)

    t0 = time.perf_counter()
    view = classifier.prepare(np.asarray(image))
    segments = segment(view, segmentation, seed=0, **dict(segmentation_params or {}))  # as explain() does
    m_seg = segments.n_segments
    total, done, passes = 1 + len(counts), 0, 0

    def run(engine: PerturbationEngine) -> tuple[dict[str, np.ndarray], dict[str, frozenset], np.ndarray]:
        nonlocal done, passes
        engine.check_cancelled()
        with engine.track("sanity") as box:
            probs = engine.predict_full()
            pool, vectors, tops = None, {}, {}
            for name, e in explainers.items():  # as explain() runs them: the pool drawn when first needed
                if pool is None and e.needs_pool():
                    pool = draw_shared_pool(explainers, engine, [target], int(seed))
                result = e.compute(engine, [target], seed=int(seed), pool=pool, top_k=1)[target]
                vectors[name] = np.asarray(result.vector(m_seg), np.float64)
                tops[name] = frozenset(result.top_set(int(k_top_segments)))
        passes += box["cost"].forward_passes
        done += 1
        if progress is not None:
            progress(done, total)
        return vectors, tops, probs

    if cancel is not None and cancel.is_set():
        raise Cancelled("sanity check cancelled")
    trained = PerturbationEngine(view, segments, classifier, fill, cancel=cancel)
    trained_probs = trained.predict_full()  # memoised: the reference run below gets it free
    passes += 1
    target = int(np.argmax(trained_probs)) if label is None else int(label)
    reference, reference_tops, _ = run(trained)

    copy_of = copy.deepcopy(module).eval()  # the user's model stays as it is
    copied = dict(model_units(copy_of))
    graph, where = None, "torch"
    if runtime != "torch" and device == "cpu":
        probe = classifier.preprocessing.normalise(
            np.random.default_rng(0).integers(0, 256, (2, classifier.input_size, classifier.input_size, 3),
                                              dtype=np.uint8))
        try:
            graph, where = _graph(classifier.model_id, module, classifier.input_size, probe), "onnxruntime"
        except Exception as exc:  # never silently wrong: say so, and run the copies in torch
            warnings.warn(f"ONNX Runtime unavailable for the randomised copies ({exc}); using torch", stacklevel=2)
    similarity = {name: [] for name in explainers}
    overlap = {name: [] for name in explainers}
    scores = {name: [reference[name]] for name in explainers}
    probability, stage_top, reached = [float(trained_probs[target])], [], 0
    for count in counts:
        for index in range(len(units) - count, len(units) - reached):  # the new units of this stage, top first
            _reinitialise(copied[unit_names[index]], _unit_seed(seed, index))
        reached = count
        if cancel is not None and cancel.is_set():
            raise Cancelled("sanity check cancelled")
        runner = graph.runner(copy_of) if graph is not None else TorchRunner(copy_of, device)
        stage_clf = Classifier(runner, classifier.class_names, model_id=f"{classifier.model_id}+randomised-{count}",
                               preprocessing=classifier.preprocessing, batch_size=classifier.batch_size,
                               device=device if where == "torch" else "cpu", backend=where, outputs=classifier.outputs,
                               module=copy_of, module_device=device)
        vectors, tops, probs = run(PerturbationEngine(view, segments, stage_clf, fill, cancel=cancel))
        probability.append(float(probs[target]))
        stage_top.append(top_k_of(probs, classifier.class_names, 1)[0])
        for name in explainers:
            rho = spearman(reference[name], vectors[name])
            if math.isnan(rho) and np.ptp(reference[name]) > 0:
                rho = 0.0  # the randomised scores are constant: no ranking left
            similarity[name].append(rho)
            overlap[name].append(jaccard(reference_tops[name], tops[name]))
            scores[name].append(vectors[name])

    passed = {name: bool(not math.isnan(s[-1]) and abs(s[-1]) < float(threshold)) for name, s in similarity.items()}
    return SanityCheck(
        image=view, model_id=classifier.model_id,
        label=ClassScore(target, classifier.class_names[target], float(trained_probs[target])),
        segmentation=segments, methods=tuple(explainers),
        stages=tuple(unit_names[len(units) - c] for c in counts),
        randomised=tuple(tuple(reversed(unit_names[len(units) - c:])) for c in counts),
        units=tuple(unit_names),
        similarity={k: tuple(v) for k, v in similarity.items()},
        top_overlap={k: tuple(v) for k, v in overlap.items()},
        scores={k: np.stack(v) for k, v in scores.items()},
        passed=passed, threshold=float(threshold), label_probability=tuple(probability), stage_top=tuple(stage_top),
        k_top_segments=int(k_top_segments), seed=int(seed), runtime=where,
        settings={"segmentation": segmentation, "segmentation_params": dict(segments.params), "fill": fill,
                  "stages": [unit_names[len(units) - c] for c in counts],
                  **{name: e.settings() for name, e in explainers.items()}},
        forward_passes=passes, seconds=time.perf_counter() - t0,
    )
