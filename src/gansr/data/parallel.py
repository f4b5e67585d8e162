"""One image per task on every core, for the data stages (``download``, ``pairs``, ``validate``).

The workers are forked: a spawned worker would rerun the stage script, which
has no ``__main__`` guard, and re-import the package. The data stages never
load TensorFlow, and their workers run only NumPy and Pillow, so there are no
threads to inherit.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

_T = TypeVar("_T")
_R = TypeVar("_R")


def parallel_map(fn: Callable[[_T], _R], items: list[_T], workers: int, desc: str) -> Iterator[_R]:
    """``map(fn, items)`` over ``workers`` processes, one item per task, results in input order.

    Results are taken in submission order, so the output (and which error is
    raised first) does not depend on which task finishes first. Pending
    tasks are cancelled as soon as one fails.
    """
    # A context manager clears the bar before an error propagates, not after it is printed.
    with tqdm(total=len(items), desc=desc, unit="image", leave=False) as progress:
        if workers <= 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
                progress.update()
            return
        with ProcessPoolExecutor(min(workers, len(items)), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(fn, item) for item in items]
            try:
                for future in futures:
                    yield future.result()
                    progress.update()
            finally:
                for future in futures:
                    future.cancel()


def available_cores() -> int:
    """Cores this process may run on (respects taskset and container CPU sets)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
