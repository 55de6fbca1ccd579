"""``xai-panel store export`` (JSON + PNGs, or ``--html``) and ``store import``: a stored explanation by
every method leaves the store and comes back equal, under the same keys; bad input gets a message."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from xai_panel.cli import main
from xai_panel.store import ExplainRequest, ExplanationStore, find_results

from ..render.conftest import EVERY_METHOD, explain_every_method
from .test_store_metrics import assert_same


@pytest.fixture(scope="module")
def stored(classifier, photos, tmp_path_factory):
    """A store holding one photo explained by every method, with its trust metrics."""
    record, image, h = photos[0]
    explanation = explain_every_method(classifier, image)
    request = ExplainRequest.from_explanation(explanation)
    path = tmp_path_factory.mktemp("export") / "store.sqlite"
    with ExplanationStore(path) as store:
        keys = store.put(explanation, h, request=request, record=record)
    assert len(keys) == len(EVERY_METHOD)
    return path, record, h, request, explanation


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["store", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_export_then_import_gives_back_every_result_under_its_key(stored, tmp_path, capsys):
    path, record, h, request, explanation = stored
    code, out, err = _run(capsys, "export", record.id, "--store", path, "--out", tmp_path / "out")
    assert code == 0, err
    folders = out.split()
    assert len(folders) == len(EVERY_METHOD)
    document = json.loads((tmp_path / "out" / folders[0].rsplit("/", 1)[-1] / "result.json").read_text())
    assert document["image_id"] == record.id and document["true_label"] == record.label

    fresh = tmp_path / "fresh.sqlite"
    code, out, err = _run(capsys, "import", tmp_path / "out", "--store", fresh)
    assert code == 0, err
    assert f"imported {len(EVERY_METHOD)} result(s)" in out
    with ExplanationStore(fresh) as store, ExplanationStore(path) as original:
        assert sorted(find_results(store, h)) == sorted(find_results(original, h))
        back = store.get(h, request)
        assert back.methods == explanation.methods
        for method in EVERY_METHOD:
            assert_same(dict(explanation.results[method]), dict(back.results[method]), method)
            assert back.costs[method] == explanation.costs[method]
        assert_same(dict(explanation.faithfulness), dict(back.faithfulness), "faithfulness")
        assert back.metric_settings["faithfulness"] == explanation.metric_settings["faithfulness"]
        [summary] = store.summaries()
        assert (summary.image_id, summary.label, summary.label_name) == (record.id, record.label, record.label_name)
    # imported again: the same rows, nothing doubled
    assert _run(capsys, "import", tmp_path / "out", "--store", fresh)[0] == 0
    with ExplanationStore(fresh) as store:
        assert store.count() == len(EVERY_METHOD)


def test_export_html_writes_one_report_with_every_stored_method(stored, tmp_path, capsys):
    path, record, h, request, explanation = stored
    code, out, err = _run(capsys, "export", h[:12], "--html", "--store", path, "--out", tmp_path / "reports")
    assert code == 0, err
    [report] = out.split()
    assert report.endswith(f"{Path(record.id).stem}_report.html")
    text = open(report, encoding="utf-8").read()
    assert [m for m in re.findall(r'id="method-(\w+)"', text)] == list(EVERY_METHOD)
    assert text.count('class="map"') == len(EVERY_METHOD) * len(explanation.top)
    for method in EVERY_METHOD:
        assert f"{explanation.costs[method].forward_passes} forward passes" in text
    assert "<h3>Faithfulness</h3>" in text and "<h3>Agreement</h3>" in text  # the stored trust metrics
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text) and "<script" not in text


def test_export_of_an_unknown_ref_says_so(stored, tmp_path, capsys):
    path = stored[0]
    for extra in ((), ("--html",)):
        code, out, err = _run(capsys, "export", "no-such-image.JPEG", *extra, "--store", path, "--out", tmp_path)
        assert code == 2 and out == ""
        assert err.startswith("xai-panel store export: error: nothing stored for 'no-such-image.JPEG'")
        assert "store info" in err and len(err.splitlines()) == 1
    code, _, err = _run(capsys, "export", "abcdef", "--store", tmp_path / "missing.sqlite")
    assert code == 2 and "no store at" in err


def test_import_refuses_what_is_not_an_export(stored, tmp_path, capsys):
    path, record, h, _, _ = stored
    code, _, err = _run(capsys, "import", tmp_path / "nothing-here", "--store", tmp_path / "s.sqlite")
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, "import", tmp_path / "empty", "--store", tmp_path / "s.sqlite")
    assert code == 2 and "no result.json found" in err
    # an edited export: its key no longer matches its settings
    assert _run(capsys, "export", record.id, "--store", path, "--out", tmp_path / "out")[0] == 0
    folder = next((tmp_path / "out").glob("*_lime_*"))
    edited = tmp_path / "edited"
    shutil.copytree(folder, edited)
    document = json.loads((edited / "result.json").read_text())
    document["config"]["seed"] += 1
    (edited / "result.json").write_text(json.dumps(document))
    code, _, err = _run(capsys, "import", edited, "--store", tmp_path / "s.sqlite")
    assert code == 2 and "its key does not match its settings" in err
    # an export of an older version (no format, no superpixels)
    del document["format"], document["segmentation"]["labels"]
    (edited / "result.json").write_text(json.dumps(document))
    code, _, err = _run(capsys, "import", edited, "--store", tmp_path / "s.sqlite")
    assert code == 2 and "written by an older xai-panel" in err
    # a damaged picture
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    (damaged / "image.png").unlink()
    code, _, err = _run(capsys, "import", damaged, "--store", tmp_path / "s.sqlite")
    assert code == 2 and "image.png is missing" in err
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        assert store.count() == 0  # nothing half-imported
