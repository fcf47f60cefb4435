import sys
from pathlib import Path

import pytest

# Make tests/helpers.py and tests/sitebuild.py importable from every test module,
# and tools/ (tools.sitehttp, tools.translations) from the repository root.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1]))


@pytest.fixture(scope="session")
def site_server(tmp_path_factory):
    """The site, built once per session, served on 127.0.0.1 at / and (a second build) at /bnnotes/.

    Both builds are strict and set site_url to where they are served. ``.builds`` maps
    "/" and "/bnnotes/" to the build results (rc, output, site); a failed build is reported
    by the tests that use it.
    """
    from sitebuild import ROOT, SUBPATH, build_many

    from tools.sitehttp import SiteServer

    server = SiteServer()
    base = tmp_path_factory.mktemp("sites")
    prefixes = ["/", SUBPATH]
    results = build_many(
        ROOT,
        [(base / f"site{i}", server.url(p)) for i, p in enumerate(prefixes)],
    )
    server.builds = dict(zip(prefixes, results))
    for prefix, result in server.builds.items():
        server.mount(prefix, result.site)
    with server:
        yield server


@pytest.fixture(scope="session")
def browser():
    """One Debian Chromium (Playwright) for every browser test and the PDF tests.

    Playwright's sync API cannot start while another sync instance runs in the same
    thread, so the whole session shares this one."""
    from tools.pdf import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's Chromium. Install it"
            " with\n  bash tools/system-deps.sh test\n"
            "(make test runs it before the tests)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield b
        b.close()
