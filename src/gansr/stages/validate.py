"""Stage `validate`: the Great Expectations suite over the pairs; data docs in reports/validation/."""

import logging

from gansr.atomic import write_json
from gansr.config import Params
from gansr.layout import DATA_DOCS_INDEX, QUARANTINE_FILE, VALIDATION_FILE, Layout
from gansr.stages import counts
from gansr.validation import validate_pairs

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Check the manifest and every image file; write the manifest training reads."""
    summary = validate_pairs(layout.pairs, layout.validation, layout.validated, params.scale,
                             params.pairs, params.validate)
    # Deterministic counts only, so downstream stages rerun when the data changes, not the docs.
    write_json(layout.metrics / VALIDATION_FILE, summary)
    if summary["quarantined"]:
        log.warning("validate: %d bad pairs dropped (validate.on_bad: drop), listed in %s",
                    summary["quarantined"], layout.validation / QUARANTINE_FILE)
    else:
        log.info("validate: all expectations met")
    log.info("validate: manifest for training (%s) in %s; data docs at %s",
             counts(summary["kept_per_split"]), layout.validated, layout.validation / DATA_DOCS_INDEX)
