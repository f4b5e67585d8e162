"""What a training phase needs from whatever records its runs; the pipeline's is MLflow (``tracking``).

The training layer states the need and the tracking layer above it meets it,
so training never imports MLflow or ``tracking``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd


class RunLog(Protocol):
    """Records one training phase's run."""

    def run(self, name: str, resume_id: str | None) -> AbstractContextManager[tuple[str, bool]]:
        """Resume run ``resume_id`` if it still exists, else start a new run named ``name``.

        Yields the run's id and whether it is new. The run ends when the block
        does, marked failed if the block raises.
        """

    def record_inputs(self, params: dict[str, Any], tags: dict[str, str], data: pd.DataFrame, data_dir: Path) -> None:
        """Record a new run's params, tags and the manifest of the pairs in ``data_dir`` it trains on."""

    def tags(self, tags: dict[str, str]) -> None:
        """Tag the run."""

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        """Record figures, at training step ``step`` if given."""

    def image(self, image: np.ndarray, name: str) -> None:
        """Keep an image (uint8 HWC) with the run as ``name``."""

    def generator(self, path: Path) -> None:
        """Note that the run wrote the generator file ``path``, so later stages find the run from it."""
