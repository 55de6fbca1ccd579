"""Explanation methods, one file each, found by discovery (see ``base``).

``from xai_panel.methods import LimeExplainer`` and the like work for every registered
method's class (``<Name>Explainer`` by convention) without this file naming them.
"""

from .base import (
    DEFAULT_POOL_SIZE,
    Explainer,
    available_methods,
    check_methods,
    dashboard_methods,
    default_methods,
    make_explainer,
    method_class,
    pool_size_of,
    registry,
    run_order,
)

__all__ = [
    "DEFAULT_POOL_SIZE", "Explainer", "available_methods", "check_methods", "dashboard_methods", "default_methods",
    "make_explainer", "method_class", "pool_size_of", "registry", "run_order",
]


def __getattr__(name: str):
    # Explainer and result classes of the registered methods, by their class names.
    for cls in registry().values():
        for found in (cls, cls.result_type):
            if getattr(found, "__name__", None) == name:
                return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
