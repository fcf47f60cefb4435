r"""Running a function in several processes joined in a ``torch.distributed`` process group.

[`spawn_ranks`][bnnotes.processes.spawn_ranks] starts ``world_size`` fresh processes, joins
them in a gloo process group on the loopback interface (a file store in a temporary
directory for the rendezvous), runs a function in each with a timeout, and returns the
results by rank; [`RankFailure`][bnnotes.processes.RankFailure] reports every rank that
raised or did not report in time. The synchronized batch normalization of
[`bnnotes.distributed`][bnnotes-distributed] is tested and shown with it; the harness
itself knows nothing of normalization.
"""

from __future__ import annotations

import datetime
import os
import pickle
import queue as queue_module
import socket
import tempfile
import time
import traceback
from collections.abc import Callable

import torch.distributed as dist
import torch.multiprocessing as mp

from bnnotes import _validation as check

__all__ = ["RankFailure", "spawn_ranks"]


class RankFailure(RuntimeError):
    """One or more ranks of a [`spawn_ranks`][bnnotes.processes.spawn_ranks] run failed.

    Attributes
    ----------
    errors : dict of int to str
        For each failed rank, ``"ExceptionType: message"`` (or why it did not report).
    tracebacks : dict of int to str
        The formatted traceback of each rank that raised.

    Examples
    --------
    >>> from bnnotes.processes import RankFailure
    >>> error = RankFailure({1: "ValueError: bad shard"}, {1: "Traceback ..."})
    >>> print(error)
    1 rank(s) failed:
      rank 1: ValueError: bad shard
    >>> error.errors
    {1: 'ValueError: bad shard'}
    """

    def __init__(self, errors: dict[int, str], tracebacks: dict[int, str]):
        self.errors = dict(sorted(errors.items()))
        self.tracebacks = dict(sorted(tracebacks.items()))
        lines = [
            f"  rank {rank}: {message}"
            for rank, message in self.errors.items()
        ]
        super().__init__(
            f"{len(self.errors)} rank(s) failed:\n" + "\n".join(lines)
        )


def _loopback_interface() -> str | None:
    names = (
        {name for _, name in socket.if_nameindex()}
        if hasattr(socket, "if_nameindex")
        else set()
    )
    return next((name for name in ("lo", "lo0") if name in names), None)


def _rank_entry(
    rank, world_size, store_path, timeout_s, fn, args, results
) -> None:
    """Body of each spawned process: join the gloo group, run fn, report, leave the group."""
    interface = _loopback_interface()
    if interface is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = (
            interface  # gloo's sockets on the loopback only
        )
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"file://{store_path}",
            world_size=world_size,
            rank=rank,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
        try:
            value = fn(rank, world_size, *args)
        finally:
            dist.destroy_process_group()
        results.put((rank, "ok", pickle.dumps(value)))
    except BaseException as err:
        # Report everything, KeyboardInterrupt included.
        results.put((
            rank,
            "error",
            f"{type(err).__name__}: {err}",
            traceback.format_exc(),
        ))


def spawn_ranks(
    fn: Callable,
    world_size: int,
    *args,
    timeout: float = 30.0,
    startup: float = 60.0,
) -> list:
    r"""Run ``fn(rank, world_size, *args)`` in ``world_size`` new processes joined in a gloo group.

    Parameters
    ----------
    fn : callable
        A module-level function (the processes are started with the ``spawn`` method, so
        it is pickled by name). Its return value must be picklable, e.g. NumPy arrays.
    world_size : int
        Number of processes, at least 1.
    *args
        Further arguments of ``fn``, pickled once per process.
    timeout : float, optional
        The process group's timeout in seconds: a collective that waits longer raises.
        Default 30.
    startup : float, optional
        Seconds allowed on top of ``2 * timeout`` for starting the processes; after that the
        parent stops waiting and terminates what is left. Default 60.

    Returns
    -------
    list
        ``fn``'s return values, indexed by rank.

    Raises
    ------
    RankFailure
        If any rank raised or did not report in time; ``errors`` maps each failed rank to
        its message.
    TypeError, ValueError
        If ``fn`` is not callable or ``world_size`` / the timeouts are invalid.

    Notes
    -----
    The rendezvous uses a file store in a fresh temporary directory and gloo's sockets are
    bound to the loopback interface, so nothing listens on an external address.

    Examples
    --------
    Two processes, each running [`sync_bn_shard_step`][bnnotes.distributed.sync_bn_shard_step]
    on its shard of 5 and 3 examples:

    >>> import numpy as np
    >>> from bnnotes.distributed import sync_bn_shard_step
    >>> from bnnotes.processes import spawn_ranks
    >>> rng = np.random.default_rng(0)
    >>> x, dy = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    >>> ranks = spawn_ranks(sync_bn_shard_step, 2, x, dy, [5, 3], timeout=20)
    >>> y = np.concatenate([r["y"] for r in ranks])
    >>> bool(
    ...     np.allclose(
    ...         y, (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    ...     )
    ... )
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    world_size = check.positive_int(world_size, "world_size")
    timeout = check.nonnegative(timeout, "timeout")
    startup = check.nonnegative(startup, "startup")
    limit = 2 * timeout + startup
    context = mp.get_context("spawn")
    results = context.Queue()
    with tempfile.TemporaryDirectory(prefix="bnnotes-ranks-") as tmp:
        store = os.path.join(tmp, "store")
        processes = [
            context.Process(
                target=_rank_entry,
                args=(rank, world_size, store, timeout, fn, args, results),
                daemon=True,
            )
            for rank in range(world_size)
        ]
        for process in processes:
            process.start()
        deadline = time.monotonic() + limit
        try:
            reports = _collect(results, processes, deadline)
        finally:
            _stop(processes, deadline)
            results.close()
    return _values_or_failure(reports, processes, limit)


def _collect(results, processes, deadline: float) -> dict[int, tuple]:
    """The ranks' reports, until all have reported, all have exited or the deadline passed."""
    reports: dict[int, tuple] = {}
    while len(reports) < len(processes) and time.monotonic() < deadline:
        try:
            report = results.get(timeout=0.2)
        except queue_module.Empty:
            if not any(p.is_alive() for p in processes) and results.empty():
                break
            continue
        reports[report[0]] = report[1:]
    return reports


def _stop(processes, deadline: float) -> None:
    """Join every process until the deadline (5 s at most each), then terminate what is left."""
    for process in processes:
        process.join(timeout=max(0.0, min(5.0, deadline - time.monotonic())))
        if process.is_alive():
            process.terminate()
            process.join(timeout=5.0)


def _values_or_failure(
    reports: dict[int, tuple], processes, limit: float
) -> list:
    """The values by rank, or a RankFailure naming every rank that raised or did not report."""
    errors, tracebacks, values = {}, {}, {}
    for rank, process in enumerate(processes):
        report = reports.get(rank)
        if report is None:
            errors[rank] = (
                f"no report (exit code {process.exitcode}); the process died or did not finish "
                f"within {limit:.0f} s and was terminated"
            )
        elif report[0] == "error":
            errors[rank], tracebacks[rank] = report[1], report[2]
        else:
            values[rank] = pickle.loads(report[1])
    if errors:
        raise RankFailure(errors, tracebacks)
    return [values[rank] for rank in range(len(processes))]
