"""Run notebooks top to bottom, each in a fresh IPython shell of its own process.

``python tests/notebook_runner.py JOBS.json`` reads a list of ``[notebook, executed,
report]`` paths. This process imports the packages that every chapter uses (torch, NumPy,
matplotlib, bnnotes, IPython) once, then forks one child per notebook, two at a time. A
child starts a new ``InteractiveShell`` (the shell that Jupyter's Python kernel runs) with
the working directory first on ``sys.path`` (as a kernel has it), clears the notebook's
outputs, runs the code cells in order and writes the notebook with what each cell produced,
in the order produced: ``stream`` outputs (consecutive writes to one stream joined),
``display_data``, the value of the last expression as ``execute_result``, and an ``error``
output. As with nbclient, a cell that raises stops the notebook unless it is tagged
``raises-exception``, and a cell that runs longer than ``CELL_TIMEOUT`` seconds is stopped
as an error. The report (``{"error": ..., "seconds": ...}``) says why a notebook stopped.

Unlike a kernel, the shell records what Python code writes to ``sys.stdout`` and
``sys.stderr``, not what is written straight to the process's file descriptors (a
subprocess's output, C code printing): the chapters print through Python.

A fork starts in milliseconds where a Jupyter kernel takes seconds (a new interpreter that
imports torch again); tests/test_notebooks.py runs two chapters in Jupyter kernels too and
checks that both record the same outputs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

#: Children running at once.
AT_ONCE = 2
#: Seconds one cell may run (nbclient's limit in the tests before this runner).
CELL_TIMEOUT = 300


class CellTimeout(Exception):
    """A cell ran longer than CELL_TIMEOUT seconds."""


class _Outputs:
    """The outputs of the running cell, in the order they come."""

    def __init__(self, nbformat):
        self.nbformat = nbformat
        self.items: list = []

    def write(self, name: str, text: str) -> None:
        if not text:
            return
        last = self.items[-1] if self.items else None
        if (
            last is not None
            and last.output_type == "stream"
            and last.name == name
        ):
            last.text += text
        else:
            self.items.append(
                self.nbformat.v4.new_output("stream", name=name, text=text)
            )

    def add(self, output_type: str, **fields) -> None:
        self.items.append(self.nbformat.v4.new_output(output_type, **fields))


class _Stream:
    """sys.stdout or sys.stderr of the child: writes go to the running cell's outputs."""

    def __init__(self, outputs: _Outputs, name: str):
        self.outputs, self.name = outputs, name
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        self.outputs.write(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _on_alarm(signum, frame):
    raise CellTimeout(f"the cell ran longer than {CELL_TIMEOUT} s")


def run_notebook(source: Path, executed: Path, report: Path) -> None:
    """Execute one notebook in a new shell; write the executed notebook and the report."""
    import nbformat
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    start = time.perf_counter()
    nb = nbformat.read(source, as_version=4)
    sys.path[0] = (
        ""  # the working directory, as in a kernel (not this file's folder)
    )
    outputs = _Outputs(nbformat)
    sys.stdout, sys.stderr = (
        _Stream(outputs, "stdout"),
        _Stream(outputs, "stderr"),
    )

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, *args, **kwargs):
            outputs.add("display_data", data=data, metadata=metadata or {})

    shell = InteractiveShell.instance(colors="nocolor")
    shell.display_pub = Publisher(shell=shell)
    count = 0
    # The value of a cell's last expression: recorded, not printed (ipykernel's display
    # hook sends it as an execute_result message); tracebacks: kept as the error output.
    shell.displayhook.write_output_prompt = lambda: None
    shell.displayhook.write_format_data = lambda data, md=None: outputs.add(
        "execute_result", data=data, metadata=md or {}, execution_count=count
    )
    shell._showtraceback = lambda etype, evalue, stb: None
    signal.signal(signal.SIGALRM, _on_alarm)
    error = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        outputs.items = []
        signal.alarm(CELL_TIMEOUT)
        try:
            result = shell.run_cell(cell.source, store_history=True)
        finally:
            signal.alarm(0)
        exc = result.error_before_exec or result.error_in_exec
        if exc is not None:
            outputs.add(
                "error",
                ename=type(exc).__name__,
                evalue=str(exc),
                traceback=[],
            )
        cell.outputs = outputs.items
        cell.execution_count = count
        if exc is not None and "raises-exception" not in cell.metadata.get(
            "tags", []
        ):
            error = f"cell {count} raised {type(exc).__name__}: {exc}\n{cell.source}"
            break
    nbformat.write(nb, executed)
    report.write_text(
        json.dumps({
            "error": error,
            "seconds": round(time.perf_counter() - start, 2),
        })
    )


def _child(job: list[str]) -> None:
    try:
        run_notebook(*map(Path, job))
    except BaseException as exc:  # reported by the parent's caller
        Path(job[2]).write_text(
            json.dumps({"error": f"runner: {exc!r}", "seconds": 0})
        )
    finally:
        os._exit(0)


def main(argv: list[str]) -> int:
    jobs = json.loads(Path(argv[0]).read_text())
    # Children are forked from this process: no library thread pools before the fork.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # What every chapter imports, once: each child starts with it in memory.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import nbformat  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401
    from IPython.core.interactiveshell import (  # noqa: F401
        InteractiveShell,
    )

    import bnnotes  # noqa: F401

    running: set[int] = set()
    for job in jobs:
        if len(running) >= AT_ONCE:
            running.discard(os.waitpid(-1, 0)[0])
        pid = os.fork()
        if pid == 0:
            _child(job)
        running.add(pid)
    while running:
        running.discard(os.waitpid(-1, 0)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
