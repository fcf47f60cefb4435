"""Run notebooks top to bottom, each in a fresh IPython shell of its own process.

``python tests/notebook_runner.py JOBS.json`` reads a list of ``[notebook, executed,
report]`` paths. This process imports the packages that every chapter uses (torch, NumPy,
matplotlib, bnnotes, IPython) once, then forks one child per notebook, two at a time. A
child starts a new ``InteractiveShell`` (the shell that Jupyter's Python kernel runs), runs
the code cells in order in the working directory, and writes the notebook with its outputs
as a kernel would record them (stdout and stderr streams, displays, the value of the last
expression as ``execute_result``, an ``error`` output) and a report (``{"error": ...,
"seconds": ...}``). As with nbclient, a cell that raises stops the notebook unless it is
tagged ``raises-exception``.

A fork starts in milliseconds where a Jupyter kernel takes seconds (a new interpreter that
imports torch again); tests/test_notebooks.py checks that a kernel and this runner give one
notebook the same outputs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

#: Children running at once.
AT_ONCE = 2


def run_notebook(source: Path, executed: Path, report: Path) -> None:
    """Execute one notebook in a new shell; write the executed notebook and the report."""
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    start = time.perf_counter()
    nb = nbformat.read(source, as_version=4)
    shell = InteractiveShell.instance(colors="nocolor")
    values: list[dict] = []
    # The value of a cell's last expression: recorded, not printed (ipykernel's display
    # hook sends it as an execute_result message); tracebacks: kept as the error output.
    shell.displayhook.write_output_prompt = lambda: None
    shell.displayhook.write_format_data = lambda data, md=None: values.append(
        data
    )
    shell._showtraceback = lambda etype, evalue, stb: None
    error = None
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        values.clear()
        with capture_output() as captured:
            result = shell.run_cell(cell.source, store_history=True)
        outputs = [
            nbformat.v4.new_output("stream", name=name, text=text)
            for name, text in (
                ("stdout", captured.stdout),
                ("stderr", captured.stderr),
            )
            if text
        ]
        outputs += [
            nbformat.v4.new_output(
                "display_data", data=shown.data, metadata=shown.metadata
            )
            for shown in captured.outputs
        ]
        outputs += [
            nbformat.v4.new_output(
                "execute_result", data=data, execution_count=count
            )
            for data in values
        ]
        exc = result.error_before_exec or result.error_in_exec
        if exc is not None:
            outputs.append(
                nbformat.v4.new_output(
                    "error",
                    ename=type(exc).__name__,
                    evalue=str(exc),
                    traceback=[],
                )
            )
        cell.outputs = outputs
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
        sys.stdout.flush()
        os._exit(0)


def main(argv: list[str]) -> int:
    jobs = json.loads(Path(argv[0]).read_text())
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
