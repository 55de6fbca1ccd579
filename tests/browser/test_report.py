"""The one-file report opens in Chromium with the network cut off: nothing is fetched, and every
method's maps are there and decode. No server: the report is a file (``file://``)."""

from __future__ import annotations

from xai_panel.render.report import report_html

from ..render.conftest import EVERY_METHOD, every_method  # noqa: F401  (a fixture)

SCREENSHOT = "/tmp/report.png"


def test_the_report_opens_offline_with_every_methods_maps(page, every_method, tmp_path):  # noqa: F811
    path = tmp_path / "chelsea_report.html"
    path.write_text(report_html(every_method, title="chelsea.png"), encoding="utf-8")
    url = path.as_uri()
    attempted, served = [], []

    def only_the_file(route):
        if route.request.url == url:
            served.append(route.request.url)
            route.continue_()
        else:  # anything else the page would load: refused, and noted
            attempted.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_file)
    page.goto(url, wait_until="load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert served == [url]
    assert attempted == [], f"the report asked for other resources: {attempted}"

    images = page.evaluate("""Array.from(document.images).map(i => ({
        cls: i.className, alt: i.alt, width: i.naturalWidth, height: i.naturalHeight,
        section: i.closest('section') ? i.closest('section').id : null,
        shown: i.getBoundingClientRect().width > 0}))""")
    assert all(i["width"] > 0 and i["height"] > 0 and i["shown"] for i in images), images
    assert [i["cls"] for i in images].count("image") == 1
    top = len(every_method.top)
    for method in EVERY_METHOD:
        maps = [i for i in images if i["section"] == f"method-{method}" and i["cls"] == "map"]
        assert len(maps) == top, method
        assert all(i["width"] == every_method.image.shape[1] for i in maps)
    titles = page.locator("section.method h2").all_inner_texts()
    assert len(titles) == len(EVERY_METHOD) and titles[0].startswith("LIME")
    assert page.locator("table.top-classes tbody tr").count() == top
    assert page.locator("table.faithfulness").is_visible() and page.locator("table.agreement").first.is_visible()
    page.screenshot(path=SCREENSHOT, full_page=True)
