"""Served behaviour a user reaches only through ``xai-panel serve`` and a browser.

``--data``/``--model`` (and their refusal), model switching in the explorer's selector,
a closed page's explanation being cancelled, the settings card, the stability pane, the
gallery's sort/show controls over the store and its pagination. All on real servers
(the shared ``served_app`` of tests/served.py, and one more with a second model) through
Debian's Chromium; expected values come from the real components run in this process.
"""

from __future__ import annotations

import re
import shutil

import pytest

from ..served import CAT, COFFEE, QUICK_SETTINGS, ROCKET, xai_panel_serve
from .test_dashboards import CAT_NAMES, PAGE_SIZE, open_gallery, thumb_ids, top_buttons, wait_thumb_count

pytestmark = pytest.mark.browser


def dataset_ids(root) -> list[str]:
    from xai_panel.data import open_dataset

    return [r.id for r in open_dataset(root)]


def open_settings(page):
    """Open the 'Explainer settings' card (its widgets are built when first opened)."""
    page.get_by_text("Explainer settings").click()
    page.get_by_text("Num samples").first.wait_for()


def set_number(page, label: str, value: int) -> None:
    field = page.locator(".bk-input-group").filter(has_text=label).locator("input").first
    field.fill(str(value))
    field.press("Enter")


def status_text(page, pattern: str):
    return page.get_by_text(re.compile(pattern)).first


def table_rows(page, header: str) -> list[list[str]]:
    """The body rows of the table whose header row contains ``header``, as cell texts, once it has one."""
    table = page.locator("table").filter(has=page.locator("th", has_text=header)).first
    table.locator("tbody tr").first.wait_for()  # a card below the method cards is built once the page is quiet
    return [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]


# -- the gallery over the store: pages, sort and show -----------------------------------------------

def test_the_gallery_pages_through_every_image_of_the_folder(page, served_app):
    ids = dataset_ids(served_app.data)
    assert len(ids) == 28
    open_gallery(page, served_app.url)
    page.get_by_text("Page 1 of 2 · 28 images").wait_for()
    assert thumb_ids(page) == ids[:PAGE_SIZE]
    previous, following = page.get_by_role("button", name="◀ Previous"), page.get_by_role("button", name="Next ▶")
    assert previous.is_disabled() and following.is_enabled()
    following.click()
    page.get_by_text("Page 2 of 2 · 28 images").wait_for()
    wait_thumb_count(page, len(ids) - PAGE_SIZE)
    assert thumb_ids(page) == ids[PAGE_SIZE:]
    assert following.is_disabled() and previous.is_enabled()
    previous.click()
    page.get_by_text("Page 1 of 2 · 28 images").wait_for()
    wait_thumb_count(page, PAGE_SIZE)
    assert thumb_ids(page) == ids[:PAGE_SIZE]


def test_sort_and_show_order_and_filter_the_gallery_by_the_store(page, served_app):
    from xai_panel.store import ExplanationStore

    ids = dataset_ids(served_app.data)
    open_gallery(page, served_app.url)
    page.get_by_text("Page 1 of 2 · 28 images").wait_for()
    sort = page.locator("select").filter(has=page.locator("option", has_text="Confidence (high first)"))
    show = page.locator("select").filter(has=page.locator("option", has_text="Predicted right (stored)"))

    def expected(descending: bool) -> list[str]:
        # Read when used: the server also stores what the other tests' clicks explained (with
        # the served model; an uploaded model's rows are not the gallery's).
        rows = ExplanationStore(served_app.store).summaries(served_app.model_id, sort_by="confidence",
                                                            descending=descending)
        stored = [r.image_id for r in rows if r.image_id in ids]
        assert len(stored) >= 4 and [r.confidence for r in rows] == sorted((r.confidence for r in rows),
                                                                          reverse=descending)
        return (stored + [i for i in ids if i not in stored])[:PAGE_SIZE]

    for option, descending in [("Confidence (high first)", True), ("Confidence (low first)", False)]:
        sort.select_option(label=option)
        want = expected(descending)
        page.locator(f".xp-thumb[data-id='{want[0]}']").wait_for()
        page.wait_for_function(
            """(want) => { const ids = []; (function walk(root) { root.querySelectorAll('*').forEach(e => {
                 if (e.classList && e.classList.contains('xp-thumb')) ids.push(e.dataset.id);
                 if (e.shadowRoot) walk(e.shadowRoot); }); })(document);
               return JSON.stringify(ids) === JSON.stringify(want); }""", arg=want)
        assert thumb_ids(page) == want

    summaries = ExplanationStore(served_app.store).summaries(served_app.model_id)
    right = [i for i in ids if any(r.image_id == i and r.correct is True for r in summaries)]
    wrong = [i for i in ids if any(r.image_id == i and r.correct is False for r in summaries)]
    assert COFFEE in right and ROCKET in wrong  # espresso is right; the rocket is no goldfish
    sort.select_option(label="Name")
    show.select_option(label="Predicted right (stored)")
    page.get_by_text(f"Page 1 of 1 · {len(right)} images").wait_for()
    wait_thumb_count(page, len(right))
    assert thumb_ids(page) == right
    show.select_option(label="Predicted wrong (stored)")
    page.get_by_text(f"Page 1 of 1 · {len(wrong)} images").wait_for()
    wait_thumb_count(page, len(wrong))
    assert thumb_ids(page) == wrong
    show.select_option(label="Every image")
    page.get_by_text("Page 1 of 2 · 28 images").wait_for()


# -- the settings card and the stability pane ---------------------------------------------------------

def lime_and_shap_only(page, num_samples: int) -> None:
    open_settings(page)
    # The first "anchors" button is the settings card's (the sidebar comes first); the other
    # is the stability pane's map chooser.
    page.get_by_role("button", name="anchors", exact=True).first.click()
    page.get_by_role("button", name="gradcam", exact=True).first.click()
    set_number(page, "Num samples", num_samples)


def test_the_settings_card_changes_the_next_explanation(page, served_app):
    open_gallery(page, served_app.url)
    lime_and_shap_only(page, 90)
    page.locator(f".xp-thumb[data-id='{COFFEE}']").click()
    status_text(page, r"coffee\.png.* explained in").wait_for()
    rows = {r[0]: r for r in table_rows(page, "forward passes")}
    # The trust metrics' row joins once they are measured, after the explanations: a race.
    methods = [name for name in rows if name != "trust metrics"]
    assert methods == ["segment + top-k", "LIME", "SHAP", "total"]  # no Anchors: deselected
    lime = rows["LIME"]
    assert int(lime[3]) + int(lime[4]) == 90  # every one of the 90 coalitions: a model pass or a cache hit


@pytest.mark.slow
def test_the_stability_pane_shows_the_report_of_the_image(page, served_app, tmp_path, monkeypatch):
    from xai_panel.components import ExplainerSettings, StabilityPane
    from xai_panel.data import load_image

    open_gallery(page, served_app.url)
    lime_and_shap_only(page, 60)
    page.locator(f".xp-thumb[data-id='{CAT}']").click()
    status_text(page, r"chelsea\.png.* explained in").wait_for()
    top = [re.sub(r"^\d\. | · .*$", "", t) for t in top_buttons(page).all_inner_texts()]
    page.get_by_role("button", name="Compute stability (5 explanations)").click()
    page.get_by_text(re.compile(r"3 seeds, 2 noisy copies \(σ = 2\)")).wait_for(timeout=240_000)
    shown = table_rows(page, "seed Jaccard")

    # The same report from the real component in this process (same model, settings and seeds).
    monkeypatch.setenv("XAI_PANEL_CACHE", str(served_app.data.parent / "cache"))  # the server's ONNX export
    settings = ExplainerSettings.from_dict({**QUICK_SETTINGS, "methods": ["lime", "shap"]})
    pane = StabilityPane(image=load_image(served_app.data / CAT), settings=settings)
    pane.compute()
    report = pane.wait().report
    assert [c.name for c in report.top] == top[: len(report.top)]
    want = [[m, f"{rank}. {c.name}"] for m in ("LIME", "SHAP") for rank, c in enumerate(report.top, 1)]
    assert [r[:2] for r in shown] == want
    for row, (method, per_class) in zip(shown, [(m, c) for m in ("lime", "shap") for c in report.top]):
        s = report.results[method][per_class.index]
        assert row[2] == f"{s.seed_jaccard:.2f}" and row[4] == f"{s.noise_jaccard:.2f}", row  # set overlaps: exact
        assert abs(float(row[3]) - s.seed_spearman) <= 0.011 and abs(float(row[5]) - s.noise_spearman) <= 0.011, row
    page.get_by_text(f"{report.forward_passes} forward passes in").wait_for()
    page.get_by_text(f"LIME std over runs · {top[0]}").wait_for()  # the spread map, of the top class


# -- a closed page -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_closing_a_page_cancels_its_explanation(browser, page, served_app):
    """The server has one compute thread: a job that would take many minutes holds it, and a
    second page's explanation waits behind it, until the first page is closed."""
    open_gallery(page, served_app.url)
    open_settings(page)
    page.locator("select").filter(has=page.locator("option", has_text="felzenszwalb")).select_option("slic")
    set_number(page, "Num samples", 50_000)  # tens of thousands of model passes: minutes on any CPU
    page.locator(f".xp-thumb[data-id='{COFFEE}']").click()
    status_text(page, r"Explaining \S*coffee\.png: lime").wait_for()

    other = browser.new_context(viewport={"width": 1600, "height": 2400})
    try:
        second = other.new_page()
        second.set_default_timeout(120_000)
        open_gallery(second, served_app.url)
        second.locator(f".xp-thumb[data-id='{CAT}']").click()
        top_buttons(second).first.wait_for()  # the fast lane answers; the explanation waits for the compute lane
        status_text(second, r"Explaining \S*chelsea\.png").wait_for()
        assert status_text(page, r"Explaining \S*coffee\.png: lime").is_visible()  # the first job still holds it
        page.context.close()
        status_text(second, r"chelsea\.png.* explained in").wait_for(timeout=120_000)
    finally:
        other.close()


# -- xai-panel serve --data DIR --model FILE, and switching the model --------------------------------

LLAMA = "llama"


def tiny_model(path) -> None:
    """A TorchScript classifier that answers 'llama' for every image (a bias wins over the
    small weights on the mean colours), with probabilities that depend on the image."""
    import torch

    from xai_panel.data import imagenet_classes

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = torch.nn.AdaptiveAvgPool2d(2)
            self.fc = torch.nn.Linear(12, 1000)
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                self.fc.weight.copy_(torch.randn(1000, 12, generator=generator) * 0.05)
                self.fc.bias.zero_()
                self.fc.bias[imagenet_classes().index(LLAMA)] = 6.0

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(x), 1))

    torch.jit.script(Tiny()).save(str(path))


def test_serve_refuses_a_bad_data_folder_or_model(tmp_path, capsys, monkeypatch):
    from xai_panel.cli import main

    monkeypatch.delenv("XAI_PANEL_DATA", raising=False)
    monkeypatch.delenv("XAI_PANEL_MODEL", raising=False)
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not an image")
    (empty / "sub" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    cases = [(["--data", str(tmp_path / "missing")], f"data folder {tmp_path / 'missing'} does not exist"),
             (["--data", str(empty)], f"No images found in {empty.resolve()}"),
             (["--model", str(tmp_path / "missing.pt")], f"model file {tmp_path / 'missing.pt'} does not exist"),
             (["--model", "no_such_model"], "unknown model 'no_such_model'")]
    for args, message in cases:
        assert main(["serve", *args, "--port", "0"]) == 2, args  # refused before Panel starts: nothing to stop
        err = capsys.readouterr().err
        assert err.startswith(f"xai-panel serve: error: {message}"), err
        if args[1] == str(empty):  # what was left out, and why
            assert "Skipped: 1 broken symlinks" in err and "1 files that are not images" in err, err


@pytest.mark.slow
def test_serve_with_data_and_model_then_switch_the_model(page, served_app, tmp_path_factory):
    from xai_panel.data import load_image
    from xai_panel.models import load_classifier

    base = tmp_path_factory.mktemp("second-model")
    root = base / "data"
    for rel in (CAT, COFFEE, ROCKET):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(served_app.data / rel, root / rel)
    model = base / "tiny.pt"
    tiny_model(model)
    expected = load_classifier(model, backend="torch", cache=False).top_k(load_image(root / CAT), 1)[0]
    assert expected.name == LLAMA
    # The shared app's cache: its ONNX export of the default model, which the switch loads.
    server = xai_panel_serve(base, "--data", str(root), "--model", str(model),
                             env_extra={"XAI_PANEL_CACHE": str(served_app.data.parent / "cache")})
    try:
        open_gallery(page, server.url)
        page.get_by_text(f"data · 3 images · model {model}").wait_for()
        assert thumb_ids(page) == dataset_ids(root)
        for rel in (CAT, COFFEE, ROCKET):  # every badge from the tiny model
            page.locator(f".xp-thumb[data-id='{rel}'] .xp-badge").filter(has_text=LLAMA).wait_for()

        page.goto(f"{server.url}/explorer")
        page.locator(f".xp-thumb[data-id='{CAT}']").click()
        top_buttons(page).first.filter(has_text=f"1. {LLAMA} · {100 * expected.probability:.1f}%").wait_for()
        chooser = page.locator("select").filter(has=page.locator("option", has_text="efficientnet_lite0"))
        assert chooser.input_value() == str(model)
        chooser.select_option("efficientnet_lite0")
        # Re-predicted with the new model: the image's classes and the gallery's badges.
        page.get_by_role("button", name=re.compile(rf"^1\. ({'|'.join(CAT_NAMES)}) · ")).wait_for(timeout=240_000)
        page.locator(f".xp-thumb[data-id='{COFFEE}'] .xp-badge").filter(has_text="espresso").wait_for()
        assert LLAMA not in " ".join(top_buttons(page).all_inner_texts())
    finally:
        server.stop()
    assert not server.our_tracebacks(), server.our_tracebacks()
