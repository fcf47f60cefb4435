"""`make bench`'s comparison with an earlier revision: the old package is the one timed, and
today's comes back afterwards."""

import sys
from pathlib import Path

import pytest
from helpers import load_module

import bnnotes.batchnorm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_module(ROOT / "benchmarks" / "bench.py", "bnnotes_bench")


def test_baseline_package_is_the_revisions_bnnotes(bench, tmp_path):
    """`baseline_package` extracts the revision's bnnotes/ with its modules."""
    folder = bench.baseline_package("HEAD", tmp_path)
    assert (folder / "bnnotes" / "batchnorm.py").is_file()
    assert (folder / "bnnotes" / "__init__.py").is_file()


def test_unknown_revision_is_named_in_the_error(bench, tmp_path):
    """A revision that is not in the clone raises RuntimeError naming it."""
    with pytest.raises(
        RuntimeError, match="no-such-revision-0 is not in this clone"
    ):
        bench.baseline_package("no-such-revision-0", tmp_path)


def test_imported_from_loads_the_other_package_and_restores_todays(
    bench, tmp_path
):
    """Inside `imported_from`, `bnnotes.batchnorm` is the extracted file; after it, today's
    module object is back in sys.modules and sys.path is as before."""
    folder = bench.baseline_package("HEAD", tmp_path)
    path_before = list(sys.path)
    with bench.imported_from(folder):
        from bnnotes.batchnorm import batch_norm_forward as old_forward

        assert Path(sys.modules["bnnotes.batchnorm"].__file__).is_relative_to(
            folder
        )
    assert sys.modules["bnnotes.batchnorm"] is bnnotes.batchnorm
    assert sys.path == path_before
    assert old_forward is not bnnotes.batchnorm.batch_norm_forward
    assert Path(old_forward.__code__.co_filename).is_relative_to(folder)
