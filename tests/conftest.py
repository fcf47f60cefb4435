"""Test settings shared by every test module: import paths, hypothesis profiles, the markers
of the tests that need the built site or a browser, and the ``site_server`` fixture."""

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import settings

# Make tests/helpers.py and tests/sitebuild.py importable from every test module,
# and tools/ (tools.sitehttp, tools.translations) from the repository root.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1]))

# Hypothesis: in CI (the CI environment variable is set, as CI services do) the examples
# are derived from each test's name, not drawn at random, so a red run fails the same way
# on the next run and on a developer's machine; 100 examples unless a test says otherwise.
# Elsewhere they are random (and the failing ones replayed from .hypothesis/).
settings.register_profile(
    "ci", derandomize=True, max_examples=100, print_blob=True
)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

#: Test modules that use the built site (the site build starts early when a run includes them).
SITE_MODULES = (
    "test_site.py",
    "test_browser.py",
    "test_browser_screens.py",
    "test_links.py",
    "test_notebooks.py",
)
#: Test modules that run experiments, notebooks, processes or site builds: seconds to
#: minutes each. ``make check`` (the edit loop) leaves them to ``make test``.
SLOW_MODULES = (
    "test_experiments.py",
    "test_exp_*.py",
    "test_covariate_shift.py",
    "test_distributed.py",
    "test_notebooks.py",
    "test_build_cache.py",
    "test_site.py",
)
#: Fixtures that drive Chromium.
BROWSER_FIXTURES = {"browser", "chromium", "tabs"}


def _xdist_controller(config) -> bool:
    """This process hands tests to pytest-xdist workers (it runs none itself)."""
    return config.pluginmanager.has_plugin("dsession")


def _runs_site_tests(config) -> bool:
    """Whether the run includes a module that uses the built site (a guess from the command
    line, to start building early; a test that needs the site waits for it anyway)."""
    if "not site" in (config.option.markexpr or ""):
        return False
    here = Path(config.invocation_params.dir)
    targets = [(here / arg.split("::", 1)[0]).resolve() for arg in config.args]
    modules = [Path(__file__).parent / name for name in SITE_MODULES]
    return any(
        module.resolve().is_relative_to(target)
        for module in modules
        for target in targets
    )


@pytest.hookimpl(trylast=True)  # after pytest-xdist's pytest_configure
def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "site: uses the built site (set on every test that uses site_server)",
    )
    config.addinivalue_line(
        "markers",
        "browser: drives Chromium (set on every test that uses a browser fixture)",
    )
    config.addinivalue_line(
        "markers",
        "slow: runs experiments, notebooks, processes or builds (tests/conftest.py)",
    )
    if not _xdist_controller(config):
        return
    # One build of the site for all workers, made and served by this process.
    from sitebuild import SiteBuilds, serve_build_requests

    base = Path(tempfile.mkdtemp(prefix="bnnotes-test-sites-"))
    site_builds = SiteBuilds(base)
    request_url, request_server = serve_build_requests(site_builds)
    config.bnnotes_sites = (site_builds, request_url, request_server, base)
    if _runs_site_tests(config):
        # while the workers start and run the other tests
        threading.Thread(
            target=lambda: site_builds.builds, daemon=True
        ).start()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist: tell each worker where the site builds are served."""
    site_builds, request_url, _, _ = node.config.bnnotes_sites
    node.workerinput["bnnotes_sites"] = {
        "origin": site_builds.origin,
        "request": request_url,
    }


def pytest_unconfigure(config):
    sites = getattr(config, "bnnotes_sites", None)
    if sites is not None:
        site_builds, _, request_server, base = sites
        request_server.shutdown()
        site_builds.stop()
        shutil.rmtree(base, ignore_errors=True)


#: Test files whose tests pytest-xdist hands out one by one (all other files: a whole file
#: to one worker, in order), except that tests which share a page load go out together:
#: those with the same parameter id, when it starts with one of GROUPED_IDS
#: (tests/test_browser.py: "page-root-en-home", each page's checks; "figures-ko", the checks
#: of the figures of one language).
SPREAD_MODULES = ("tests/test_browser.py",)
GROUPED_IDS = ("page-", "figures-")


def _spread(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0] in SPREAD_MODULES


def _spread_scope(nodeid: str) -> str:
    """The unit a spread test goes out in: the tests of its group
    ("tests/test_browser.py[page-root-en-home]") or the test itself."""
    module, _, rest = nodeid.partition("::")
    params = rest.partition("[")[2]
    return f"{module}[{params}" if params.startswith(GROUPED_IDS) else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (make test), except that the tests of ``SPREAD_MODULES`` go out
    one page (or one test) at a time, to whichever worker is free: Chromium on each page of
    each language, independent work that would otherwise end the run on one worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if _spread(nodeid):
                return _spread_scope(nodeid)
            return super()._split_scope(nodeid)

    return Scheduling(config, log)


def _schedule_rank(item) -> int:
    """Long work first, so that short tests fill the end of the run: experiments and other
    slow modules that do not need the site, then those that do (the site is built by then),
    then the rest, and the tests handed out one by one last."""
    slow = item.get_closest_marker("slow") is not None
    site = item.get_closest_marker("site") is not None
    if _spread(item.nodeid):
        return 3
    return 0 if slow and not site else 1 if slow else 2


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "site_server" in fixtures:
            item.add_marker(pytest.mark.site)
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if any(item.path.match(pattern) for pattern in SLOW_MODULES):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Under pytest-xdist (make test: --no-loadscope-reorder) the files go out to the
        # workers in this order. A stable sort: each file's tests keep their order.
        items.sort(key=_schedule_rank)


@pytest.fixture(scope="session")
def site_server(request, tmp_path_factory):
    """The site, built once per run, served on 127.0.0.1 at / and (a second build) at /bnnotes/.

    Both builds are strict and set site_url to where they are served. ``.builds`` maps
    "/" and "/bnnotes/" to the build results (rc, output, site); a failed build is reported
    by the tests that use it. ``.url(prefix)`` and ``.origin`` say where the site is served.
    Under pytest-xdist the controller builds and serves it once for all workers.
    """
    from sitebuild import RemoteSiteBuilds, SiteBuilds

    shared = getattr(request.config, "workerinput", {}).get("bnnotes_sites")
    if shared is not None:
        yield RemoteSiteBuilds(shared["origin"], shared["request"])
        return
    site_builds = SiteBuilds(tmp_path_factory.mktemp("sites"))
    try:
        site_builds.builds  # noqa: B018 (built now, as the fixture's setup)
        yield site_builds
    finally:
        site_builds.stop()


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
