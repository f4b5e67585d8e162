"""MLflow in one layer, one module per job; everything else in gansr reaches MLflow through here.

- :mod:`~gansr.tracking.store`: where runs and models are kept, and reaching it;
- :mod:`~gansr.tracking.runs`: runs and what they came from (commit, data, params);
- :mod:`~gansr.tracking.registry`: versions and the champion policy;
- :mod:`~gansr.tracking.packaging`: a generator as a pyfunc model MLflow can serve;
- :mod:`~gansr.tracking.ui`: the MLflow UI, opened on the training runs and the registered model.

The store's functions load with the package; the rest, which bring Keras
with the registry, on first use (PEP 562), so ``gansr upscale`` on LiteRT
fetches a registered model without loading TensorFlow.
"""

from __future__ import annotations

from typing import Any

from gansr.tracking.store import configure, connect, download_model, tracking_uri

__all__ = [
    "CHALLENGER", "CHAMPION", "GENERATOR_TAG", "PROMOTION_TAG", "MlflowRunLog", "configure", "connect",
    "download_model", "dvc_hash", "generator_run_id", "list_versions", "load_downloaded_generator",
    "log_training_data", "open_ui", "promote", "record_results", "register_generator", "run_tags", "start_run",
    "tag_generator", "tracking_uri", "ui_pages",
]


def __getattr__(name: str) -> Any:
    """A public name of the registry, runs or UI module, importing them on first use."""
    if name not in __all__:  # before importing: `from gansr.tracking import runs` asks for a submodule here
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from gansr.tracking import registry, runs, ui

    return next(getattr(module, name) for module in (registry, runs, ui) if hasattr(module, name))
