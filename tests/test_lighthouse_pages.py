"""The pages that `make lighthouse` scores (tools/lighthouse/run.py `pages`), on a small
site written by the test."""

from __future__ import annotations

from helpers import load_module
from sitebuild import ROOT

lighthouse = load_module(
    ROOT / "tools" / "lighthouse" / "run.py", "lighthouse_run"
)


def _page(folder, body: str, image: bytes | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = '<img src="figure.svg" alt="">' if image is not None else ""
    (folder / "index.html").write_text(
        f"<!doctype html><html><body>{img}{body}</body></html>", "utf-8"
    )
    if image is not None:
        (folder / "figure.svg").write_bytes(image)


def _site(tmp_path, many_elements: bool = True):
    """Per language: a home page, a page heavy in image bytes and a page with many small
    elements (fewer bytes in all); with many_elements=False the image page has both."""
    for prefix in lighthouse.LANGS.values():
        base = tmp_path / prefix
        _page(base, "<p>home</p>")
        extra = "" if many_elements else "<i>y</i>" * 50
        _page(
            base / "figures", "<p>one figure</p>" + extra, image=b"x" * 50_000
        )
        spans = 2_000 if many_elements else 10
        _page(base / "formulas", "<span>x</span>" * spans)
    return tmp_path


def test_elements_counts_start_tags_only():
    """A page's elements are its start tags: no end tags, comments or doctype."""
    assert lighthouse.TAG_RE.findall(
        "<!doctype html><p>a<!-- c --><b>b</b></p>"
    ) == [
        "<p",
        "<b",
    ]


def test_pages_adds_the_page_with_the_most_elements(tmp_path):
    """Each language gets its home, its heaviest page (bytes of HTML and images) and, when
    another page has more elements, that page as "most elements"."""
    pages = dict(lighthouse.pages(_site(tmp_path)))
    assert pages == {
        "en home": "",
        "en heaviest": "figures/",
        "en most elements": "formulas/",
        "ko home": "ko/",
        "ko heaviest": "ko/figures/",
        "ko most elements": "ko/formulas/",
        "zh home": "zh/",
        "zh heaviest": "zh/figures/",
        "zh most elements": "zh/formulas/",
    }


def test_pages_scores_the_heaviest_page_once_when_it_has_the_most_elements(
    tmp_path,
):
    """When the heaviest page also has the most elements, it is not scored twice."""
    labels = [label for label, _ in lighthouse.pages(_site(tmp_path, False))]
    assert labels == [
        f"{lang} {kind}"
        for lang in ("en", "ko", "zh")
        for kind in ("home", "heaviest")
    ]
