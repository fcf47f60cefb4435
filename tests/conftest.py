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
