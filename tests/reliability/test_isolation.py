"""Isolation: ids from a browser never reach a file outside the dataset.

tests/data pins ``Dataset.resolve`` for ``../``, absolute, Windows and non-canonical ids and
for links changed after the scan. A symlinked *file* the operator put in the folder is an
image of the dataset wherever it leads (under its own folder-relative id); nothing else is.
Added here: percent-encoded and NUL ids at the API (ids are never URL-decoded a second time,
so ``%2e%2e`` is just an unknown name), a symlinked *folder* leading out (not entered), and
the same ids sent in the served gallery's URL (the shared served app of tests/served.py,
whose folder has the same ways out, plus a link added after the server scanned it): each is
refused with the resolver's own message, and neither the secret text nor the private photo
(its thumbnail or its picture as the panes would draw it) reaches the page.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
import urllib.request

import pytest
from PIL import Image

from xai_panel.data import open_dataset
from xai_panel.render.thumbnails import ThumbnailStore

from ..served import LINKED
from ..served import SECRET_MARKER as MARKER


@pytest.fixture
def tree(tmp_path):
    """A dataset folder, a secret file and a private photo beside it, a symlinked folder to them,
    and a symlinked file to a photo elsewhere (an image of the dataset)."""
    root, outside, elsewhere = tmp_path / "data", tmp_path / "outside", tmp_path / "elsewhere"
    for folder in (root, outside, elsewhere):
        folder.mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(root / "cat.png")
    secret = outside / "secret.png"
    secret.write_text(f"{MARKER} root:x:0:0\n")
    Image.new("RGB", (32, 32), (30, 30, 200)).save(outside / "private.png")
    Image.new("RGB", (32, 32), (30, 200, 30)).save(elsewhere / "public.png")
    os.symlink(elsewhere / "public.png", root / "link.png")
    os.symlink(outside, root / "linked_folder")
    return root, secret


@pytest.mark.parametrize("evil_id, refusal", [
    # Never URL-decoded a second time: these are names the scan never listed.
    ("%2e%2e/outside/secret.png", KeyError),
    ("%2e%2e%2foutside%2fsecret.png", KeyError),
    ("..%2Foutside%2Fsecret.png", KeyError),
    ("~/.ssh/id_rsa", KeyError),
    # A symlinked folder is not entered, so what is inside is not even found.
    ("linked_folder/private.png", KeyError),
    ("linked_folder/secret.png", KeyError),
    # Unsafe spellings: refused as such before any lookup.
    ("link.png/../../outside/private.png", ValueError),
    ("../outside/private.png", ValueError),
    ("cat.png\0../outside/secret.png", ValueError),
    ("file:///etc/passwd", ValueError),
])
def test_resolve_never_returns_a_file_the_scan_did_not_find(tree, evil_id, refusal):
    root, _ = tree
    dataset = open_dataset(root)
    assert [r.id for r in dataset] == ["cat.png", "link.png"]  # the linked file is scanned, the folder is not
    assert dataset.resolve("link.png") == (root.parent / "elsewhere" / "public.png").resolve()
    with pytest.raises(refusal) as refused:
        dataset.resolve(evil_id)
    if refusal is ValueError:
        assert str(refused.value) == (f"Unsafe image id {evil_id!r}: ids are relative paths inside the dataset, "
                                      "without '..'")
    else:
        assert refused.value.args == (f"No image with id {evil_id!r} in dataset 'data'",)


# --- the served gallery ---------------------------------------------------------------------

DOCUMENT_TEXT = """() => {
  // Every string the page's Bokeh documents hold (HTML panes, thumbnails, messages), as the
  // server sent them: what a user of the page could get at, drawn or not.
  const plain = (k, v) => v instanceof Map ? Object.fromEntries(v) : v;
  const out = [];
  for (const doc of Bokeh.documents)
    for (const m of doc._all_models.values())
      for (const name of Object.keys(m.properties)) {
        let value;
        try { value = m[name]; } catch (e) { continue; }
        if (value === null || value === undefined || typeof value === "function") continue;
        if (typeof value === "string") { out.push(value); continue; }
        if (typeof value === "object" && value.id !== undefined && value.properties) continue;  // another model
        try { out.push(JSON.stringify(value, plain)); } catch (e) {}
      }
  return out.join("\\n");
}"""


def _get(url: str, timeout: float = 120) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode("utf-8", "replace")


@pytest.fixture
def private_views(served_app, tmp_path, monkeypatch):
    """What would show if the private photo were served: its file bytes (base64, as in a data
    URI), its gallery thumbnail and its picture in the image pane, made by the real components."""
    from xai_panel.components import ImagePane
    from xai_panel.data import ImageRecord, load_image

    monkeypatch.setenv("XAI_PANEL_CACHE", str(tmp_path / "cache"))
    private = served_app.data.parent / "outside" / "private.png"
    record = ImageRecord(id="private.png", path=private, label=None, label_name=None)
    thumbnail = ThumbnailStore(112).data_uri(record).split(",", 1)[1]
    picture = ImagePane(image=load_image(private)).html().split('src="data:', 1)[1].split('"', 1)[0].split(",", 1)[1]
    views = {"file bytes": base64.b64encode(private.read_bytes()).decode()[:400], "thumbnail": thumbnail[:400],
             "picture": picture[:400]}
    assert all(len(v) == 400 for v in views.values())  # long enough that a match is no coincidence
    return views


@pytest.mark.browser
def test_gallery_url_with_traversal_ids_is_refused_and_serves_nothing_outside(served_app, page, private_views):
    root = served_app.data
    secret = root.parent / "outside" / "secret.png"
    dataset = open_dataset(root)
    linked = ThumbnailStore(112).data_uri(dataset.get(LINKED))  # the symlinked photo's thumbnail, as the page has it
    assert dataset.get(LINKED).path == (root.parent / "tree" / LINKED).resolve()
    # Unsafe spellings are refused as such (ValueError) before any lookup; the others are
    # names the scan never listed (KeyError): the symlinked folder was not entered, and a link
    # to the private photo added after the server scanned the folder is no image of it.
    late = root / "late.png"
    os.symlink(root.parent / "outside" / "private.png", late)
    try:
        _refused_everywhere(served_app, page, private_views, dataset, linked, [
            ("../../etc/passwd", ValueError), (str(secret), ValueError), ("%2e%2e%2foutside%2fsecret.png", KeyError),
            ("linked_folder/private.png", KeyError), ("late.png", KeyError)])
    finally:
        late.unlink()  # the other tests scan the folder too
    status, html = _get(f"{served_app.url}/gallery?image=%2e%2e%2f%2e%2e%2fetc%2fpasswd")  # decoded exactly once
    assert status == 200 and "root:x:0:0" not in html
    assert served_app.proc.poll() is None
    assert not served_app.our_tracebacks(), served_app.our_tracebacks()


def _refused_everywhere(served_app, page, private_views: dict, dataset, linked: str, evil: list) -> None:
    """Each id of ``evil`` in the gallery's URL: refused (the resolver's own message), and nothing
    private on the page, while the symlinked photo's thumbnail (``linked``) is."""
    for image_id, refusal in evil:
        url = f"{served_app.url}/gallery?" + urllib.parse.urlencode({"image": image_id})
        status, html = _get(url)
        assert status == 200, image_id
        assert MARKER not in html and "root:x:0:0" not in html, image_id
        assert not [k for k, v in private_views.items() if v in html], image_id

        with pytest.raises(refusal) as refused:
            dataset.resolve(image_id)
        page.goto(url)
        message = page.locator(".xp-gallery-message")
        message.get_by_text(f"The URL's image was refused: {refused.value}", exact=True).wait_for()
        page.get_by_text("Select an image to explain it.").wait_for()  # the session was never given a file
        assert page.locator(".xp-thumb[aria-pressed=true]").count() == 0, image_id
        assert page.locator(".xp-image img").count() == 0, image_id
        page.locator(f".xp-thumb[data-id='{LINKED}'] img[src^='data:image/jpeg']").wait_for()
        text = page.evaluate(DOCUMENT_TEXT)
        assert len(text) > 10_000 and "tabby/chelsea.png" in text  # the whole document, thumbnails included
        assert linked in text, "the symlinked photo's thumbnail is not on the page"  # a link is an image
        assert MARKER not in text and "root:x:0:0" not in text, image_id
        leaked = [k for k, v in private_views.items() if v in text]
        assert not leaked, f"{image_id}: the private photo's {leaked} reached the page"
