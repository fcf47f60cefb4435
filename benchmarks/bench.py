"""``make bench``: how fast the numerics, the site build and the experiments are, in one run.

Speed is measured here, never by timed tests. One run measures

1. the ``bnnotes`` NumPy kernels against torch on the CPU: the same input, torch given as
   many threads as NumPy's BLAS uses, the median of repeated runs, and the ratio
   bnnotes / torch, for forward, backward and forward+backward, float32 and float64, at
   (256, 1024) and (32, 64, 32, 32); layer norm and group norm too once
   ``bnnotes.layernorm`` / ``bnnotes.groupnorm`` exist. Also each kernel's peak extra
   memory (tracemalloc) in multiples of the input's size;
2. the baseline: the same NumPy kernels against those of an earlier revision
   (``BASELINE_REV``, extracted with ``git archive``), alternating in one run, with the
   target that today's forward+backward time and peak memory are within 5 % of before;
3. the site: a full ``mkdocs build --strict`` of every language (median of 3, with the build
   cache of ``hooks/site_cache.py``; once with an empty cache and once without it, for
   reference); and, in a temporary copy of the project, so the working tree is never
   touched, ``make serve`` (``tools/serve.py``): the time from its start to the first page
   (median of 3 starts), the time from a one-line edit of an English and of a Korean page to
   the served page showing it (median of 3 each), and then every served page and the search
   index against a full build of the edited tree, byte for byte;
4. each registered experiment's ``--quick`` wall time, and their total.

It prints a markdown table, marks each target met or missed, and writes the table to
``bench-results.md`` (ignored by git). Progress goes to standard error.

Usage: ``python benchmarks/bench.py [--parts kernels,baseline,site,experiments]
[--baseline REV|none] [--output FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import importlib
import importlib.util
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import serve  # noqa: E402 (after the sys.path line above)

# Targets of the benchmark issue, for this 2-core machine.
TARGET_BN_RATIO = 1.5  # BN forward+backward, float32, bnnotes time / torch time, at both sizes
TARGET_BN_MEMORY = (
    3  # BN forward+backward: at most this many arrays the size of x ...
)
MEMORY_SLACK = 0.25  # ... plus per-channel vectors and row patterns, together under a quarter of x
TARGET_BUILD_S = (
    8.0  # full strict build of every language (build cache filled)
)
TARGET_START_S = 8.0  # `make serve`: start until the first page is served
TARGET_REBUILD_S = (
    1.5  # `make serve`: a one-line edit until the served page shows it
)
TARGET_EXPERIMENTS_S = 300.0  # every --quick experiment together
# The revision before the private kernels module (bnnotes/_kernels.py): its NumPy kernels are
# timed against today's in the same run, in alternating blocks, so "speed and memory within 5 %
# of before" is judged on one machine state. `--baseline none` skips it.
BASELINE_REV = "68831a6"
TARGET_BASELINE_RATIO = 1.05  # today's time (and peak memory) / the baseline's
BASELINE_ROUNDS = 10  # alternating blocks per side: the two are close, so more than against torch
INCONCLUSIVE = (
    "**inconclusive** (the median ratio and the ratio of minima disagree: the machine "
    "was busy)"
)
#: How a target reads in the tables: met, missed, or (None) decided by other processes.
STATUS = {True: "met", False: "**missed**", None: INCONCLUSIVE}

SHAPES = [(256, 1024), (32, 64, 32, 32)]
DTYPES = [np.float32, np.float64]
PASSES = ["forward", "backward", "fwd+bwd"]


def log(message: str) -> None:
    print(
        f"[bench {time.strftime('%H:%M:%S')}] {message}",
        file=sys.stderr,
        flush=True,
    )


def load() -> str:
    """The 1, 5 and 15 minute load averages, for judging how noisy a run was."""
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


# --------------------------------------------------------------------------- threads


def blas_threads() -> tuple[int, str]:
    """Threads of NumPy's BLAS (OpenBLAS), read from the loaded library; CPU count otherwise."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            libs = sorted({
                line.split()[-1]
                for line in maps
                if "openblas" in line.lower() and "/" in line
            })
        for path in libs:
            lib = ctypes.CDLL(path)
            for symbol in (
                "scipy_openblas_get_num_threads64_",
                "openblas_get_num_threads64_",
                "openblas_get_num_threads",
            ):
                if hasattr(lib, symbol):
                    return int(
                        getattr(lib, symbol)()
                    ), f"{Path(path).name}: {symbol}()"
    except OSError:
        pass
    n = (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 1
    )
    return n, "BLAS thread count unreadable; assumed the CPU count"


# --------------------------------------------------------------------------- timing


def median_times(
    funcs: dict[str, callable],
    rounds: int = 4,
    block_s: float = 0.15,
    min_block: int = 5,
    pause_s: float = 0.3,
):
    """Median (and spread, minimum) seconds per call of each function, timed in alternating blocks.

    Each round runs every function for a block of calls (at least ``min_block`` calls and
    ``block_s`` seconds), with a pause after each block. Alternating spreads the load of other
    processes over all functions alike; the pause lets the worker threads of the library just
    timed go idle: OpenBLAS's keep spinning for about 0.1 s after a call, and while they spin,
    torch's two threads run up to 10 times slower.
    """
    for f in funcs.values():  # warm up: caches, allocator, lazy initialisation
        for _ in range(3):
            f()
    time.sleep(pause_s)
    times = {name: [] for name in funcs}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, f in funcs.items():
                start = time.perf_counter()
                calls = 0
                while (
                    calls < min_block or time.perf_counter() - start < block_s
                ):
                    t0 = time.perf_counter()
                    f()
                    times[name].append(time.perf_counter() - t0)
                    calls += 1
                time.sleep(pause_s)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: _summary(ts) for name, ts in times.items()}


def _summary(ts: list[float]) -> tuple[float, float, float]:
    """(median, interquartile range / median, minimum): the time, how noisy
    it was, the fastest call."""
    q1, q2, q3 = statistics.quantiles(ts, n=4)
    return q2, (q3 - q1) / q2, min(ts)


def peak_extra_memory(f) -> int:
    """Peak bytes allocated (and traced by tracemalloc, which sees NumPy's arrays) while f runs."""
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = f()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak - base


# --------------------------------------------------------------------------- kernels


@dataclass
class Kernel:
    """One normalization: bnnotes' forward/backward and torch's, on the same input."""

    name: str
    ours_forward: callable  # () -> (y, cache)
    ours_backward: callable  # (cache) -> grads
    torch_forward: callable  # () -> y (a tensor in an autograd graph)
    torch_backward: callable  # (y) -> grads


@dataclass
class KernelResult:
    name: str
    dtype: str
    shape: tuple
    ours: dict = field(default_factory=dict)  # pass -> seconds
    torch: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)  # pass -> peak extra / x.nbytes
    spread: dict = field(
        default_factory=dict
    )  # pass -> larger IQR / median of the two sides
    min_ratio: dict = field(
        default_factory=dict
    )  # pass -> fastest bnnotes call / fastest torch call
    one_thread_ratio: float | None = (
        None  # fwd+bwd against torch on one thread
    )
    skipped: str = ""


def _inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, size=shape).astype(dtype)
    dy = rng.normal(size=shape).astype(dtype)
    return x, dy, rng


def _tensors(torch, *arrays):
    """Leaf tensors that require grad, on copies (x shares memory with the NumPy input)."""
    return [
        torch.from_numpy(a if i == 0 else a.copy()).requires_grad_()
        for i, a in enumerate(arrays)
    ]


def batchnorm_kernel(x, dy, rng, torch) -> Kernel:
    import torch.nn.functional as F

    from bnnotes.batchnorm import batch_norm_backward, batch_norm_forward

    c = x.shape[1]
    gamma, beta = (
        rng.normal(size=c).astype(x.dtype),
        rng.normal(size=c).astype(x.dtype),
    )
    xt, gt, bt = _tensors(torch, x, gamma, beta)
    dyt = torch.from_numpy(dy)
    return Kernel(
        name="batch norm",
        ours_forward=lambda: batch_norm_forward(x, gamma, beta),
        ours_backward=lambda cache: batch_norm_backward(dy, cache),
        torch_forward=lambda: F.batch_norm(
            xt, None, None, gt, bt, training=True
        ),
        torch_backward=lambda y: torch.autograd.grad(
            y, (xt, gt, bt), dyt, retain_graph=True
        ),
    )


def optional_kernel(module_name: str, x, dy, rng, torch) -> Kernel | str:
    """Layer norm or group norm once bnnotes has the module ("absent" otherwise).

    Called as ``layer_norm_forward(x, x.shape[1:], gamma, beta)`` (gamma, beta of shape
    ``x.shape[1:]``, as torch's) and ``group_norm_forward(x, 32, gamma, beta)`` (shape ``(C,)``),
    then ``*_backward(dy, cache)``. Used only if the forward reproduces torch in float64;
    otherwise the table says why (adapt this function to the module's API).
    """
    import torch.nn.functional as F

    if importlib.util.find_spec(module_name) is None:
        return "absent"
    module = importlib.import_module(module_name)
    if module_name.endswith("layernorm"):
        forward, backward = (
            module.layer_norm_forward,
            module.layer_norm_backward,
        )
        name, arg, param_shape = "layer norm", tuple(x.shape[1:]), x.shape[1:]

        def reference(xt, gt, bt):
            return F.layer_norm(xt, x.shape[1:], gt, bt)

    else:
        groups = 32
        forward, backward = (
            module.group_norm_forward,
            module.group_norm_backward,
        )
        name, arg, param_shape = (
            f"group norm, {groups} groups",
            groups,
            (x.shape[1],),
        )

        def reference(xt, gt, bt):
            return F.group_norm(xt, groups, gt, bt)

    gamma, beta = (
        rng.normal(size=param_shape).astype(x.dtype),
        rng.normal(size=param_shape).astype(x.dtype),
    )
    as64 = [a.astype(np.float64) for a in (x, gamma, beta)]
    ours64 = forward(as64[0], arg, as64[1], as64[2])[0]
    with torch.no_grad():
        ref64 = reference(*(torch.from_numpy(a) for a in as64)).numpy()
    if not np.allclose(ours64, ref64, rtol=1e-6, atol=1e-8):
        return f"{forward.__name__} does not match torch; adapt benchmarks/bench.py"
    xt, gt, bt = _tensors(torch, x, gamma, beta)
    dyt = torch.from_numpy(dy)
    return Kernel(
        name=name,
        ours_forward=lambda: forward(x, arg, gamma, beta),
        ours_backward=lambda cache: backward(dy, cache),
        torch_forward=lambda: reference(xt, gt, bt),
        torch_backward=lambda y: torch.autograd.grad(
            y, (xt, gt, bt), dyt, retain_graph=True
        ),
    )


KERNELS = [
    ("bnnotes.batchnorm", batchnorm_kernel),
    (
        "bnnotes.layernorm",
        functools.partial(optional_kernel, "bnnotes.layernorm"),
    ),
    (
        "bnnotes.groupnorm",
        functools.partial(optional_kernel, "bnnotes.groupnorm"),
    ),
]


def bench_kernels(threads: int) -> tuple[list[KernelResult], list[str]]:
    import torch

    torch.set_num_threads(threads)
    results, notes = [], []
    for module_name, make in KERNELS:
        for dtype in DTYPES:
            for shape in SHAPES:
                x, dy, rng = _inputs(shape, dtype)
                try:
                    kernel = make(x, dy, rng, torch)
                except Exception as exc:
                    # An optional module whose API the bench does not know.
                    first_line = (str(exc).splitlines() or [""])[0][:160]
                    kernel = f"{type(exc).__name__}: {first_line}; adapt benchmarks/bench.py"
                if kernel == "absent":
                    if dtype is DTYPES[0] and shape == SHAPES[0]:
                        notes.append(
                            f"`{module_name}` does not exist yet: not measured."
                        )
                    continue
                if isinstance(kernel, str):
                    results.append(
                        KernelResult(
                            module_name,
                            np.dtype(dtype).name,
                            shape,
                            skipped=kernel,
                        )
                    )
                    continue
                log(
                    f"kernels: {kernel.name} {np.dtype(dtype).name} {shape} (load {load()})"
                )
                results.append(
                    _bench_one(
                        kernel, x, np.dtype(dtype).name, shape, torch, threads
                    )
                )
    return results, notes


def _our_passes(k: Kernel) -> dict[str, callable]:
    """bnnotes' forward, backward (of one cached forward) and forward+backward of a kernel."""
    _, cache = k.ours_forward()

    def ours_fwd_bwd():
        # y stays alive during the backward pass, as in training
        y, cache = k.ours_forward()
        return y, cache, k.ours_backward(cache)

    return {
        "forward": k.ours_forward,
        "backward": lambda: k.ours_backward(cache),
        "fwd+bwd": ours_fwd_bwd,
    }


def _bench_one(
    k: Kernel, x: np.ndarray, dtype: str, shape: tuple, torch, threads: int
) -> KernelResult:
    r = KernelResult(k.name, dtype, shape)
    y_t = k.torch_forward()
    ours = _our_passes(k)
    theirs = {
        "forward": k.torch_forward,
        "backward": lambda: k.torch_backward(y_t),
        "fwd+bwd": lambda: k.torch_backward(k.torch_forward()),
    }
    for p in PASSES:
        medians = median_times({"ours": ours[p], "torch": theirs[p]})
        (
            (r.ours[p], ours_spread, ours_min),
            (r.torch[p], torch_spread, torch_min),
        ) = medians["ours"], medians["torch"]
        r.spread[p] = max(ours_spread, torch_spread)
        r.min_ratio[p] = ours_min / torch_min
    # For context, not for a target: torch on one thread, like NumPy's elementwise passes.
    torch.set_num_threads(1)
    try:
        medians = median_times({
            "ours": ours["fwd+bwd"],
            "torch": theirs["fwd+bwd"],
        })
    finally:
        torch.set_num_threads(threads)
    r.one_thread_ratio = medians["ours"][0] / medians["torch"][0]
    for p in PASSES:
        r.memory[p] = peak_extra_memory(ours[p]) / x.nbytes
    return r


# --------------------------------------------------------------------------- baseline


@dataclass
class BaselineResult:
    name: str
    dtype: str
    shape: tuple
    ratio: dict = field(
        default_factory=dict
    )  # pass -> median today / median baseline
    min_ratio: dict = field(
        default_factory=dict
    )  # pass -> fastest today / fastest baseline
    now_ms: dict = field(default_factory=dict)
    then_ms: dict = field(default_factory=dict)
    memory: tuple = ()  # fwd+bwd peak extra memory, (today, baseline), in multiples of x


def baseline_package(rev: str, dest: Path) -> Path:
    """The ``bnnotes`` package of git revision ``rev``, extracted under ``dest``."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "bnnotes"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        raise RuntimeError(
            f"revision {rev} is not in this clone ({stderr.decode().strip()[:120]})"
        ) from exc
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


@contextlib.contextmanager
def imported_from(path: Path):
    """Within the block, ``import bnnotes...`` loads the package under ``path``.

    Today's modules are set aside and put back afterwards; functions taken from either
    package keep working, since each holds its own module's globals.
    """

    def ours(name):
        return name == "bnnotes" or name.startswith("bnnotes.")

    saved = {k: v for k, v in sys.modules.items() if ours(k)}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
        for k in [k for k in sys.modules if ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def bench_baseline(
    rev: str, threads: int
) -> tuple[list[BaselineResult], list[str]]:
    """Today's kernels against those of ``rev``: same input, alternating blocks, one run."""
    import torch

    torch.set_num_threads(threads)
    results, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bnnotes-baseline-") as tmp:
        old = baseline_package(rev, Path(tmp))
        for module_name, make in KERNELS:
            for dtype in DTYPES:
                for shape in SHAPES:
                    x, dy, rng = _inputs(shape, dtype)
                    now = make(x, dy, rng, torch)
                    with imported_from(old):
                        # the same input again: make() draws gamma and beta from rng
                        then = make(*_inputs(shape, dtype), torch)
                        module = sys.modules.get(module_name)
                        old_file = getattr(module, "__file__", None) or ""
                    if isinstance(now, str) or isinstance(then, str):
                        if dtype is DTYPES[0] and shape == SHAPES[0]:
                            notes.append(
                                f"`{module_name}`: not compared "
                                f"(today: {now if isinstance(now, str) else 'ok'}; "
                                f"{rev}: {then if isinstance(then, str) else 'ok'})."
                            )
                        continue
                    if not old_file.startswith(tmp):
                        raise RuntimeError(
                            f"{module_name} of {rev} was not the one imported"
                        )
                    name = np.dtype(dtype).name
                    log(
                        f"baseline {rev}: {now.name} {name} {shape} (load {load()})"
                    )
                    r = BaselineResult(now.name, name, shape)
                    ours, theirs = _our_passes(now), _our_passes(then)
                    for p in PASSES:
                        m = median_times(
                            {"now": ours[p], "then": theirs[p]},
                            rounds=BASELINE_ROUNDS,
                        )
                        r.now_ms[p], r.then_ms[p] = m["now"][0], m["then"][0]
                        r.ratio[p] = m["now"][0] / m["then"][0]
                        r.min_ratio[p] = m["now"][2] / m["then"][2]
                    r.memory = tuple(
                        peak_extra_memory(f["fwd+bwd"]) / x.nbytes
                        for f in (ours, theirs)
                    )
                    results.append(r)
    return results, notes


def baseline_table(
    rev: str, results: list[BaselineResult]
) -> tuple[list[str], list[tuple[str, bool | None]]]:
    """The comparison with the baseline revision, and its targets (fwd+bwd time, memory)."""
    lines = [
        (
            f"| kernel | dtype | shape | pass | today ms | {rev} ms | ratio "
            "| ratio of minima | peak extra memory, today / before (× x) | target |"
        ),
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    targets = []
    limit = TARGET_BASELINE_RATIO
    for r in results:
        shape = "×".join(map(str, r.shape))
        for p in PASSES:
            memory, target = "", ""
            if p == "fwd+bwd":
                ok = ratio_ok(r.ratio[p], r.min_ratio[p], limit)
                mem_ok = r.memory[0] <= limit * r.memory[1]
                memory = f"{r.memory[0]:.2f} / {r.memory[1]:.2f}"
                target = (
                    f"time ≤ {limit:.2f}× before: {STATUS[ok]}; "
                    f"memory ≤ {limit:.2f}× before: {STATUS[mem_ok]}"
                )
                label = f"{r.name} fwd+bwd {r.dtype} {shape}"
                targets.append((f"{label}: time within 5 % of {rev}", ok))
                targets.append((
                    f"{label}: memory within 5 % of {rev}",
                    mem_ok,
                ))
            lines.append(
                f"| {r.name} | {r.dtype} | {shape} | {p} | {fmt_ms(r.now_ms[p])} "
                f"| {fmt_ms(r.then_ms[p])} | {r.ratio[p]:.3f}× "
                f"| {r.min_ratio[p]:.3f}× | {memory} | {target} |"
            )
    return lines, targets


# --------------------------------------------------------------------------- site


def _mkdocs_env(**extra: str) -> dict:
    return {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


#: The build cache of the working tree (hooks/site_cache.py), shared with the bench's copies.
SITE_CACHE = ROOT / ".cache" / "site"


def _one_build(out: str, **env: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        # no --quiet: it hides warnings from --strict
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", out],
        check=False,
        cwd=ROOT,
        env=_mkdocs_env(**env),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"mkdocs build --strict failed:\n{proc.stderr[-3000:]}"
        )
    return seconds


def bench_build(repeats: int = 3) -> dict[str, list[float]]:
    """Full strict builds: without the build cache, with an empty one, with the project's."""
    times: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bnnotes-bench-site-") as out,
        tempfile.TemporaryDirectory(prefix="bnnotes-bench-cache-") as cold,
    ):
        log(f"site: mkdocs build --strict without the cache (load {load()})")
        times["no cache"] = [_one_build(out, BNNOTES_SITE_CACHE="0")]
        log(f"site: mkdocs build --strict, empty cache (load {load()})")
        times["empty cache"] = [_one_build(out, BNNOTES_SITE_CACHE_DIR=cold)]
        times["cached"] = []
        for i in range(repeats):
            log(
                f"site: mkdocs build --strict {i + 1}/{repeats} (load {load()})"
            )
            times["cached"].append(
                _one_build(out, BNNOTES_SITE_CACHE_DIR=str(SITE_CACHE))
            )
    return times


def _copy_project(dest: Path) -> None:
    """What mkdocs needs, copied; node_modules linked (it is only read). With the git history:
    a clone that shares the repository's objects (the pages' revision dates come from it),
    with the working tree's files, edits included, on top."""
    skip = {
        ".git",
        ".venv",
        "site",
        "node_modules",
        ".cache",
        ".pytest_cache",
        ".hypothesis",
        ".ruff_cache",
        "build",
        "test-artifacts",
        "__pycache__",
        "bench-results.md",
    }
    if (ROOT / ".git").exists():
        subprocess.run(
            [
                "git",
                "clone",
                "-q",
                "--shared",
                "--no-checkout",
                str(ROOT),
                str(dest),
            ],
            check=True,
        )
    shutil.copytree(
        ROOT,
        dest,
        ignore=lambda d, names: [n for n in names if n in skip],
        symlinks=True,
        dirs_exist_ok=True,
    )
    if (ROOT / "node_modules").exists():
        (dest / "node_modules").symlink_to(
            ROOT / "node_modules", target_is_directory=True
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def _wait_for(
    url: str, token: str, timeout: float, proc: subprocess.Popen
) -> float:
    """Poll url until its text contains token; return the time it happened."""
    deadline = time.perf_counter() + timeout
    wanted = token.encode()
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {proc.returncode}"
            )
        body = _get(url)
        if body is not None and wanted in body:
            return time.perf_counter()
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not show {token!r} within {timeout:.0f} s")


#: The date git-revision-date-localized shows for a page not yet committed: the build time.
_BUILD_TIME_DATE = re.compile(
    rb'(<span class="git-revision-date-localized-plugin[^"]*" title=")[^"]*(">)[^<]*'
)


def _without_build_times(data: bytes) -> bytes:
    return _BUILD_TIME_DATE.sub(rb"\1\2", data)


@contextlib.contextmanager
def _serving(project: Path, log_file, port: int):
    """`make serve` (tools/serve.py) on port in project; yields (url, process)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "tools/serve.py",
            "-a",
            f"127.0.0.1:{port}",
        ],  # as `make serve` runs it
        cwd=project,
        env=_mkdocs_env(BNNOTES_SITE_CACHE_DIR=str(SITE_CACHE)),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}/", proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _compare_served(url: str, project: Path, tmp: Path) -> list[str]:
    """Every HTML page and the search index as served, against a full build of the same tree:
    the files that differ (none: the rebuilds gave exactly what a full build gives)."""
    site = tmp / "full-build"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        check=False,
        cwd=project,
        env=_mkdocs_env(
            BNNOTES_SITE_CACHE_DIR=str(SITE_CACHE),
            BNNOTES_SITE_URL=url,
        ),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return [f"the full build failed: {proc.stderr[-500:]}"]
    differ = []
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site).as_posix()
        if not (rel.endswith(".html") or rel == "search/search_index.json"):
            continue
        served = _get(url + rel)
        if served is None or _without_build_times(
            serve.without_livereload(served)
        ) != _without_build_times(path.read_bytes()):
            differ.append(rel)
    return differ


def bench_serve(
    repeats: int = 3, pages: tuple[str, ...] = ("en/index.md", "ko/toolkit.md")
) -> tuple[list[float], dict[str, list[float]], list[str]]:
    """`make serve` in a copy of the project: seconds from start to the first page (each of
    `repeats` starts), seconds from a one-line edit of each page to the served page showing it
    (`repeats` edits each), and the served files that differ from a full build afterwards."""
    with tempfile.TemporaryDirectory(prefix="bnnotes-bench-serve-") as tmp:
        project = Path(tmp) / "project"
        _copy_project(project)
        starts: list[float] = []
        edits: dict[str, list[float]] = {page: [] for page in pages}
        port = _free_port()  # the same for every start, as make serve's 8000
        with open(Path(tmp) / "serve.log", "w+", encoding="utf-8") as log_file:
            try:
                for i in range(repeats):
                    log(
                        f"site: make serve, start {i + 1}/{repeats} (load {load()})"
                    )
                    with _serving(project, log_file, port) as (url, proc):
                        t0 = time.perf_counter()
                        _wait_for(url, "</html>", 300, proc)
                        starts.append(time.perf_counter() - t0)
                        if i < repeats - 1:
                            continue
                        for page in pages:
                            path = project / "docs" / page
                            original = path.read_text(encoding="utf-8")
                            served = page.split("/", 1)
                            lang = "" if served[0] == "en" else served[0] + "/"
                            name = served[1].removesuffix(".md")
                            name = "" if name == "index" else name + "/"
                            for j in range(repeats):
                                token = f"bench-edit-{uuid.uuid4().hex[:12]}"
                                log(
                                    f"site: one-line edit of docs/{page} {j + 1}/{repeats} "
                                    f"(load {load()})"
                                )
                                t_write = time.perf_counter()
                                path.write_text(
                                    original.rstrip("\n") + f"\n\n{token}\n",
                                    encoding="utf-8",
                                )
                                edits[page].append(
                                    _wait_for(
                                        url + lang + name, token, 120, proc
                                    )
                                    - t_write
                                )
                        log("site: served files against a full build")
                        differ = _compare_served(url, project, Path(tmp))
            except Exception:
                log_file.seek(0)
                log("serve output:\n" + log_file.read()[-3000:])
                raise
        return starts, edits, differ


# --------------------------------------------------------------------------- experiments


def experiment_names() -> list[str] | None:
    """Names registered with the bnnotes.experiments harness, or None without one."""
    if (
        importlib.util.find_spec("bnnotes") is None
        or importlib.util.find_spec("bnnotes.experiments") is None
    ):
        return None
    module = importlib.import_module("bnnotes.experiments")
    names = getattr(module, "names", None)
    return list(names()) if callable(names) else None


def bench_experiments(names: list[str]) -> list[tuple[str, float, str]]:
    base = [sys.executable, "-m", "bnnotes.experiments"]
    help_text = subprocess.run(
        [*base, "--help"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    extra = ["--no-progress"] if "--no-progress" in help_text else []
    rows = []
    for name in names:
        log(f"experiments: {name} --quick (load {load()})")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*base, name, "--quick", *extra],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        status = (
            "ok"
            if proc.returncode == 0
            else f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
        )
        rows.append((name, wall, status))
    return rows


# --------------------------------------------------------------------------- report


def _first_error(exc: Exception) -> str:
    """The first line of an error that says what went wrong (mkdocs: its first warning or error)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [
        line for line in lines if line.startswith(("WARNING", "ERROR"))
    ] or lines
    return (
        useful[0].replace("|", "\\|")[:200] if useful else type(exc).__name__
    )


def verdict(value: float, limit: float) -> str:
    return STATUS[value <= limit]


def ratio_ok(ratio: float, min_ratio: float, limit: float) -> bool | None:
    """Whether a time ratio is within ``limit``: None when the ratio of medians and the
    ratio of minima disagree (other processes decided it)."""
    ok = ratio <= limit
    return ok if ok == (min_ratio <= limit) else None


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if seconds < 0.01 else f"{seconds * 1e3:.2f}"


def kernel_table(
    results: list[KernelResult],
) -> tuple[list[str], list[tuple[str, bool | None]]]:
    lines = [
        (
            "| kernel | dtype | shape | pass | bnnotes ms | torch ms | ratio | ratio of minima "
            "| spread | ratio, torch on 1 thread | peak extra memory (× x) | target |"
        ),
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    targets = []
    for r in results:
        shape = "×".join(map(str, r.shape))
        if r.skipped:
            lines.append(
                f"| {r.name} | {r.dtype} | {shape} | — | — | — | — | — | — | — | — "
                f"| skipped: {r.skipped} |"
            )
            continue
        for p in PASSES:
            ratio = r.ours[p] / r.torch[p]
            one_thread = (
                f"{r.one_thread_ratio:.2f}×"
                if p == "fwd+bwd" and r.one_thread_ratio
                else ""
            )
            target = ""
            if r.name == "batch norm" and p == "fwd+bwd":
                memory_ok = r.memory[p] <= TARGET_BN_MEMORY + MEMORY_SLACK
                checks = [
                    f"≤ {TARGET_BN_MEMORY} arrays of x's size: {STATUS[memory_ok]}"
                ]
                targets.append((
                    f"BN fwd+bwd {r.dtype} {shape}: at most {TARGET_BN_MEMORY} arrays "
                    "the size of x",
                    memory_ok,
                ))
                if r.dtype == "float32":
                    ok = ratio_ok(ratio, r.min_ratio[p], TARGET_BN_RATIO)
                    checks.insert(
                        0, f"ratio ≤ {TARGET_BN_RATIO}: {STATUS[ok]}"
                    )
                    targets.append((
                        f"BN fwd+bwd float32 {shape} within {TARGET_BN_RATIO}× torch",
                        ok,
                    ))
                target = "; ".join(checks)
            lines.append(
                f"| {r.name} | {r.dtype} | {shape} | {p} | {fmt_ms(r.ours[p])} "
                f"| {fmt_ms(r.torch[p])} | {ratio:.2f}× | {r.min_ratio[p]:.2f}× "
                f"| {r.spread[p]:.0%} | {one_thread} | {r.memory[p]:.2f} | {target} |"
            )
    return lines, targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        default="kernels,baseline,site,experiments",
        help="comma-separated subset of kernels,baseline,site,experiments (default: all)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "bench-results.md",
        help="markdown file to write",
    )
    parser.add_argument(
        "--baseline",
        default=BASELINE_REV,
        help=(
            "git revision whose kernels the baseline part times against today's "
            f"(default: {BASELINE_REV}, before bnnotes/_kernels.py; none: skip)"
        ),
    )
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"kernels", "baseline", "site", "experiments"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_start = load()
    threads, thread_source = blas_threads()
    out = ["# bnnotes benchmarks", ""]
    targets: list[tuple[str, bool | None]] = []
    cpu = platform.processor() or platform.machine()
    with (
        contextlib.suppress(OSError, StopIteration),
        open("/proc/cpuinfo", encoding="utf-8") as info,
    ):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in info
            if line.startswith("model name")
        )
    import torch

    out += [
        (
            f"Run {started}; {cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}, "
            f"NumPy {np.__version__}, torch {torch.__version__}."
        ),
        (
            f"Threads: NumPy's BLAS uses {threads} ({thread_source}), and "
            f"torch.set_num_threads({threads}); NumPy's elementwise ufuncs run on one thread."
        ),
        (
            f"Load average (1/5/15 min) at the start: {load_start}. Other processes on the machine "
            "make every timing noisier; ratios are of medians taken in alternating blocks, so "
            "both sides see the same load."
        ),
        "",
    ]
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        out += [
            (
                f"**Warning: the machine was busy at the start (load {load_start} on "
                f"{os.cpu_count()} CPUs); run `make bench` again on an idle machine before "
                "trusting these numbers. A busy machine slows torch more than bnnotes (torch's "
                "threads wait for each other at every parallel region; NumPy's elementwise passes "
                "use one thread), so busy-machine ratios flatter bnnotes.**"
            ),
            "",
        ]

    if "kernels" in parts:
        results, notes = bench_kernels(threads)
        lines, kernel_targets = kernel_table(results)
        targets += kernel_targets
        explanation = (
            "Median milliseconds per call; ratio = bnnotes / torch (below 1: bnnotes is faster); "
            "ratio of minima = fastest bnnotes call / fastest torch call, less sensitive to other "
            "processes than the medians (the targets use the medians); "
            "spread = interquartile range / median of the noisier side; the one-thread ratio "
            "(fwd+bwd only, context, no target) is against torch.set_num_threads(1). "
            "Forward includes what the backward pass needs (bnnotes' cache, torch's autograd "
            "graph); fwd+bwd keeps y alive during the backward pass, as in training. Peak extra "
            "memory counts every array a call allocates, outputs included (forward: y and x_hat, "
            f"backward: dx; the memory target allows {MEMORY_SLACK:g} × x on top of the arrays "
            "for per-channel vectors)."
        )
        out += [
            "## Kernels: bnnotes (NumPy) against torch (CPU)",
            "",
            explanation,
            "",
        ]
        out += (
            lines + [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
        )

    if "baseline" in parts and args.baseline.lower() != "none":
        out += [
            f"## Kernels: today against {args.baseline}",
            "",
            (
                f"bnnotes' NumPy kernels today against those of revision {args.baseline} "
                "(extracted with `git archive`), on the same input, timed in alternating "
                "blocks in this run. Ratio = today / before (above 1: today is slower); "
                f"the targets: fwd+bwd time and peak memory at most {TARGET_BASELINE_RATIO:.2f}× "
                "before."
            ),
            "",
        ]
        try:
            compared, notes = bench_baseline(args.baseline, threads)
        except RuntimeError as exc:
            log(str(exc))
            out += [f"Not measured: {exc}.", ""]
        else:
            lines, baseline_targets = baseline_table(args.baseline, compared)
            targets += baseline_targets
            out += (
                lines
                + [""]
                + [f"- {n}" for n in notes]
                + ([""] if notes else [])
            )

    if "site" in parts:
        out += [
            "## Site",
            "",
            "| measurement | seconds | runs | target |",
            "|---|---:|---|---|",
        ]
        log("site: full strict builds")
        try:
            builds = bench_build()
        except RuntimeError as exc:
            log(str(exc))
            out.append(
                "| `mkdocs build --strict`, every language | — | — "
                f"| **failed**: {_first_error(exc)} |"
            )
            targets.append((
                f"full strict build ≤ {TARGET_BUILD_S:g} s (the build failed)",
                False,
            ))
        else:
            build = statistics.median(builds["cached"])
            targets.append((
                f"full strict build ≤ {TARGET_BUILD_S:g} s",
                build <= TARGET_BUILD_S,
            ))
            out += [
                (
                    "| `mkdocs build --strict`, every language "
                    f"(median of {len(builds['cached'])}) "
                    f"| {build:.2f} | {', '.join(f'{t:.2f}' for t in builds['cached'])} "
                    f"| ≤ {TARGET_BUILD_S:g} s: {verdict(build, TARGET_BUILD_S)} |"
                ),
                (
                    "| the same, with an empty build cache (a fresh clone) "
                    f"| {builds['empty cache'][0]:.2f} | 1 | |"
                ),
                (
                    "| the same, without the build cache (`BNNOTES_SITE_CACHE=0`) "
                    f"| {builds['no cache'][0]:.2f} | 1 | |"
                ),
            ]
        try:
            starts, edits, differ = bench_serve()
        except (RuntimeError, TimeoutError) as exc:
            log(str(exc))
            out.append(
                "| `make serve`: start, and rebuild after a one-line edit | — | — "
                f"| **failed**: {_first_error(exc)} |"
            )
            targets.append((
                f"rebuild after a one-line edit ≤ {TARGET_REBUILD_S:g} s (serve failed)",
                False,
            ))
        else:
            start = statistics.median(starts)
            targets.append((
                f"`make serve` start to the first page ≤ {TARGET_START_S:g} s",
                start <= TARGET_START_S,
            ))
            out.append(
                f"| `make serve`: start until the first page is served (median of {len(starts)}) "
                f"| {start:.2f} | {', '.join(f'{t:.2f}' for t in starts)} "
                f"| ≤ {TARGET_START_S:g} s: {verdict(start, TARGET_START_S)} |"
            )
            for page, times in edits.items():
                rebuild = statistics.median(times)
                targets.append((
                    f"one-line edit of docs/{page} served ≤ {TARGET_REBUILD_S:g} s",
                    rebuild <= TARGET_REBUILD_S,
                ))
                out.append(
                    f"| `make serve`: one-line edit of docs/{page} until the served page shows it "
                    f"(median of {len(times)}) | {rebuild:.2f} "
                    f"| {', '.join(f'{t:.2f}' for t in times)} "
                    f"| ≤ {TARGET_REBUILD_S:g} s: {verdict(rebuild, TARGET_REBUILD_S)} |"
                )
            targets.append((
                "after the edits, every served page and the search index are those of a full build",
                not differ,
            ))
            out.append(
                "| `make serve`: every page and the search index served after the edits, "
                "against a full build of the edited tree | — | — | "
                + (
                    "identical"
                    if not differ
                    else f"**{len(differ)} differ**: {', '.join(differ[:5])}"
                )
                + " |"
            )
        out.append("")

    if "experiments" in parts:
        out += ["## Experiments (`--quick`)", ""]
        names = experiment_names()
        if not names:
            out += ["no experiments registered", ""]
            log("experiments: no experiments registered")
        else:
            rows = bench_experiments(names)
            total = sum(wall for _, wall, _ in rows)
            ok = all(status == "ok" for _, _, status in rows)
            targets.append((
                f"all --quick experiments ≤ {TARGET_EXPERIMENTS_S:g} s",
                total <= TARGET_EXPERIMENTS_S and ok,
            ))
            out += ["| experiment | seconds | status |", "|---|---:|---|"]
            out += [
                f"| {name} | {wall:.1f} | {status} |"
                for name, wall, status in rows
            ]
            out += [
                f"| **total** | {total:.1f} | ≤ {TARGET_EXPERIMENTS_S:g} s: "
                f"{verdict(total, TARGET_EXPERIMENTS_S)} |",
                "",
            ]

    out += [f"Load average at the end: {load()}.", "", "## Targets", ""]
    out += [f"- {STATUS[ok]}: {name}" for name, ok in targets] or [
        "- (none measured)"
    ]
    text = "\n".join(out) + "\n"
    print(text)
    args.output.write_text(text, encoding="utf-8")
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
