"""The batch_size experiment (Wu & He's Table 2): a tiny run on the digits and the shape of
its results."""

import pytest

from bnnotes.experiments import RunConfig, get


@pytest.fixture(scope="module")
def tiny_batch_size_run():
    """batch_size at 2 epochs, batch sizes 2 and 16, seed 0: the records (its figure is
    checked from the committed results, tests/test_experiments.py)."""
    config = RunConfig(
        seed=0, progress=False, overrides={"epochs": 2, "batch_sizes": [2, 16]}
    )
    return get("batch_size").run(config)


def test_bn_fails_at_batch_size_two_where_gn_and_ln_do_not(
    tiny_batch_size_run,
):
    """At batch 2, BN's test error exceeds GN's and LN's by more than 20 points (the
    shape of Wu & He's Table 2)."""
    runs = tiny_batch_size_run["runs"]
    bn, gn, ln = (
        runs[m]["2"]["final_error"] for m in ("batch", "group", "layer")
    )
    assert bn > gn + 20 and bn > ln + 20


def test_bn_recovers_at_batch_size_sixteen(tiny_batch_size_run):
    """BN at batch 16 is far better than BN at batch 2: the failure is the
    batch size, not the network."""
    runs = tiny_batch_size_run["runs"]["batch"]
    assert runs["16"]["final_error"] < runs["2"]["final_error"] - 20


def test_learning_rate_scales_linearly_with_batch_size(tiny_batch_size_run):
    """lr = 0.1 * B / 32 for every run (Wu & He's rule)."""
    for runs in tiny_batch_size_run["runs"].values():
        for size, record in runs.items():
            assert record["lr"] == pytest.approx(0.1 * int(size) / 32)
