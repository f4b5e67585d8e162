"""MLflow in one layer, one module per job; everything else in gansr reaches MLflow through here.

- :mod:`~gansr.tracking.store`: where runs and models are kept, and reaching it;
- :mod:`~gansr.tracking.runs`: runs and what they came from (commit, data, params);
- :mod:`~gansr.tracking.registry`: versions and the champion policy;
- :mod:`~gansr.tracking.packaging`: a generator as a pyfunc model MLflow can serve;
- :mod:`~gansr.tracking.ui`: the MLflow UI, opened on the training runs and the registered model.
"""

from gansr.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    PROMOTION_TAG,
    list_versions,
    load_registered_generator,
    promote,
    register_generator,
)
from gansr.tracking.runs import (
    GENERATOR_TAG,
    MlflowRunLog,
    dvc_hash,
    generator_run_id,
    log_training_data,
    record_results,
    run_tags,
    start_run,
    tag_generator,
)
from gansr.tracking.store import configure, connect, tracking_uri
from gansr.tracking.ui import open_ui, ui_pages

__all__ = [
    "CHALLENGER", "CHAMPION", "GENERATOR_TAG", "PROMOTION_TAG", "MlflowRunLog", "configure", "connect",
    "dvc_hash", "generator_run_id", "list_versions", "load_registered_generator", "log_training_data",
    "open_ui", "promote", "record_results", "register_generator", "run_tags", "start_run", "tag_generator",
    "tracking_uri", "ui_pages",
]
