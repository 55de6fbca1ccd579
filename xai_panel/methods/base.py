"""The method registry: one ``Explainer`` subclass per method, found by discovery.

A method is one class (as lumen's ``Source``/``View``): it declares its ``method`` name, a
``label`` for the UI, its ``result_type``, whether it defines the shared coalition pool,
and its settings as parameters with defaults, bounds and docs; ``compute`` is its one hook
(the contract of captum's ``attribute``: ``compute(engine, labels, seed, pool, top_k)``
returns ``{label: result}``). Nothing else lists the methods: ``explain``, the request and
its keys, the store, precompute, the settings card, stability and the dashboards iterate
:func:`registry`.

Discovery imports every module of ``xai_panel.methods`` and the modules named by the
``xai_panel.methods`` entry-point group (third-party methods), then collects the concrete
``Explainer`` subclasses that declare a ``method`` name. Adding a method is adding a file.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import threading
from typing import ClassVar

import numpy as np
import param

from ..engine.results import MethodCost

__all__ = [
    "Explainer", "available_methods", "dashboard_methods", "default_methods", "make_explainer", "method_class",
    "registry", "method_label", "reduced_settings", "scoring_methods", "pool_size_of", "run_order", "check_methods",
    "DEFAULT_POOL_SIZE", "draw_shared_pool",
]

DEFAULT_POOL_SIZE = 1000
"""Size of the shared coalition pool when no method in the request defines it."""


class Explainer(param.Parameterized):
    """Base: one explanation method over a shared ``PerturbationEngine``.

    Subclass it to add a method: set ``method`` (the registry name), ``label``,
    ``result_type`` and ``order``, declare the settings as parameters and implement
    :meth:`compute`. Results must be frozen dataclasses of NumPy arrays and plain values (the
    store writes them without pickle); per-superpixel results follow one protocol:
    ``values`` is an (M,) score per superpixel for the class (``ScoreResult``).
    """

    __abstract = True

    method: ClassVar[str] = ""
    """Registry name: ``explain(methods=...)``, store rows, ``precompute --methods``."""
    label: ClassVar[str] = ""
    """Name shown in the UI."""
    description: ClassVar[str] = ""
    """One or two sentences for the method's pane: how to read it."""
    caption: ClassVar[str] = ""
    """What the method's card in the dashboards shows, in a few words (after its label)."""
    result_type: ClassVar[type] = object
    """The dataclass ``compute`` returns per class."""
    order: ClassVar[int] = 100
    """Display and run order (low first); a method that defines the pool always runs first."""
    defines_pool: ClassVar[bool] = False
    """Its samples are the shared pool: it runs first and :meth:`pool_size` sets the pool's size."""
    in_default: ClassVar[bool] = True
    """Part of ``explain()``'s default methods."""
    in_dashboards: ClassVar[bool | None] = None
    """Ticked in the dashboards' settings at start (None: as ``in_default``)."""
    quick: ClassVar[bool] = False
    """Cheap (a few passes for every class): runs first, right after the top classes, so the
    dashboards show an explanation almost at once while the perturbation methods refine."""
    interactive: ClassVar[dict] = {}
    """Settings for the dashboards' interactive budget (``FAST_SETTINGS``), over the defaults."""
    rehearsal: ClassVar[dict] = {}
    """Tiny settings for the server's warm-up rehearsal (compiles and imports what the method needs)."""
    reduced: ClassVar[dict] = {}
    """Settings for a reduced budget, over the defaults: what the sanity check uses at each of its stages."""
    pool_parameter: ClassVar[str] = ""
    """For the method that defines the pool: the parameter that sets the pool's size."""
    card_parameters: ClassVar[tuple[str, ...] | None] = None
    """Parameters offered in the dashboards' settings card (None: every setting)."""
    warm_imports: ClassVar[tuple[str, ...]] = ()
    """Heavy modules the method imports on first use: a server imports them at start-up."""

    results = param.Dict(default={}, constant=True, doc="Per class index, this method's result (read-only).")
    cost = param.ClassSelector(class_=MethodCost, default=None, allow_None=True, constant=True,
                               doc="Wall time, forward passes and cache hits of the last run (read-only).")

    def settings(self) -> dict:
        """The values of the parameters that change the result (used in cache keys)."""
        skip = {"name", "results", "cost"}
        return {k: v for k, v in self.param.values().items() if k not in skip}

    def check(self, classifier) -> None:
        """Raise ``ModelError`` (saying why) when this method cannot run on ``classifier``;
        ``explain`` asks every method before any model pass (default: every model will do)."""

    def needs_pool(self) -> bool:
        """Whether this method, with these settings, draws the shared pool when no earlier
        method has (every method receives the pool once drawn, and may use it)."""
        return self.defines_pool

    def pool_size(self) -> int | None:
        """The pool's size, for the method that defines it (None for the others)."""
        return None

    def draw_pool(self, engine, labels, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The shared pool, drawn by the method that defines it: ``pool_size()`` rows of
        lime's uniform sampler (a method may stop earlier, e.g. LIME's stopping rule)."""
        from ..engine.perturbation import shared_pool

        return shared_pool(engine, int(self.pool_size()), seed)

    def compute(self, engine, labels, *, seed: int, pool, top_k: int) -> dict:
        """``{label: result_type}`` for each class in ``labels``, through ``engine``."""
        raise NotImplementedError

    def explain(self, image: np.ndarray, classifier=None, *, top_k: int = 5, seed: int = 0, **kwargs):
        """Run this method alone on ``image``; fills ``results`` and ``cost`` and returns the Explanation."""
        from ..engine.pipeline import explain

        res = explain(image, classifier, methods=(self.method,), top_k=top_k, seed=seed,
                      settings={self.method: self}, **kwargs)
        with param.edit_constant(self):
            self.param.update(results=dict(res.results.get(self.method, {})), cost=res.costs.get(self.method))
        return res


# -- discovery ------------------------------------------------------------------------------
_loaded = False
_load_lock = threading.Lock()


def _load_modules() -> None:
    """Import the method modules once: this package's files and the entry points'."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        package = importlib.import_module(__package__)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{__package__}.{info.name}")
        from importlib.metadata import entry_points

        for entry in entry_points(group="xai_panel.methods"):
            entry.load()
        _loaded = True


def registry() -> dict[str, type[Explainer]]:
    """Every registered method, name -> class, in display order.

    The class registered under a name is the one that declares it; a subclass that keeps
    its parent's name (a user's variant of LIME, say) is not registered, and two unrelated
    classes that declare the same name are an error.
    """
    _load_modules()
    found: dict[str, type[Explainer]] = {}
    for cls in param.concrete_descendents(Explainer).values():
        name = cls.__dict__.get("method")
        if not name or not cls.__dict__.get("registered", True):
            continue
        other = found.get(name)
        if other is None or issubclass(other, cls):
            found[name] = cls
        elif not issubclass(cls, other):
            raise TypeError(f"two methods are called {name!r}: {_qualname(other)} and {_qualname(cls)}")
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def available_methods() -> tuple[str, ...]:
    """The registered method names, in display order."""
    return tuple(registry())


def default_methods() -> tuple[str, ...]:
    """The methods ``explain()`` runs when none are named."""
    return tuple(name for name, cls in registry().items() if cls.in_default)


def dashboard_methods() -> tuple[str, ...]:
    """The methods the dashboards' settings tick at start."""
    return tuple(name for name, cls in registry().items()
                 if (cls.in_default if cls.in_dashboards is None else cls.in_dashboards))


def method_class(method: str) -> type[Explainer]:
    """The class registered as ``method``; an unknown name gets a "did you mean"."""
    methods = registry()
    try:
        return methods[method]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(method), list(methods), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise ValueError(f"unknown method {method!r}{hint} the methods are {', '.join(methods)}") from None


def reduced_settings(methods=None) -> dict[str, dict]:
    """Each method's reduced budget (``Explainer.reduced``), for ``methods`` (default: every registered one)."""
    classes = registry()
    return {m: dict(classes[m].reduced) for m in (classes if methods is None else methods) if classes[m].reduced}


def scoring_methods(methods=None) -> tuple[str, ...]:
    """The ``methods`` (default: ``explain()``'s defaults) whose results score every superpixel."""
    classes = registry()
    return tuple(m for m in (default_methods() if methods is None else methods)
                 if getattr(classes[m].result_type, "ranked", True))


def method_label(method: str) -> str:
    """The registered method's display label ("LIME"), or the name itself when nothing (or no label) is registered."""
    cls = registry().get(method)
    return (cls.label or method) if cls is not None else method


def check_methods(methods) -> tuple[str, ...]:
    """``methods`` de-duplicated and checked (each name known), in the caller's order."""
    if isinstance(methods, str):
        methods = (methods,)
    names = tuple(dict.fromkeys(methods))
    for name in names:
        method_class(name)
    return names


def make_explainer(method: str, settings: dict | Explainer | None = None) -> Explainer:
    """An explainer for ``method`` with ``settings`` checked against its parameters' bounds."""
    if isinstance(settings, Explainer):
        if settings.method != method:
            raise ValueError(f"settings for {method!r} are a {type(settings).__name__} ({settings.method!r})")
        return settings
    cls = method_class(method)
    settings = dict(settings or {})
    unknown = set(settings) - set(cls.param) - {"name"}
    if unknown:
        raise ValueError(f"{method} has no setting {', '.join(sorted(unknown))}; it has "
                         f"{', '.join(sorted(set(cls.param) - {'name', 'results', 'cost'}))}")
    return cls(**settings)


def run_order(methods) -> tuple[str, ...]:
    """``methods`` (checked) in the order they run: the quick ones (``Explainer.quick``), then
    the pool's definer, then display order."""
    names = set(check_methods(methods))
    classes = registry()
    return tuple(sorted((m for m in classes if m in names),
                        key=lambda m: (not classes[m].quick, not classes[m].defines_pool, classes[m].order, m)))


def pool_size_of(explainers: dict[str, Explainer]) -> int:
    """The shared pool's size for a set of explainers: its definer's, else the default."""
    for explainer in explainers.values():
        if explainer.defines_pool:
            return int(explainer.pool_size())
    return DEFAULT_POOL_SIZE


def draw_shared_pool(explainers: dict[str, Explainer], engine, labels, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The shared pool for a set of explainers: drawn by its definer (``Explainer.draw_pool``),
    else ``DEFAULT_POOL_SIZE`` rows of the uniform sampler."""
    for explainer in explainers.values():
        if explainer.defines_pool:
            return explainer.draw_pool(engine, labels, seed=int(seed))
    from ..engine.perturbation import shared_pool

    return shared_pool(engine, DEFAULT_POOL_SIZE, int(seed))
