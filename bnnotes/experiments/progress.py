"""A dependency-free progress bar on standard error, for long experiment runs."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Draw ``[#####.....] step/total  key=value`` on stderr, at most every ``interval`` seconds.

    On a terminal the bar is redrawn in place; otherwise (a log file, CI) a line is printed
    at each tenth of the run. Disabled instances print nothing.

    Examples
    --------
    >>> import io
    >>> from bnnotes.experiments.progress import Progress
    >>> out = io.StringIO()
    >>> bar = Progress(10, "demo", stream=out)
    >>> bar.update(10, loss=0.5)
    >>> print(out.getvalue(), end="")
    demo [##############################] 10/10 loss=0.500
    """

    def __init__(
        self,
        total: int,
        desc: str,
        enabled: bool = True,
        interval: float = 0.2,
        stream=None,
    ):
        self.total, self.desc, self.enabled, self.interval = (
            total,
            desc,
            enabled,
            interval,
        )
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._next_tenth = 1

    def update(self, step: int, **info) -> None:
        """Report that ``step`` of ``total`` steps are done, with optional key=value info."""
        if not self.enabled:
            return
        done = step >= self.total
        text = " ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in info.items()
        )
        width = 30
        filled = int(width * step / max(self.total, 1))
        line = f"{self.desc} [{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} {text}"
        if self.tty:
            now = time.monotonic()
            if done or now - self._last >= self.interval:
                self._last = now
                self.stream.write("\r" + line + ("\n" if done else ""))
                self.stream.flush()
        elif done or step * 10 >= self._next_tenth * self.total:
            while (
                step * 10 >= self._next_tenth * self.total
                and self._next_tenth <= 10
            ):
                self._next_tenth += 1
            self.stream.write(line + "\n")
            self.stream.flush()
