"""The label grid: every image of a label with one method's stored map; "explain this label" fills it.

Real model, real photos of the shared ImageNet sample (two under the tabby folder, one under
golden retriever's), a real SQLite store in tmp_path, a small budget (LIME on a 3x3 grid).
"""

from __future__ import annotations

import base64
import io
import shutil
import sqlite3

import numpy as np
import pytest
from PIL import Image

from xai_panel.components import ALL, ExplainerSettings, Gallery
from xai_panel.components.widgets.label_grid import LabelGrid, stored_in_another_preset, stored_result
from xai_panel.data import image_hash, load_image, open_dataset
from xai_panel.engine.service import ExplanationService, other_preset_requests
from xai_panel.methods.base import registry
from xai_panel.render.thumbnails import PLACEHOLDER
from xai_panel.store import ExplanationStore

from .conftest import wait_until

METHOD = next(name for name, cls in registry().items() if cls.defines_pool)  # LIME: the cheapest pool to draw
BUDGET = {"methods": [METHOD], "segmentation": "grid", "grid_size": 3, METHOD: {"num_samples": 40}}
TABBY, CAT_B, DOG = "n02123045/tabby.JPEG", "n02123045/tiger_cat.JPEG", "n02099601/golden.JPEG"
PHOTOS = {TABBY: "n02123045_tabby", CAT_B: "n02123159_tiger_cat", DOG: "n02099601_golden_retriever"}


@pytest.fixture
def labelled(tmp_path, shared_sample):
    """An ImageNet-style folder: two photos labelled tabby, one golden retriever."""
    root = tmp_path / "data"
    for rel, name in PHOTOS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_sample / f"{name}.JPEG", root / rel)
    return root


@pytest.fixture
def setup(labelled, tmp_path, classifier):
    store = ExplanationStore(tmp_path / "store.sqlite")
    settings = ExplainerSettings.from_dict(BUDGET)
    gallery = Gallery(dataset=open_dataset(labelled), store=store)
    gallery.wait_predictions().wait()
    grid = LabelGrid(gallery=gallery, settings=settings, store=store, metrics=["faithfulness"],
                     metric_settings={"steps": 4, "random_orders": 1})
    return gallery, grid, store, settings


def request_of(grid, classifier):
    return grid._request(dict(grid.settings.request), grid.top_k)


def precompute(grid, store, classifier, record) -> str:
    """Explain and store one image exactly as the gallery's session would (same request)."""
    image = load_image(record.path)
    digest = image_hash(image)
    request = request_of(grid, classifier)
    ExplanationService(store=store).compute(classifier.prepare(image), classifier, request, image_hash=digest,
                                            record=record, write="each")
    return digest


def pixels(src: str) -> np.ndarray:
    assert src.startswith("data:image/jpeg;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"), np.float32)


def cards(grid) -> dict[str, dict]:
    return {item["id"]: item for item in grid.items()}


def created(store) -> dict[str, float]:
    with sqlite3.connect(store.path) as conn:
        return dict(conn.execute("SELECT key, created_at FROM results"))


def test_a_hidden_grid_reads_nothing_and_an_open_one_shows_the_label(setup):
    gallery, grid, store, _ = setup
    gallery.label = "tabby"
    assert grid.items() == [] and grid.label == ""  # not opened: nothing drawn, no store read
    grid.active = True
    grid.wait()
    assert grid.label == "tabby" and grid.records == [TABBY, CAT_B]
    assert [c["detail"] for c in grid.items()] == ["not explained yet"] * 2
    gallery.label = "golden retriever"
    grid.wait()
    assert list(cards(grid)) == [DOG]
    gallery.label = ALL  # all images: the selected image's label
    gallery.select(TABBY)
    grid.wait()
    assert grid.label == "tabby" and list(cards(grid)) == [TABBY, CAT_B]


def test_cards_carry_the_stored_maps_and_explain_computes_only_what_is_missing(setup, classifier):
    gallery, grid, store, settings = setup
    digest = precompute(grid, store, classifier, gallery.dataset.get(TABBY))
    before = created(store)
    assert len(before) == 1
    gallery.label = "tabby"
    grid.active = True
    grid.wait()
    shown = cards(grid)
    assert shown[CAT_B]["detail"] == "not explained yet"
    # The stored card is the method's own pane drawing of the stored result, for the top class.
    stored = stored_result(store, digest, request_of(grid, classifier), METHOD)
    top = stored.top[0]
    assert shown[TABBY]["badge"] == f"{top.name} · {top.probability:.0%}"
    expected = np.asarray(Image.fromarray(grid._drawer(METHOD).picture(stored, top.index)).resize(
        (grid.thumbnail_size, grid.thumbnail_size), Image.BILINEAR), np.float32)
    plain = pixels(grid._plain_card(gallery.dataset.get(TABBY), _thumb(grid, gallery, TABBY), "")["src"])
    tile = pixels(shown[TABBY]["src"])
    assert np.abs(tile - expected).mean() < 4  # JPEG noise only
    assert np.abs(tile - plain).mean() > 10  # the overlay, not the photo

    grid.explain_label()
    assert grid.status == "running" or grid.wait().status == "done"
    grid.wait()
    assert grid.status == "done" and grid.progress == 1.0 and grid.done == 2
    after = created(store)
    assert set(before) < set(after) and len(after) == 2
    assert after[next(iter(before))] == before[next(iter(before))]  # the stored image was not recomputed
    assert "1 of 2 images explained and stored, 1 measured" in grid.message  # the stored one lacked faithfulness
    wait_until(lambda: "deletion" in cards(grid)[CAT_B]["detail"])
    filled = cards(grid)[CAT_B]
    assert filled["detail"].startswith("deletion ") and filled["src"].startswith("data:image/jpeg")
    assert store.summaries(label="tabby") and len(store.results()) == 2

    grid.explain_label()  # again: nothing missing, nothing computed
    grid.wait()
    assert created(store) == after and "nothing computed" in grid.message


def test_a_card_falls_back_to_another_presets_stored_result_and_says_so(setup, classifier):
    """The grid's settings are custom; the store holds the tabby only as ``xai-panel precompute``
    stores it (the interactive preset). Its card shows that map, named, as the gallery's session
    would show it; explaining the label then computes the current settings' result for it too."""
    gallery, grid, store, _ = setup
    record = gallery.dataset.get(TABBY)
    image = load_image(record.path)
    digest = image_hash(image)
    request = dict(other_preset_requests(request_of(grid, classifier)))["interactive"]
    ExplanationService(store=store).compute(classifier.prepare(image), classifier, request, image_hash=digest,
                                            record=record, write="each")
    assert stored_result(store, digest, request_of(grid, classifier), METHOD) is None  # not with the grid's settings
    gallery.label = "tabby"
    grid.active = True
    grid.wait()
    shown = cards(grid)
    assert shown[CAT_B]["detail"] == "not explained yet"
    assert shown[TABBY]["detail"].endswith(" · interactive preset"), shown[TABBY]["detail"]
    found, other, name = stored_in_another_preset(store, digest, request_of(grid, classifier), METHOD)
    assert name == "interactive" and other.to_json() == request.to_json()
    assert shown[TABBY]["badge"] == f"{found.top[0].name} · {found.top[0].probability:.0%}"
    plain = pixels(grid._plain_card(record, _thumb(grid, gallery, TABBY), "")["src"])
    assert np.abs(pixels(shown[TABBY]["src"]) - plain).mean() > 10  # the stored map, not the photo

    grid.explain_label()
    grid.wait()
    assert grid.status == "done" and grid.done == 2
    assert stored_result(store, digest, request_of(grid, classifier), METHOD) is not None  # now with the grid's too
    wait_until(lambda: "preset" not in cards(grid)[TABBY]["detail"])


def _thumb(grid, gallery, rid):
    from xai_panel.components.widgets.label_grid import _thumbnail_store

    return _thumbnail_store(grid.thumbnail_size).data_uri(gallery.dataset.get(rid))


def test_the_label_class_target_and_a_click_selects_the_image(setup, classifier):
    gallery, grid, store, _ = setup
    precompute(grid, store, classifier, gallery.dataset.get(TABBY))
    gallery.label = "tabby"
    grid.param.update(active=True, target="label")
    grid.wait()
    card = cards(grid)[TABBY]
    stored = stored_result(store, store.file_hashes([gallery.dataset.get(TABBY).path])[str(
        gallery.dataset.get(TABBY).path)], request_of(grid, classifier), METHOD)
    tabby = classifier.class_names.index("tabby")
    if tabby in stored.labels:
        assert card["badge"].startswith("tabby · ")
    else:
        assert card["detail"] == "the label's class is not in its top 5"
    grid._grid._handle_msg({"id": TABBY})
    assert gallery.selected == TABBY
    grid._grid._handle_msg({"id": "../outside.png"})  # from the page: refused with a message
    assert gallery.selected == TABBY and "outside" in gallery.message


def test_an_empty_label_an_undecodable_row_and_an_unreadable_image(setup, classifier, labelled):
    gallery, grid, store, _ = setup
    grid.active = True
    grid.wait()
    assert grid.label == "" and grid.items() == []  # "All images" and nothing selected: no label
    grid.explain_label()
    assert grid.status == "idle" and "no images" in grid.message

    digest = precompute(grid, store, classifier, gallery.dataset.get(TABBY))
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE results SET payload = x'00ff00'")
    gallery.label = "tabby"
    grid.wait()
    assert cards(grid)[TABBY]["detail"] == "stored result unreadable: explain again"
    grid.explain_label()
    grid.wait()
    assert grid.status == "done"
    assert stored_result(store, digest, request_of(grid, classifier), METHOD) is not None  # written again
    assert cards(grid)[TABBY]["detail"].startswith("deletion ")

    (labelled / TABBY).write_bytes(b"\xff\xd8\xff not a jpeg any more")
    gallery.dataset = open_dataset(labelled)
    gallery.label = "tabby"
    grid.wait()
    grid._follow(force=True)
    grid.wait()
    assert cards(grid)[TABBY]["src"] == PLACEHOLDER and cards(grid)[TABBY]["detail"] == "unreadable image"


def test_cancelling_mid_way_keeps_what_finished(setup):
    gallery, grid, store, settings = setup
    # A budget that keeps the second image busy for a second or more when the first is done.
    settings.param.update(seed=3)
    getattr(settings, METHOD).num_samples = 300
    grid.metrics = []
    gallery.label = "tabby"
    grid.active = True
    grid.wait()
    grid.explain_label()
    assert wait_until(lambda: grid.done >= 1, timeout=120)
    grid.cancel()
    assert grid.status == "cancelled" and grid.message.startswith("Cancelled: 1 image explained")
    grid.wait()
    assert grid.status == "cancelled" and len(store.results()) == 1  # the first image, stored as it finished
    shown = {c["id"]: c["detail"] for c in grid.items()}
    assert shown == {TABBY: "faithfulness not measured", CAT_B: "not explained yet"}  # the first card filled


def test_a_large_label_pages(tmp_path, shared_sample, classifier):
    root = tmp_path / "many" / "n02123045"
    root.mkdir(parents=True)
    for k in range(6):
        shutil.copy(shared_sample / "n02123045_tabby.JPEG", root / f"copy-{k}.JPEG")
    store = ExplanationStore(tmp_path / "store.sqlite")
    gallery = Gallery(dataset=open_dataset(root.parent), store=store, label="tabby", predict=False)
    grid = LabelGrid(gallery=gallery, settings=ExplainerSettings.from_dict(BUDGET), store=store, page_size=4,
                     active=True)
    grid.wait()
    assert grid.page_count == 2 and list(cards(grid)) == [f"n02123045/copy-{k}.JPEG" for k in range(4)]
    grid.page = 2
    grid.wait()
    assert list(cards(grid)) == ["n02123045/copy-4.JPEG", "n02123045/copy-5.JPEG"]
    assert len(store.file_hashes([root / f"copy-{k}.JPEG" for k in range(6)])) == 6  # hashed once, remembered
