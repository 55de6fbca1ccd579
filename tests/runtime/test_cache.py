"""The per-process explanation cache and its keys."""

from __future__ import annotations

import threading

import pytest

from xai_panel.runtime.cache import ExplanationCache, MemoryCache


def test_keys_are_stable_and_change_with_every_input():
    from xai_panel.engine.request import ExplainRequest
    from xai_panel.engine.service import ExplanationService

    request = ExplainRequest.create("model@1", ["lime"], settings={"lime": {"num_samples": 100, "kernel_width": 0.25}})
    same = ExplainRequest.create("model@1", ["lime"], settings={"lime": {"num_samples": 100}})
    key = ExplanationService.key("abc", request)
    assert key == ExplanationService.key("abc", same)  # key order and defaults spelled out or not do not matter
    assert len(key) == 64
    assert key != ExplanationService.key("abd", request)
    assert key != ExplanationService.key("abc", request.with_model("model@2"))
    assert key != ExplanationService.key("abc", ExplainRequest.create("model@1", ["lime"], seed=1,
                                                                      settings={"lime": {"num_samples": 100}}))


def test_memory_cache_is_an_lru(lime_shap):
    cache = MemoryCache(max_items=2)
    assert isinstance(cache, ExplanationCache)
    cache.put("a", lime_shap)
    cache.put("b", lime_shap)
    assert cache.get("a") is lime_shap  # "a" is now the most recent
    cache.put("c", lime_shap)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_memory_cache_refuses_non_explanations_and_bad_sizes():
    with pytest.raises(ValueError):
        MemoryCache(max_items=0)
    with pytest.raises(TypeError):
        MemoryCache().put("k", {"not": "an explanation"})


def test_memory_cache_is_thread_safe(lime_shap):
    cache = MemoryCache(max_items=50)

    def work(offset):
        for i in range(200):
            cache.put(f"{offset}-{i % 60}", lime_shap)
            cache.get(f"{offset}-{(i * 7) % 60}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50


def test_decoded_images_are_shared_read_only_and_follow_the_file(tmp_path):
    import os

    import numpy as np
    from PIL import Image

    from xai_panel.data import image_hash, load_image
    from xai_panel.runtime.cache import DecodedImages

    path = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 3), 10, np.uint8)).save(path)
    decoded = DecodedImages(max_bytes=2 * 40 * 60 * 3)
    calls = []

    def load(p=path):
        calls.append(p)
        return load_image(p)

    first, digest = decoded.get(path, load, image_hash)
    again, digest_again = decoded.get(tmp_path / "." / "photo.png", load, image_hash)
    assert again is first and digest_again == digest == image_hash(load_image(path)) and len(calls) == 1
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1  # shared by every session: read-only
    # The file replaced on disk is decoded again.
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(path)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    changed, new_digest = decoded.get(path, load, image_hash)
    assert len(calls) == 2 and new_digest != digest and changed[0, 0, 0] == 200
    # Past the byte budget the least recently used goes.
    for name in ("b.png", "c.png"):
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / name)
        decoded.get(tmp_path / name, lambda n=name: load(tmp_path / n), image_hash)
    assert len(decoded) == 2
    decoded.get(path, load, image_hash)
    assert len(calls) == 5  # evicted, decoded once more
    with pytest.raises(FileNotFoundError):
        decoded.get(tmp_path / "missing.png", load, image_hash)


def test_threads_asking_for_one_stored_entry_read_it_once(tmp_path, lime_shap):
    """A page's prefetch, a click and another page's prefetch asking for the same stored
    explanation at once: one decodes it from the store, the others wait and get that object."""
    from xai_panel.engine.request import ExplainRequest
    from xai_panel.engine.service import ExplanationService
    from xai_panel.store import ExplanationStore

    store = ExplanationStore(tmp_path / "store.sqlite")
    request = ExplainRequest.create(lime_shap.model_id, ["lime", "shap"])
    store.put(lime_shap, "img", request=request)
    reads, real_get = [], store.get

    def counted_get(*args, **kwargs):
        reads.append(threading.get_ident())
        return real_get(*args, **kwargs)

    store.get = counted_get  # the real store's read, counted
    cache = MemoryCache()
    start, found = threading.Barrier(4), []

    def ask():
        service = ExplanationService(cache=cache, store=store)  # each caller builds its own, as they do
        start.wait()
        found.append(service.locate("img", request))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(found) == 4 and len(reads) == 1
    first = found[0][0]
    assert first is not None and all(result is first and origin == "store" for result, origin in found)
    assert ExplanationService(cache=MemoryCache(), store=store).locate("missing", request) == (None, "")
