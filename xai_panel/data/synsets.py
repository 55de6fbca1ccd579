"""The ImageNet-1k class list, in the class-index order classifiers use.

The mapping ships with the package (``imagenet_synsets.txt``, one ``<wnid> <name>``
line per class) so that labels work offline and match the output index of
torchvision-style ImageNet weights: line ``i`` is output ``i``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["class_name_to_index", "imagenet_classes", "imagenet_wnids", "wnid_to_index"]

_SYNSET_FILE = "imagenet_synsets.txt"


@lru_cache(maxsize=1)
def _synsets() -> tuple[tuple[str, str], ...]:
    text = resources.files(__package__).joinpath(_SYNSET_FILE).read_text(encoding="utf-8")
    pairs = tuple(tuple(line.split(maxsplit=1)) for line in text.splitlines() if line.strip())
    if len(pairs) != 1000 or any(len(pair) != 2 for pair in pairs):
        # A damaged mapping would silently shift every label by some offset.
        raise RuntimeError(f"{_SYNSET_FILE} must hold 1000 '<wnid> <name>' lines, found {len(pairs)}")
    return pairs


@lru_cache(maxsize=1)
def _imagenet_wnids() -> tuple[str, ...]:
    return tuple(wnid for wnid, _ in _synsets())


@lru_cache(maxsize=1)
def _imagenet_classes() -> tuple[str, ...]:
    return tuple(name.replace("_", " ") for _, name in _synsets())


def imagenet_wnids() -> list[str]:
    """WordNet ids (``n01440764`` ...), position = class index."""
    # A fresh list each call: callers may mutate it without corrupting the cache.
    return list(_imagenet_wnids())


def imagenet_classes() -> list[str]:
    """Human-readable class names (``"great white shark"``), position = class index."""
    return list(_imagenet_classes())


@lru_cache(maxsize=1)
def _index_by_wnid() -> dict[str, int]:
    return {wnid: index for index, wnid in enumerate(_imagenet_wnids())}


def wnid_to_index(wnid: str) -> int:
    """Class index of a WordNet id, for labelling files named or filed by wnid."""
    try:
        return _index_by_wnid()[wnid]
    except KeyError:
        raise KeyError(
            f"{wnid!r} is not one of the 1000 ImageNet-1k wnids "
            "(expected an id such as 'n01440764', the wnid of class 0, 'tench')"
        ) from None


def _normalise(name: str) -> str:
    return " ".join(name.replace("_", " ").split())


@lru_cache(maxsize=1)
def _indices_by_name() -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    exact: dict[str, list[int]] = {}
    folded: dict[str, list[int]] = {}
    for index, name in enumerate(_imagenet_classes()):
        exact.setdefault(_normalise(name), []).append(index)
        folded.setdefault(_normalise(name).casefold(), []).append(index)
    return exact, folded


def class_name_to_index(name: str) -> int | None:
    """Class index for a folder named after an ImageNet class, or None.

    Underscores and spaces are equivalent and case is ignored, except that an
    exact-case match wins: ImageNet has both "Cardigan" (the corgi) and "cardigan"
    (the sweater). Names that stay ambiguous ("crane" the bird and the machine,
    "maillot" twice) give None rather than a guess that would mislabel half of them.
    """
    exact, folded = _indices_by_name()
    key = _normalise(name)
    for candidates in (exact.get(key), folded.get(key.casefold())):
        if candidates:
            return candidates[0] if len(candidates) == 1 else None
    return None
