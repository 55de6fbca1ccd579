"""The gallery: labels with counts, filtering, pages, predictions, safe selection."""

from __future__ import annotations

import pytest

from xai_panel.components import ALL, UNLABELLED, Gallery
from xai_panel.components.widgets.gallery import _store
from xai_panel.data import open_dataset
from xai_panel.render.thumbnails import PLACEHOLDER

from .conftest import wait_until


@pytest.fixture
def gallery(folder):
    g = Gallery(dataset=open_dataset(folder), page_size=4)
    g.wait()
    return g


def test_labels_are_counted_per_true_label(gallery):
    assert gallery.labels == {"cats": 3, "coffee": 1, UNLABELLED: 1}
    assert gallery.label == ALL and len(gallery.records) == 5 and gallery.page_count == 2
    options = gallery._label_options(gallery.labels, "", "label", 0)
    assert list(options) == ["All images (5)", "cats (3)", "coffee (1)", f"{UNLABELLED} (1)"]
    assert list(gallery._label_options(gallery.labels, "CAT", "label", 0).values()) == [ALL, "cats"]


def test_a_label_filters_the_thumbnails_and_pages_split_them(gallery):
    first_page = [item["id"] for item in gallery._grid.items]
    assert len(first_page) == 4
    gallery.page = 2
    gallery.wait()
    assert [item["id"] for item in gallery._grid.items] == gallery.records[4:]
    gallery.label = "cats"
    gallery.wait()
    assert gallery.page == 1 and gallery.page_count == 1
    assert sorted(item["id"] for item in gallery._grid.items) == ["cats/a.png", "cats/b.jpg", "cats/broken.jpg"]
    gallery.label = UNLABELLED
    gallery.wait()
    assert [item["id"] for item in gallery._grid.items] == ["loose.png"]


def test_thumbnails_are_small_images_made_once(gallery, folder):
    items = {item["id"]: item for item in gallery._grid.items}
    assert items["cats/a.png"]["src"].startswith("data:image/jpeg;base64,")
    assert len(items["cats/a.png"]["src"]) < 20_000
    assert items["cats/broken.jpg"]["src"] == PLACEHOLDER
    cached = list(gallery_store_folder(gallery).glob("*.jpg"))
    assert len(cached) >= 3  # written to the cache folder, reused by the next session


def gallery_store_folder(gallery):
    return _store(gallery.thumbnail_size).folder


def test_clicking_a_card_selects_it(gallery):
    gallery._grid._handle_msg({"id": "coffee/c.png"})
    assert gallery.selected == "coffee/c.png"
    assert gallery.selected_record.label_name == "coffee"
    assert gallery._grid.selected == "coffee/c.png"
    with pytest.raises(TypeError):
        gallery.selected = "cats/a.png"  # an output


@pytest.mark.parametrize("bad", ["../secret.png", "/etc/passwd", "cats/../coffee/c.png", "missing.png", ""])
def test_unsafe_or_unknown_ids_are_refused(gallery, bad):
    with pytest.raises((ValueError, KeyError)):
        gallery.select(bad)
    assert gallery.selected == ""
    gallery._grid._handle_msg({"id": bad})  # from the page: a message, no crash
    assert gallery.selected == ""


def test_unknown_labels_are_refused_with_a_message(gallery):
    gallery.show_label("dogs")
    assert gallery.label == ALL and "dogs" in gallery.message


def test_predictions_mark_cards_and_group_by_predicted_class(folder, classifier):
    gallery = Gallery(dataset=open_dataset(folder), page_size=8)
    gallery.wait_predictions(timeout=300)
    assert gallery.predicted == 4  # the broken file cannot be predicted
    wait_until(lambda: all(item["status"] != "pending" for item in gallery._grid.items
                           if item["id"] != "cats/broken.jpg"))
    cards = {item["id"]: item for item in gallery._grid.items}
    cat_top1 = classifier.top_k(open_dataset(folder).get("cats/a.png").load(), 1)[0]
    assert cards["cats/a.png"]["badge"] == cat_top1.name
    assert cards["cats/a.png"]["status"] == "mismatch"  # "cats" is no ImageNet class name
    assert cards["loose.png"]["status"] == "unknown"  # no true label to compare with
    gallery.group_by = "prediction"
    assert sum(gallery.labels.values()) == 4 and cat_top1.name in gallery.labels
    assert gallery.labels[cat_top1.name] >= 2
    gallery.label = cat_top1.name
    assert {"cats/a.png", "cats/b.jpg"} <= set(gallery.records)


def test_thumbnails_applied_after_the_predictions_still_show_them(folder, classifier):
    """On a page, the thumbnails' update may be applied after the predictions' one: the cards
    must then show the predictions, not the 'predicting…' they had when the thumbnails were made."""
    gallery = Gallery(dataset=open_dataset(folder), page_size=8, predict=False)
    gallery.wait()
    held = []
    gallery._thumbs.publish = lambda job, callback: held.append(callback)  # the page applies it later
    _store(gallery.thumbnail_size)._memory.clear()  # not in memory: made (read from disk) by the job
    gallery.page_size = 7  # new thumbnails are made now, before any prediction
    gallery.wait()
    assert len(held) == 1
    from xai_panel.render.thumbnails import prediction_index

    gallery._index = prediction_index(gallery.dataset, classifier)
    gallery._index.compute()  # the predictions arrive (and are applied) first
    held[0]()  # then the thumbnails
    cards = {item["id"]: item for item in gallery._grid.items}
    assert cards["cats/a.png"]["status"] in ("match", "mismatch") and cards["cats/a.png"]["badge"] != "predicting…"


def test_a_label_sorts_and_filters_by_what_the_store_holds(folder, tmp_path, classifier):
    import xai_panel as xp
    from xai_panel.store import ExplanationStore

    dataset = open_dataset(folder)
    store = ExplanationStore(tmp_path / "store.sqlite")
    stored = {}
    for id_, right in (("cats/a.png", True), ("cats/b.jpg", False), ("coffee/c.png", None)):
        record = dataset.get(id_)
        image = record.load()
        res = xp.explain(image, classifier, methods=("lime",), segmentation="grid",
                         settings={"lime": {"num_samples": 20}})
        top = res.top[0].index
        label = None if right is None else top if right else (top + 1) % 1000
        store.put(res, xp.data.image_hash(image), record=record, label=label)
        stored[id_] = res.top[0].probability
    gallery = Gallery(dataset=dataset, predict=False, page_size=4, store=store)
    assert gallery.records == [r.id for r in dataset]  # name order until asked
    gallery.sort_by = "confidence"
    by_confidence = sorted(stored, key=stored.get, reverse=True)
    unscored = [r.id for r in dataset if r.id not in stored]
    assert unscored and gallery.records == by_confidence + unscored  # unscored last, in name order
    gallery.sort_by = "confidence-asc"
    assert gallery.records[:3] == by_confidence[::-1]
    gallery.show = "right"
    assert gallery.records == ["cats/a.png"]
    gallery.show = "wrong"
    assert gallery.records == ["cats/b.jpg"] and gallery.page_count == 1
    gallery.show = "all"
    gallery.label = "cats"
    assert gallery.records == [i for i in by_confidence[::-1] if i.startswith("cats/")] + ["cats/broken.jpg"]
    store.close()


def test_a_label_sorts_by_a_methods_stored_faithfulness(folder, tmp_path, classifier):
    import xai_panel as xp
    from xai_panel.store import ExplainRequest, ExplanationStore

    dataset = open_dataset(folder)
    store = ExplanationStore(tmp_path / "store.sqlite")
    gallery = Gallery(dataset=dataset, predict=False, page_size=4, store=store)
    assert not any(":" in value for value in gallery.param.sort_by.objects)  # nothing measured: no such sort
    request = ExplainRequest.create(classifier.model_id, ("lime",), segmentation="grid", top_k=1,
                                    settings={"lime": {"num_samples": 20}})
    hashes = {}
    for id_ in ("cats/a.png", "cats/b.jpg", "coffee/c.png"):
        image = dataset.get(id_).load()
        res = xp.explain(image, classifier, **request.explain_kwargs())
        if id_ != "coffee/c.png":  # stored without metrics: sorted last
            res = xp.add_metrics(res, classifier, "faithfulness", settings={"steps": 4, "random_orders": 1})
        hashes[id_] = xp.data.image_hash(image)
        store.put(res, hashes[id_], request=request, record=dataset.get(id_))
    gallery.refresh_sorts()
    names = gallery.param.sort_by.names
    assert names["LIME: least faithful first"] == "deletion_auc:lime"
    assert names["LIME: most faithful first"] == "deletion_auc:lime-asc"
    assert names["LIME: insertion AUC (low first)"] == "insertion_auc:lime-asc"
    assert names["LIME: insertion AUC (high first)"] == "insertion_auc:lime"
    assert not any("Anchors" in n for n in names)  # only methods with stored metrics
    decoded = {i: store.get(h, request) for i, h in hashes.items()}
    auc = {i: r.faithfulness["lime"][r.labels[0]].deletion_auc for i, r in decoded.items() if r.faithfulness}
    unscored = [r.id for r in dataset if r.id not in auc]
    gallery.sort_by = "deletion_auc:lime"
    assert gallery.records == sorted(auc, key=auc.get, reverse=True) + unscored
    gallery.sort_by = "deletion_auc:lime-asc"
    assert gallery.records == sorted(auc, key=auc.get) + unscored
    ins = {i: r.faithfulness["lime"][r.labels[0]].insertion_auc for i, r in decoded.items() if r.faithfulness}
    gallery.sort_by = "insertion_auc:lime-asc"
    assert gallery.records == sorted(ins, key=ins.get) + unscored
    # a store that loses the metrics drops the option and falls back to names
    store.prune(method="lime")
    gallery.refresh_sorts()
    assert gallery.sort_by == "name" and gallery.records == [r.id for r in dataset]
    store.close()


def test_a_page_whose_thumbnails_are_in_memory_is_filled_as_the_gallery_is_built(folder):
    first = Gallery(dataset=open_dataset(folder), page_size=4, predict=False).wait()
    second = Gallery(dataset=open_dataset(folder), page_size=4, predict=False)
    assert second._thumbs.job is None  # no background job: the page is served with them
    assert [i["src"] for i in second._grid.items] == [i["src"] for i in first._grid.items]
    assert all(i["src"].startswith("data:image/jpeg") for i in second._grid.items if i["id"] != "cats/broken.jpg")
    second.page = 2  # not made yet: made in the background
    assert second._thumbs.job is not None
    second.wait()
    assert [i["id"] for i in second._grid.items] == ["loose.png"]


def test_the_index_predicts_the_asked_images_first_in_a_thread_of_its_own(folder, classifier, tmp_path):
    import threading

    from xai_panel.render.thumbnails import PredictionIndex

    dataset = open_dataset(folder)
    index = PredictionIndex(dataset, classifier, folder=tmp_path)
    index.batch_size = 1
    seen = []
    index.subscribe(lambda done, total: seen.append(
        (threading.current_thread().name, tuple(r.id for r in dataset if index.get(r.id)), done, total)))
    gate = threading.Event()
    index.start([dataset.get("loose.png"), dataset.get("coffee/c.png")], pause=gate.wait)
    assert index.running and len(index) == 0  # paused before its first batch
    gate.set()
    assert index.wait(timeout=300) and index.complete
    assert {name for name, *_ in seen} == {"xai-panel-predictions"}
    assert [ids for _, ids, *_ in seen[:2]] == [("loose.png",), ("coffee/c.png", "loose.png")]
    assert seen[-1][1:] == (("cats/a.png", "cats/b.jpg", "coffee/c.png", "loose.png"), 4, 5)
    assert list(index.failed) == ["cats/broken.jpg"]
    again = PredictionIndex(dataset, classifier, folder=tmp_path)  # saved: a restarted server finds it
    assert len(again) == 4 and again.get("loose.png") == index.get("loose.png")


def test_galleries_share_one_index_and_a_closed_one_stops_following_it(folder):
    dataset = open_dataset(folder)
    one, two = Gallery(dataset=dataset, page_size=4), Gallery(dataset=dataset, page_size=4)
    one.wait_predictions(timeout=300)
    two.wait_predictions(timeout=300)
    assert one._index is two._index and one.predicted == two.predicted == 4
    two._detach()
    listeners = [ref() for ref in one._index._listeners]
    assert one._on_index_progress in listeners and two._on_index_progress not in listeners
