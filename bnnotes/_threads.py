"""Running torch on one CPU thread for a block (private).

The demonstrations and experiments use small tensors, for which more threads only
contend with each other.
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block, then restore the previous setting.

    The experiments' tensors are small, so more threads only contend with each other.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.experiments import one_thread
    >>> before = torch.get_num_threads()
    >>> with one_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
