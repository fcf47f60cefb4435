"""The pages that `make lighthouse` scores (tools/lighthouse/run.py `pages`), on a small
site written by the test."""

from __future__ import annotations

import pytest
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


def _report(score: float) -> dict:
    return {"categories": {"performance": {"score": score}}}


def test_median_run_is_the_run_with_the_middle_performance_score():
    """Of several runs of a page, the one reported has the median performance score
    (the lower middle one for an even count)."""
    runs = [_report(s) for s in (0.97, 0.88, 0.94)]
    assert lighthouse.median_run(runs) is runs[2]
    assert (
        lighthouse.performance(
            lighthouse.median_run([_report(0.9), _report(0.99)])
        )
        == 90
    )


def test_median_run_of_no_runs_is_an_error():
    """No reports: a ValueError that names the function, not an IndexError."""
    with pytest.raises(ValueError, match="median_run: no reports"):
        lighthouse.median_run([])


def test_runs_below_one_are_refused(capsys):
    """--runs 0 stops with a message naming the option, before anything is built."""
    with pytest.raises(SystemExit) as exit_info:
        lighthouse.main(["--runs", "0"])
    assert exit_info.value.code == 2
    assert "--runs must be at least 1, got 0" in capsys.readouterr().err
